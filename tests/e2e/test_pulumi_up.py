"""`pulumi up` of the `local` stack with the real engine (tools/build-pulumi.sh), offline, through the
Automation API, against the local control plane; then a second `up` and a `destroy`.

The tests of this module share one deployment and run in file order: the objects are asserted after the
first `up`, the second `up` must change nothing, and the last test destroys the stack and lists what is left.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pulumi_kubernetes as k8s
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from pulumi import automation as auto

from tests.e2e.conftest import PROJECT_DIR, Cluster, eventually, pinned_versions, write_token_kubeconfig
from tests.e2e.test_runbooks_cluster import (
    by_id,
    healthy,
    read_rollout,
    remediation,
    shorts,  # noqa: F401 (a fixture)
    slack,  # noqa: F401 (a fixture)
    when,
    write_profile,
)
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub

pytestmark = pytest.mark.e2e

STACK = "local"
POLICY = [str(PROJECT_DIR / "policy")]
NAMESPACE = "shorts"  # stacks/Pulumi.local.yaml
SERVICES = ("api", "app", "admin")
# The objects that live in the namespace, by API: what `destroy` must leave none of.
NAMESPACED_CUSTOM = (
    ("argoproj.io", "v1alpha1", "rollouts"),
    ("argoproj.io", "v1alpha1", "analysistemplates"),
    ("traefik.io", "v1alpha1", "middlewares"),
    ("traefik.io", "v1alpha1", "ingressroutes"),
    ("traefik.io", "v1alpha1", "traefikservices"),
    ("monitoring.coreos.com", "v1", "prometheusrules"),
)


@dataclass(frozen=True)
class Deployment:
    stack: auto.Stack
    first: auto.UpResult
    second: auto.UpResult
    api: client.ApiClient


def engine_env(cluster: Cluster, state: Path) -> tuple[Path, dict[str, str]]:
    """The engine's bin dir and the environment that runs it offline, with a private backend and home.

    The provider goes into that home's plugin cache under the version the Python SDK asks for, as
    tools/up.sh does, so the engine would refuse a provider that does not match the SDK.
    """
    bin_dir = Path(
        subprocess.run(
            [str(PROJECT_DIR / "tools" / "build-pulumi.sh"), "--bin-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    if not (bin_dir / "pulumi").is_file():
        pytest.fail(f"the Pulumi engine is not built ({bin_dir}): run `make tools`", pytrace=False)
    env = {
        "PULUMI_HOME": str(state / "home"),
        "PULUMI_BACKEND_URL": f"file://{state / 'backend'}",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # The Automation API puts the CLI's dir on PATH; plugins must still come from the plugin cache.
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_CONFIG_PASSPHRASE": "",
        "KUBECONFIG": str(cluster.kubeconfig),
    }
    (state / "backend").mkdir(parents=True)
    version = pinned_versions()["PULUMI_KUBERNETES_VERSION"]
    install = [str(bin_dir / "pulumi"), "plugin", "install", "resource", "kubernetes", version]
    install += ["--file", str(bin_dir / "pulumi-resource-kubernetes")]
    subprocess.run(install, env={**os.environ, **env}, check=True, capture_output=True)
    return bin_dir, env


@dataclass(frozen=True)
class Engine:
    bin_dir: Path
    env: dict[str, str]

    def workspace(self, work_dir: Path) -> auto.LocalWorkspaceOptions:
        return auto.LocalWorkspaceOptions(
            work_dir=str(work_dir),
            env_vars=self.env,
            pulumi_home=self.env["PULUMI_HOME"],
            pulumi_command=auto.PulumiCommand(root=str(self.bin_dir.parent)),
        )


@pytest.fixture(scope="module")
def engine(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(*engine_env(cluster, tmp_path_factory.mktemp("pulumi")))


@pytest.fixture(scope="module")
def deployment(cluster: Cluster, engine: Engine) -> Iterator[Deployment]:
    api = cluster.api_client()
    try:
        client.CoreV1Api(api).read_namespace(NAMESPACE)
        pytest.fail(
            f"namespace {NAMESPACE} already exists in the test cluster (a `make up`?): run `make down` first",
            pytrace=False,
        )
    except ApiException as exc:
        if exc.status != 404:
            raise
    workspace = engine.workspace(PROJECT_DIR)
    stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(PROJECT_DIR), opts=workspace)
    try:
        first = stack.up(policy_packs=POLICY, color="never")
        second = stack.up(policy_packs=POLICY, color="never")
        yield Deployment(stack, first, second, api)
    finally:
        # Leaves the cluster clean whatever failed; a no-op once test_destroy_leaves_nothing_behind has run.
        stack.destroy(color="never")


def custom(dep: Deployment, group: str, version: str, plural: str, name: str) -> dict[str, Any]:
    obj = client.CustomObjectsApi(dep.api).get_namespaced_custom_object(
        group, version, NAMESPACE, plural, name
    )
    return cast(dict[str, Any], obj)


def custom_list(dep: Deployment, group: str, version: str, plural: str) -> list[dict[str, Any]]:
    found = client.CustomObjectsApi(dep.api).list_namespaced_custom_object(group, version, NAMESPACE, plural)
    return cast(list[dict[str, Any]], cast(dict[str, Any], found)["items"])


def changes(summary: auto.UpdateSummary) -> dict[str, int]:
    """resource_changes by operation name ("create", "same", ...)."""
    return {str(getattr(op, "value", op)): n for op, n in (summary.resource_changes or {}).items()}


def test_up_creates_the_rollouts_with_the_manuals_canary_steps_and_analysis(deployment: Deployment) -> None:
    assert deployment.first.summary.result == "succeeded"
    assert changes(deployment.first.summary).get("create", 0) > 0
    for name in SERVICES:
        canary = custom(deployment, "argoproj.io", "v1alpha1", "rollouts", name)["spec"]["strategy"]["canary"]
        assert canary["steps"] == [
            {"setWeight": 5},
            {"pause": {"duration": "10m"}},
            {"setWeight": 25},
            {"pause": {"duration": "10m"}},
            {"setWeight": 50},
            {"pause": {"duration": "10m"}},
            {"setWeight": 100},
        ]
        templates = [t["templateName"] for t in canary["analysis"]["templates"]]
        assert templates == [f"{name}-canary-analysis"]
        # The analysis it names exists and queries Prometheus.
        analysis = custom(deployment, "argoproj.io", "v1alpha1", "analysistemplates", templates[0])
        assert all("prometheus" in m["provider"] for m in analysis["spec"]["metrics"])


def test_up_creates_hpas_on_the_rollouts_with_cpu_70_and_memory_80(deployment: Deployment) -> None:
    autoscaling = client.AutoscalingV2Api(deployment.api)
    for name in SERVICES:
        hpa = autoscaling.read_namespaced_horizontal_pod_autoscaler(name, NAMESPACE)
        assert (hpa.spec.scale_target_ref.kind, hpa.spec.scale_target_ref.name) == ("Rollout", name)
        metrics = [m.resource for m in hpa.spec.metrics or [] if m.resource is not None]
        targets = {r.name: r.target.average_utilization for r in metrics}
        assert targets == {"cpu": 70, "memory": 80}


def test_up_creates_rate_limit_middlewares_with_the_manuals_limits(deployment: Deployment) -> None:
    middlewares = custom_list(deployment, "traefik.io", "v1alpha1", "middlewares")
    limits = sorted(
        (m["spec"]["rateLimit"]["average"], m["spec"]["rateLimit"]["period"])
        for m in middlewares
        if "rateLimit" in m["spec"]
    )
    assert limits == [(100, "15m"), (1000, "15m"), (5000, "15m")]
    compress = [m["spec"]["compress"] for m in middlewares if "compress" in m["spec"]]
    assert [c.get("minResponseBodyBytes") for c in compress] == [1024]


def test_up_creates_cronjobs_in_seoul_time(deployment: Deployment) -> None:
    jobs = client.BatchV1Api(deployment.api).list_namespaced_cron_job(NAMESPACE).items
    assert {j.spec.time_zone for j in jobs} == {"Asia/Seoul"}
    assert sorted(j.spec.schedule for j in jobs) == sorted(
        ["0 9 * * *", "0 14 * * *", "0 18 * * *", "0 2 * * 1"]
    )


def test_up_creates_the_remediation_role_with_exactly_the_contracts_rules(deployment: Deployment) -> None:
    role = client.RbacAuthorizationV1Api(deployment.api).read_namespaced_role("remediation", NAMESPACE)
    granted = {
        (group, resource, verb)
        for rule in role.rules or []
        for group in rule.api_groups or []
        for resource in rule.resources or []
        for verb in rule.verbs
    }
    contract = {
        ("apps", "deployments", "get,list,watch,patch"),
        ("apps", "replicasets", "get,list,watch"),
        ("argoproj.io", "rollouts", "get,list,watch,patch"),
        ("argoproj.io", "rollouts/status", "patch"),
        ("autoscaling", "horizontalpodautoscalers", "get,list,patch"),
        ("", "pods", "get,list,watch"),
        ("batch", "cronjobs", "get,list"),
        ("batch", "jobs", "get,list"),
        ("coordination.k8s.io", "leases", "get,create,update"),
        ("", "events", "create,patch"),
        ("events.k8s.io", "events", "create,patch"),
        ("", "configmaps", "get,list,create,update"),  # run records; runbooks and profile are immutable
    }
    assert granted == {(g, r, v) for g, r, verbs in contract for v in verbs.split(",")}


def test_up_creates_the_prometheus_rule_with_the_manuals_alerts(deployment: Deployment) -> None:
    rules = custom_list(deployment, "monitoring.coreos.com", "v1", "prometheusrules")
    alerts = {
        r["alert"]: r for rule in rules for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r
    }
    assert {
        "APIHealthCheckFailed",
        "DBConnectionPoolExhausted",
        "CacheMemoryExceeded",
        "APIResponseTimeHigh",
        "ErrorRateHigh",
        "YouTubeQuotaHigh",
        "CertificateExpiringSoon",
    } <= set(alerts)
    for name, alert in alerts.items():
        assert alert["labels"].get("runbook"), name
        assert alert["labels"].get("severity"), name
    assert "0.001" in alerts["ErrorRateHigh"]["expr"]
    assert "0.8" in alerts["YouTubeQuotaHigh"]["expr"]


def test_second_up_reports_no_changes(deployment: Deployment) -> None:
    second = changes(deployment.second.summary)
    assert set(second) == {"same"}, second
    assert second["same"] == sum(changes(deployment.first.summary).values())


def test_api_restart_runbook_restarts_the_rollout_that_up_created(
    deployment: Deployment,
    shorts: ShortsStub,  # noqa: F811 (the fixture imported above)
    slack: SlackStub,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The runbook, under the Role and ServiceAccount `up` declared, restarts the Rollout `up` declared."""
    api = deployment.api
    replicas = read_rollout(api, NAMESPACE)["spec"]["replicas"]
    eventually(lambda: healthy(api, NAMESPACE, "api", replicas), 120, "the api Rollout Healthy")
    others = {name: read_rollout(api, NAMESPACE, name)["spec"] for name in ("app", "admin")}
    shorts.behave("/health", status=503)
    # The restart is what heals the service: /health answers 200 again once spec.restartAt is written.
    stop = when(lambda: "restartAt" in read_rollout(api, NAMESPACE)["spec"], shorts.reset)
    token = (
        client.CoreV1Api(api)
        .create_namespaced_service_account_token(
            "remediation", NAMESPACE, {"spec": {"expirationSeconds": 3600}}
        )
        .status.token
    )
    kubeconfig = write_token_kubeconfig(api, token, tmp_path / "remediation.kubeconfig")
    profile_file = write_profile(tmp_path / "profile.yaml", str(kubeconfig), api_url=shorts.url)
    try:
        code, result = remediation(
            "api-restart", profile_file=profile_file, state=tmp_path / "state", slack=slack
        )
    finally:
        stop.set()

    assert (code, result["outcome"]) == (0, "success"), result
    steps = by_id(result)
    assert [steps[s]["outcome"] for s in ("restart", "wait-ready", "verify")] == ["success"] * 3
    restarted = read_rollout(api, NAMESPACE)
    assert restarted["spec"]["restartAt"] == steps["restart"]["output"]["restarted_at"]
    eventually(
        lambda: read_rollout(api, NAMESPACE)["status"].get("restartedAt") == restarted["spec"]["restartAt"],
        120,
        "the controller to finish the restart",
    )
    assert {name: read_rollout(api, NAMESPACE, name)["spec"] for name in others} == others
    assert slack.posts == []


