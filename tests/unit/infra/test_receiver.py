"""The alert receiver as the Pulumi program declares it, for every stack: least privilege, a command line the
real `remediation serve` accepts, a network fence, and the names the Jobs it creates depend on."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.evaluate import Evaluation, evaluate, raw_settings, stack_config
from infra.settings import SettingsError, parse_settings
from policy.rules import RESOURCE_RULES, STACK_RULES
from remediation.receiver.mapping import parse_duration
from remediation.receiver.server import _parser as serve_parser
from remediation.receiver.server import _policy as guard_policy

ROOT = Path(__file__).resolve().parents[3]
NAME = "remediation-receiver"


def receiver_settings(evaluation: Evaluation) -> dict[str, Any]:
    settings: dict[str, Any] = raw_settings(stack_config(evaluation.stack))["receiver"]
    return settings


def receiver_pod(evaluation: Evaluation) -> dict[str, Any]:
    spec: dict[str, Any] = evaluation.named("Deployment", NAME).inputs["spec"]["template"]["spec"]
    return spec


def receiver_container(evaluation: Evaluation) -> dict[str, Any]:
    (container,) = receiver_pod(evaluation)["containers"]
    assert isinstance(container, dict)
    return container


def test_the_receivers_role_allows_exactly_jobs_leases_and_events(evaluation: Evaluation) -> None:
    role = evaluation.named("Role", NAME)
    assert role.inputs["metadata"]["namespace"] == "shorts"
    assert role.inputs["rules"] == [
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "list"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    binding = evaluation.named("RoleBinding", NAME).inputs
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": NAME, "namespace": "shorts"}]
    evaluation.named("ServiceAccount", NAME)
    # Its own identity: nothing cluster-wide, and the Jobs' identity is not bound to the receiver.
    assert not evaluation.of_kind("ClusterRole") and not evaluation.of_kind("ClusterRoleBinding")
    assert evaluation.named("RoleBinding", "remediation").inputs["subjects"][0]["name"] == "remediation"
    assert receiver_pod(evaluation)["serviceAccountName"] == NAME


def test_the_deployment_args_are_accepted_by_remediation_serve(evaluation: Evaluation) -> None:
    container = receiver_container(evaluation)
    assert container["command"] == ["remediation"]
    assert container["args"][0] == "serve"
    # The receiver's own parser: an unknown option or a bad value exits with status 2 here.
    parsed = serve_parser().parse_args(container["args"][1:])
    settings = receiver_settings(evaluation)
    image = raw_settings(stack_config(evaluation.stack))["remediation"]["image"]
    assert parsed.runbooks_configmap == "runbooks"
    assert parsed.profile_configmap == "remediation-profile"
    assert parsed.secret_name == "remediation-secrets"
    assert parsed.image == image == container["image"]
    assert parsed.namespace == "shorts"
    assert parsed.listen == f"0.0.0.0:{settings['port']}"
    assert (parsed.cooldown, parsed.budget, parsed.job_deadline) == (
        settings["cooldown"],
        settings["budget"],
        settings["jobDeadline"],
    )
    assert parsed.breaker_failures == settings["breakerFailures"]
    # ...and the receiver's own readers accept the values (a bad budget or duration exits 2 at start-up).
    policy = guard_policy(parsed)
    assert policy.breaker_failures == settings["breakerFailures"]
    assert policy.cooldown_s == parse_duration(settings["cooldown"]) > 0
    assert parse_duration(parsed.job_deadline) > 0
    assert parsed.max_body == settings["maxBodyBytes"]
    # Defaults that must hold in the cluster: guard state in Leases, Jobs really created.
    assert (parsed.store, parsed.launcher) == ("kubernetes", "kubernetes")
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(parsed.runbooks_dir) == mounts["runbooks"]
    assert str(parsed.token_file.parent) == mounts["token"]


def test_the_args_use_only_options_remediation_serve_lists_in_its_help(evaluation: Evaluation) -> None:
    # The installed command, as an operator would run it: its --help names every option it takes.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "remediation"), "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,  # a hang guard only: a cold start on a loaded 2-core machine can take a minute
    )
    listed = set(re.findall(r"--[a-z][a-z-]*", result.stdout))
    used = {a for a in receiver_container(evaluation)["args"] if a.startswith("--")}
    assert used, "no options at all"
    missing = used - listed
    assert not missing, f"options `remediation serve --help` does not list: {sorted(missing)}"


def test_the_volumes_are_the_objects_the_program_declares(evaluation: Evaluation) -> None:
    volumes = {v["name"]: v for v in receiver_pod(evaluation)["volumes"]}
    assert volumes["runbooks"]["configMap"]["name"] == "runbooks"
    evaluation.named("ConfigMap", "runbooks")
    settings = receiver_settings(evaluation)
    assert volumes["token"]["secret"]["secretName"] == settings["tokenSecret"]["name"]
    assert volumes["token"]["secret"]["items"] == [{"key": settings["tokenSecret"]["key"], "path": "token"}]
    # The token Secret is referenced, never declared: no value of it reaches the stack state.
    assert not evaluation.of_kind("Secret")
    # The Jobs it starts mount the profile ConfigMap under this key (remediation/receiver/jobs.py).
    profile = evaluation.named("ConfigMap", "remediation-profile").inputs["data"]
    assert set(profile) == {"profile.yaml"}
    assert yaml.safe_load(profile["profile.yaml"])["namespace"] == "shorts"


def test_the_receiver_pod_is_probed_sized_and_locked_down(evaluation: Evaluation) -> None:
    settings = receiver_settings(evaluation)
    spec = evaluation.named("Deployment", NAME).inputs["spec"]
    assert spec["replicas"] == settings["replicas"]
    assert not [
        h
        for h in evaluation.of_kind("HorizontalPodAutoscaler")
        if h.inputs["spec"]["scaleTargetRef"]["name"] == NAME
    ]
    container = receiver_container(evaluation)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert container["ports"] == [{"name": "http", "containerPort": settings["port"], "protocol": "TCP"}]
    assert container["resources"] == {"requests": settings["requests"], "limits": settings["limits"]}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert receiver_pod(evaluation)["securityContext"]["runAsNonRoot"] is True


def test_the_service_reaches_the_receiver_port(evaluation: Evaluation) -> None:
    settings = receiver_settings(evaluation)
    service = evaluation.named("Service", NAME).inputs["spec"]
    pod_labels = evaluation.named("Deployment", NAME).inputs["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= pod_labels.items()
    assert service["ports"] == [
        {"name": "http", "port": settings["port"], "targetPort": "http", "protocol": "TCP"}
    ]
    assert evaluation.exports["alertReceiverUrl"] == f"http://{NAME}.shorts.svc:{settings['port']}/alerts"
    # Prometheus finds /metrics through the operator's ServiceMonitor, on the Service's named port.
    monitor = evaluation.named("ServiceMonitor", NAME).inputs["spec"]
    assert (
        monitor["selector"]["matchLabels"].items()
        <= evaluation.named("Service", NAME).inputs["metadata"]["labels"].items()
    )
    assert [(e["port"], e["path"]) for e in monitor["endpoints"]] == [("http", "/metrics")]
    pdbs = [p for p in evaluation.of_kind("PodDisruptionBudget") if p.inputs["metadata"]["name"] == NAME]
    assert len(pdbs) == (1 if settings["replicas"] > 1 else 0)


def test_the_network_policy_admits_only_alertmanager_and_prometheus(evaluation: Evaluation) -> None:
    settings = receiver_settings(evaluation)
    policy = evaluation.named("NetworkPolicy", NAME).inputs["spec"]
    pod_labels = evaluation.named("Deployment", NAME).inputs["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]  # both directions default-deny for these pods
    monitoring = {"kubernetes.io/metadata.name": settings["monitoring"]["namespace"]}
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [
        {
            "namespaceSelector": {"matchLabels": monitoring},
            "podSelector": {"matchLabels": settings["monitoring"]["alertmanagerLabels"]},
        },
        {
            "namespaceSelector": {"matchLabels": monitoring},
            "podSelector": {"matchLabels": settings["monitoring"]["prometheusLabels"]},
        },
    ]
    assert ingress["ports"] == [{"protocol": "TCP", "port": settings["port"]}]
    api, dns = policy["egress"]
    assert api["to"] == [{"ipBlock": {"cidr": c}} for c in settings["apiServer"]["cidrs"]]
    assert api["ports"] == [{"protocol": "TCP", "port": p} for p in settings["apiServer"]["ports"]]
    assert dns["to"] == [
        {
            "namespaceSelector": {
                "matchLabels": {"kubernetes.io/metadata.name": settings["dns"]["namespace"]}
            },
            "podSelector": {"matchLabels": settings["dns"]["labels"]},
        }
    ]
    assert dns["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


def test_every_receiver_object_passes_every_policy_rule(evaluation: Evaluation) -> None:
    objects = [r for r in evaluation.kubernetes() if r.inputs.get("metadata", {}).get("name") == NAME]
    assert sorted(r.kind for r in objects) == sorted(
        ["ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "Deployment", "Service", "ServiceMonitor"]
        + (["PodDisruptionBudget"] if receiver_settings(evaluation)["replicas"] > 1 else [])
    )
    for resource in objects:
        for name, (_, rule) in RESOURCE_RULES.items():
            assert rule(resource.type, resource.inputs) == [], (resource.kind, name)
    everything = [(r.type, r.inputs) for r in evaluation.kubernetes()]
    for name, (_, stack_rule) in STACK_RULES.items():
        assert stack_rule(everything) == [], name


def test_the_policy_rules_would_catch_a_receiver_without_probes_or_with_a_wildcard(
    evaluations: dict[str, Evaluation],
) -> None:
    # The rules above really look at these objects: break them and they fail.
    evaluation = evaluations["production"]
    deployment = copy.deepcopy(evaluation.named("Deployment", NAME))
    del deployment.inputs["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    role = copy.deepcopy(evaluation.named("Role", NAME))
    role.inputs["rules"][0]["verbs"] = ["*"]
    found = [
        m for _, rule in RESOURCE_RULES.values() for r in (deployment, role) for m in rule(r.type, r.inputs)
    ]
    assert found == [
        f"Deployment {NAME}: container receiver has no readinessProbe",
        f"Role {NAME}: rules[0].verbs has a wildcard ['*']",
    ]


# ---------------------------------------------------------------- settings


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(raw_settings(stack_config("production")))


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("receiver", "port"), 80, "receiver.port is 80; allowed: an unprivileged port from 1024 to 65535"),
        (("receiver", "replicas"), 0, "receiver.replicas is 0; allowed: an integer from 1 to 5"),
        (
            ("receiver", "budget"),
            "3 per hour",
            'receiver.budget is "3 per hour"; allowed: a run budget RUNS/WINDOW',
        ),
        (("receiver", "cooldown"), "ten minutes", 'receiver.cooldown is "ten minutes"; allowed: a duration'),
        (
            ("receiver", "apiServer", "cidrs"),
            [],
            "receiver.apiServer.cidrs is []; allowed: a list of at least 1",
        ),
        (
            ("receiver", "apiServer", "cidrs", 0),
            "10.0.0.1",
            'receiver.apiServer.cidrs[0] is "10.0.0.1"; allowed: a CIDR',
        ),
        (
            ("receiver", "monitoring", "alertmanagerLabels"),
            {},
            "alertmanagerLabels is {}; allowed: a map of at least one",
        ),
        (
            ("receiver", "tokenSecret", "name"),
            "Receiver_Token",
            'tokenSecret.name is "Receiver_Token"; allowed: a Kubernetes name',
        ),
        (
            ("receiver", "maxBodyBytes"),
            10,
            "receiver.maxBodyBytes is 10; allowed: an integer from 1024 to 16777216",
        ),
    ],
)
def test_bad_receiver_settings_fail_with_their_own_message(
    raw: dict[str, Any], path: tuple[str | int, ...], value: Any, expected: str
) -> None:
    target: Any = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "production")
    message = str(caught.value)
    assert message.startswith("stacks/Pulumi.production.yaml: 1 invalid stack setting(s):"), message
    assert expected in message
    assert "fix: pulumi config " in message


def test_bad_label_names_and_values_are_named(raw: dict[str, Any]) -> None:
    raw["receiver"]["monitoring"]["prometheusLabels"] = {"Bad Key": "prometheus"}
    raw["receiver"]["dns"]["labels"] = {"k8s-app": "kube dns!"}
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "production")
    message = str(caught.value)
    assert (
        "receiver.monitoring.prometheusLabels.Bad Key is an invalid key name; allowed: a label name"
        in message
    )
    assert "pulumi config rm --path 'receiver.monitoring.prometheusLabels.Bad Key'" in message
    assert 'receiver.dns.labels.k8s-app is "kube dns!"; allowed: a label value: at most 63' in message


def test_a_missing_or_unknown_receiver_key_names_the_fix(raw: dict[str, Any]) -> None:
    del raw["receiver"]["cooldown"]
    raw["receiver"]["token"] = "s3cr3t"  # a value does not belong in a stack file
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, "production")
    message = str(caught.value)
    assert "shorts-platform:receiver.cooldown is missing" in message
    assert "pulumi config set --path 'receiver.cooldown' '10m' --stack production" in message
    assert "shorts-platform:receiver.token is an unknown key" in message
    assert "pulumi config rm --path 'receiver.token' --stack production" in message
    assert "s3cr3t" not in message  # an unknown key is named, its value never echoed


def test_the_receiver_follows_its_settings(raw: dict[str, Any]) -> None:
    raw["receiver"].update({"replicas": 1, "port": 9095, "cooldown": "30m"})
    config = {f"shorts-platform:{k}": v for k, v in raw.items()}
    evaluation = evaluate("production", config=config)
    args = receiver_container(evaluation)["args"]
    assert args[args.index("--listen") + 1] == "0.0.0.0:9095"
    assert args[args.index("--cooldown") + 1] == "30m"
    assert evaluation.named("Deployment", NAME).inputs["spec"]["replicas"] == 1
    assert not [p for p in evaluation.of_kind("PodDisruptionBudget") if p.inputs["metadata"]["name"] == NAME]
    ingress = evaluation.named("NetworkPolicy", NAME).inputs["spec"]["ingress"][0]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 9095}]


def test_the_alertmanager_doc_points_at_the_declared_service(evaluations: dict[str, Evaluation]) -> None:
    doc = (ROOT / "docs" / "alertmanager.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```yaml\n")[1:]]
    config = next(yaml.safe_load(b) for b in blocks if "receivers" in (yaml.safe_load(b) or {}))
    (webhook,) = next(r for r in config["receivers"] if r["name"] == "remediation")["webhook_configs"]
    assert webhook["url"] == evaluations["production"].exports["alertReceiverUrl"]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials_file" in webhook["http_config"]["authorization"]