def test_destroy_leaves_nothing_behind(deployment: Deployment) -> None:
    # Once, and it must succeed: the provider's delete await used to panic on Rollouts (a nil kstatus result,
    # fixed by tools/pulumi/provider-deleted-await.patch), and a retry here would hide its return.
    result = deployment.stack.destroy(color="never")
    assert result.summary.result == "succeeded"
    assert changes(result.summary).get("delete", 0) > 0
    assert (deployment.stack.export_stack().deployment or {}).get("resources", []) == []
    try:
        ns = client.CoreV1Api(deployment.api).read_namespace(NAMESPACE)
    except ApiException as exc:
        assert exc.status == 404
    else:
        pytest.fail(f"namespace {NAMESPACE} is still there ({ns.status})")
    for group, version, plural in NAMESPACED_CUSTOM:
        assert [o["metadata"]["name"] for o in custom_list(deployment, group, version, plural)] == [], plural


def test_preview_of_a_wildcard_role_is_blocked_by_the_policy_pack(engine: Engine, tmp_path: Path) -> None:
    """The stack settings cannot express a wildcard Role, so a small program declares one: the engine must run
    the project's policy pack and refuse the preview with the rule's name and message."""

    def program() -> None:
        k8s.rbac.v1.Role(
            "too-broad",
            metadata={"name": "too-broad", "namespace": "default"},
            rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}],
        )

    stack = auto.create_or_select_stack(
        stack_name="probe", project_name="policy-probe", program=program, opts=engine.workspace(tmp_path)
    )
    with pytest.raises(auto.CommandError) as refused:
        stack.preview(policy_packs=POLICY, color="never")
    shown = str(refused.value)
    assert "[mandatory]  no-wildcard-rbac" in shown
    assert "Role too-broad: rules[0].verbs has a wildcard" in shown
    assert "'*'" in shown.split("rules[0].verbs has a wildcard", 1)[1].splitlines()[0]  # readable, not a repr
