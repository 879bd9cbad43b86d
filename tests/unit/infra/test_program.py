"""The program under Pulumi mocks, for every stack: the manual's numbers where a user would look for them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from infra.evaluate import Evaluation, raw_settings, stack_config

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ("api", "app", "admin")


def settings_of(evaluation: Evaluation) -> dict[str, Any]:
    return raw_settings(stack_config(evaluation.stack))


def pod_spec(rollout: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = rollout["spec"]["template"]["spec"]
    return spec


# ---------------------------------------------------------------- web services


def test_rollouts_run_the_manuals_canary(evaluation: Evaluation) -> None:
    for name in SERVICES:
        canary = evaluation.named("Rollout", name).inputs["spec"]["strategy"]["canary"]
        assert canary["steps"] == [
            {"setWeight": 5},
            {"pause": {"duration": "10m"}},
            {"setWeight": 25},
            {"pause": {"duration": "10m"}},
            {"setWeight": 50},
            {"pause": {"duration": "10m"}},
            {"setWeight": 100},
        ]
        assert canary["stableService"] == f"{name}-stable"
        assert canary["canaryService"] == f"{name}-canary"
        assert canary["trafficRouting"] == {"traefik": {"weightedTraefikServiceName": f"{name}-weighted"}}
        # the names it refers to exist
        evaluation.named("Service", f"{name}-stable")
        evaluation.named("Service", f"{name}-canary")
        template = canary["analysis"]["templates"][0]["templateName"]
        evaluation.named("AnalysisTemplate", template)


def test_the_hpa_owns_the_replica_count(evaluation: Evaluation) -> None:
    services = settings_of(evaluation)["services"]
    for name in SERVICES:
        assert "replicas" not in evaluation.named("Rollout", name).inputs["spec"]
        hpa = evaluation.named("HorizontalPodAutoscaler", name).inputs["spec"]
        assert hpa["scaleTargetRef"] == {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "name": name,
        }
        targets = {m["resource"]["name"]: m["resource"]["target"] for m in hpa["metrics"]}
        assert targets == {
            "cpu": {"type": "Utilization", "averageUtilization": 70},
            "memory": {"type": "Utilization", "averageUtilization": 80},
        }
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (
            services[name]["minReplicas"],
            services[name]["maxReplicas"],
        )
        scale_up = hpa["behavior"]["scaleUp"]["policies"]
        assert {"type": "Pods", "value": 2, "periodSeconds": 60} in scale_up  # the manual's "+2 instances"
        assert hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_analysis_gates_on_error_rate_and_latency_with_nan_guarded(evaluation: Evaluation) -> None:
    prometheus = settings_of(evaluation)["prometheusUrl"]
    for name in SERVICES:
        metrics = {
            m["name"]: m
            for m in evaluation.named("AnalysisTemplate", f"{name}-canary-analysis").inputs["spec"]["metrics"]
        }
        errors, latency = metrics["error-ratio"], metrics["p95-latency"]
        assert errors["successCondition"] == "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.001"
        assert errors["failureCondition"] == "len(result) > 0 && !isNaN(result[0]) && result[0] >= 0.001"
        assert latency["successCondition"] == "len(result) > 0 && !isNaN(result[0]) && result[0] < 0.5"
        assert 'code=~"5.."' in errors["provider"]["prometheus"]["query"]
        assert "histogram_quantile(0.95" in latency["provider"]["prometheus"]["query"]
        assert {m["provider"]["prometheus"]["address"] for m in metrics.values()} == {prometheus}
        # the Rollout passes the canary's Traefik service id the queries select on
        args = evaluation.named("Rollout", name).inputs["spec"]["strategy"]["canary"]["analysis"]["args"]
        assert args == [{"name": "traefik-service", "value": f"shorts-{name}-canary-80@kubernetescrd"}]


def test_traefik_service_carries_the_weights(evaluation: Evaluation) -> None:
    for name in SERVICES:
        weighted = evaluation.named("TraefikService", f"{name}-weighted").inputs["spec"]["weighted"][
            "services"
        ]
        assert weighted == [
            {"name": f"{name}-stable", "port": 80, "weight": 100},
            {"name": f"{name}-canary", "port": 80, "weight": 0},
        ]


def test_pods_are_probed_sized_spread_and_locked_down(evaluation: Evaluation) -> None:
    services = settings_of(evaluation)["services"]
    for name in SERVICES:
        spec = pod_spec(evaluation.named("Rollout", name).inputs)
        (container,) = spec["containers"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["resources"] == {
            "requests": services[name]["requests"],
            "limits": services[name]["limits"],
        }
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        }
        assert spec["securityContext"]["runAsNonRoot"] is True
        keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        pdb = evaluation.named("PodDisruptionBudget", name).inputs["spec"]
        assert pdb["maxUnavailable"] == 1
        assert pdb["selector"] == evaluation.named("Rollout", name).inputs["spec"]["selector"]


# ---------------------------------------------------------------- edge


def test_rate_limits_per_tier(evaluation: Evaluation) -> None:
    limits = {
        tier: evaluation.named("Middleware", f"ratelimit-{tier}").inputs["spec"]["rateLimit"]
        for tier in ("anonymous", "authenticated", "premium")
    }
    assert {t: (v["average"], v["period"]) for t, v in limits.items()} == {
        "anonymous": (100, "15m"),
        "authenticated": (1000, "15m"),
        "premium": (5000, "15m"),
    }
    assert "ipStrategy" in limits["anonymous"]["sourceCriterion"]
    for tier in ("authenticated", "premium"):
        assert limits[tier]["sourceCriterion"] == {"requestHeaderName": "X-Shorts-User"}


def test_compression_and_cache_control(evaluation: Evaluation) -> None:
    assert evaluation.named("Middleware", "compress").inputs["spec"] == {
        "compress": {"minResponseBodyBytes": 1024}
    }
    headers = {
        name: evaluation.named("Middleware", f"cache-{name}").inputs["spec"]["headers"][
            "customResponseHeaders"
        ]
        for name in ("static", "trending", "search")
    }
    assert headers == {
        "static": {"Cache-Control": "public, max-age=2592000, immutable"},
        "trending": {"Cache-Control": "public, max-age=300"},
        "search": {"Cache-Control": "public, max-age=3600"},
    }


_MATCHER = re.compile(r"(Host|PathPrefix|Header)\(`([^`]*)`(?:, `([^`]*)`)?\)")


def route_for(evaluation: Evaluation, host: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """What Traefik would pick for a request: the highest-priority route whose rule matches."""
    candidates = []
    for route_resource in evaluation.of_kind("IngressRoute"):
        for route in route_resource.inputs["spec"]["routes"]:
            checks = _MATCHER.findall(route["match"])
            assert (
                " && ".join(f"{f}(`{a}`" + (f", `{b}`)" if b else ")") for f, a, b in checks)
                == route["match"]
            )
            ok = all(
                (f == "Host" and a == host)
                or (f == "PathPrefix" and path.startswith(a))
                or (f == "Header" and headers.get(a) == b)
                for f, a, b in checks
            )
            if ok:
                candidates.append(route)
    assert candidates, f"no route for {host}{path}"
    best = max(candidates, key=lambda r: r["priority"])
    assert [r["priority"] for r in candidates].count(best["priority"]) == 1, "ambiguous routes"
    return best


def middlewares(route: dict[str, Any]) -> list[str]:
    return [m["name"] for m in route["middlewares"]]


def test_requests_get_the_limit_of_their_tier_and_the_ttl_of_their_path(evaluation: Evaluation) -> None:
    domain = settings_of(evaluation)["domain"]
    api, app = f"api.{domain}", f"app.{domain}"
    premium = {"X-Shorts-Tier": "premium"}
    cases = [
        (api, "/api/trending", {}, ["ratelimit-anonymous", "compress", "cache-trending"]),
        (api, "/api/trending?x=1", premium, ["ratelimit-premium", "compress", "cache-trending"]),
        (
            api,
            "/api/search",
            {"X-Shorts-Tier": "authenticated"},
            ["ratelimit-authenticated", "compress", "cache-search"],
        ),
        (api, "/api/videos", premium, ["ratelimit-premium", "compress"]),
        (api, "/api/videos", {"X-Shorts-Tier": "gold"}, ["ratelimit-anonymous", "compress"]),  # unknown tier
        (app, "/static/app.js", {}, ["ratelimit-anonymous", "compress", "cache-static"]),
        (app, "/", {}, ["ratelimit-anonymous", "compress"]),
    ]
    for host, path, headers, expected in cases:
        assert middlewares(route_for(evaluation, host, path, headers)) == expected, (host, path, headers)
    route = route_for(evaluation, api, "/api/videos", premium)
    assert route["services"] == [{"kind": "TraefikService", "name": "api-weighted"}]


def test_app_policy_holds_the_values_the_service_enforces(evaluation: Evaluation) -> None:
    data = evaluation.named("ConfigMap", "app-policy").inputs["data"]
    policy = json.loads(data["policy.json"])
    assert policy["rateLimiting"]["windowMs"] == 15 * 60 * 1000
    assert policy["rateLimiting"]["max"] == {"anonymous": 100, "authenticated": 1000, "premium": 5000}
    assert policy["caching"]["static"]["maxAgeSeconds"] == 86400 * 30
    assert policy["caching"]["api"] == {"/api/trending": 300, "/api/search": 3600}
    assert policy["compression"] == {"enable": True, "level": 6, "threshold": 1024}
    assert (data["GZIP_LEVEL"], data["GZIP_THRESHOLD"], data["RATE_LIMIT_WINDOW_MS"]) == (
        "6",
        "1024",
        "900000",
    )
    for name in SERVICES:
        (container,) = pod_spec(evaluation.named("Rollout", name).inputs)["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": "app-policy"}}]


# ---------------------------------------------------------------- operations


CONTRACT_RULES = [  # the helper contract, written out independently of infra/rbac.py
    ("apps", "deployments", ["get", "list", "watch", "patch"]),
    ("apps", "replicasets", ["get", "list", "watch"]),
    ("argoproj.io", "rollouts", ["get", "list", "watch", "patch"]),
    ("argoproj.io", "rollouts/status", ["patch"]),
    ("autoscaling", "horizontalpodautoscalers", ["get", "list", "patch"]),
    ("", "pods", ["get", "list", "watch"]),
    ("batch", "cronjobs", ["get", "list"]),
    ("batch", "jobs", ["get", "list"]),
    ("coordination.k8s.io", "leases", ["get", "create", "update"]),
    ("", "events", ["create", "patch"]),
    ("events.k8s.io", "events", ["create", "patch"]),
    ("", "configmaps", ["get", "list", "create", "update"]),  # run records (remediation runs/resume)
]


def test_remediation_identity_has_exactly_the_contracts_rules(evaluation: Evaluation) -> None:
    evaluation.named("Namespace", "shorts")
    evaluation.named("ServiceAccount", "remediation")
    role = evaluation.named("Role", "remediation").inputs
    granted = sorted((r["apiGroups"][0], r["resources"][0], r["verbs"]) for r in role["rules"])
    assert granted == sorted(CONTRACT_RULES)
    assert all(len(r["apiGroups"]) == len(r["resources"]) == 1 for r in role["rules"])
    binding = evaluation.named("RoleBinding", "remediation").inputs
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "remediation",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "remediation", "namespace": "shorts"}]


def test_runbooks_config_map_holds_every_runbook_file(evaluation: Evaluation) -> None:
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "runbooks").glob("*.yaml"))}
    data = evaluation.named("ConfigMap", "runbooks").inputs.get("data", {})
    assert data == on_disk  # (key order is lost on the wire: a protobuf map; runbook_files sorts by name)


def test_runbook_files_are_read_in_name_order(tmp_path: Path) -> None:
    from infra.operations import runbook_files

    for name in ("scale-out.yaml", "api-restart.yaml", "notes.md"):
        (tmp_path / name).write_text(f"# {name}\n", encoding="utf-8")
    assert list(runbook_files(tmp_path)) == ["api-restart.yaml", "scale-out.yaml"]
    assert runbook_files(tmp_path / "absent") == {}


def test_every_alert_names_a_runbook_that_triggers_on_it(evaluation: Evaluation) -> None:
    """The alert receiver maps an alert to a runbook by its `runbook` label: that runbook must exist and say
    it answers the alert (checked against whatever runbooks/ holds)."""
    (group,) = evaluation.named("PrometheusRule", "shorts-alerts").inputs["spec"]["groups"]
    for rule in group["rules"]:
        path = ROOT / "runbooks" / f"{rule['labels']['runbook']}.yaml"
        assert path.exists(), f"{rule['alert']}: no {path.name}"
        triggers = yaml.safe_load(path.read_text(encoding="utf-8")).get("triggers", [])
        assert {"alert": rule["alert"]} in triggers, f"{path.name} does not trigger on {rule['alert']}"


def test_scheduled_checks_run_in_seoul_time(evaluation: Evaluation) -> None:
    schedules = {c.inputs["metadata"]["name"]: c.inputs["spec"] for c in evaluation.of_kind("CronJob")}
    assert {name: spec["schedule"] for name, spec in schedules.items()} == {
        "morning-check": "0 9 * * *",
        "afternoon-check": "0 14 * * *",
        "evening-check": "0 18 * * *",
        "weekly-db-maintenance": "0 2 * * 1",
    }
    for name, spec in schedules.items():
        assert spec["timeZone"] == "Asia/Seoul"
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] == 0
        pod = job["template"]["spec"]
        assert pod["serviceAccountName"] == "remediation"
        (container,) = pod["containers"]
        assert container["command"] == ["remediation"]
        args = container["args"]
        assert args[:4] == ["run", name, "--runbooks-dir", "/etc/shorts/runbooks"]
        assert args[args.index("--state-dir") + 1].startswith("/tmp/")  # the only writable path
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "runbooks", "configMap": {"name": "runbooks"}} in pod["volumes"]


def test_remediation_profile_matches_the_stack(evaluation: Evaluation) -> None:
    settings = settings_of(evaluation)
    profile = yaml.safe_load(
        evaluation.named("ConfigMap", "remediation-profile").inputs["data"]["profile.yaml"]
    )
    assert profile["namespace"] == "shorts"
    assert profile["prometheus_url"] == settings["prometheusUrl"]
    assert profile["api_url"] == settings["remediation"]["profile"]["api_url"]
    assert not any("password" in str(v).lower() for v in profile.values())


ALERTS = {
    # alert: (runbook, severity, a fragment of the expression carrying the manual's number)
    "APIHealthCheckFailed": ("api-restart", "P1", "== 0"),
    "DBConnectionPoolExhausted": ("db-pool-reset", "P1", ">= 100"),
    "CacheMemoryExceeded": ("cache-flush-warm", "P2", "> 0.9"),
    "APIResponseTimeHigh": ("scale-out", "P2", "> 0.5"),
    "ErrorRateHigh": ("p0-incident", "P1", "> 0.001"),
    "TrafficOverload": ("traffic-overload", "P1", "> 0.5"),
    "YouTubeQuotaHigh": ("morning-check", "P2", "/ 8000 > 0.8"),
    "CertificateExpiringSoon": ("morning-check", "P3", "< 30"),
}


def test_prometheus_rule_carries_the_manuals_alerts(evaluation: Evaluation) -> None:
    (group,) = evaluation.named("PrometheusRule", "shorts-alerts").inputs["spec"]["groups"]
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == set(ALERTS)
    for alert, (runbook, severity, fragment) in ALERTS.items():
        assert rules[alert]["labels"] == {"runbook": runbook, "severity": severity}
        assert fragment in rules[alert]["expr"], rules[alert]["expr"]


# ---------------------------------------------------------------- structure


def test_components_parent_their_children_and_register_outputs(evaluation: Evaluation) -> None:
    components = {r.urn: r for r in evaluation.resources if not r.custom}
    assert {r.type for r in components.values()} == {
        "shorts:web:WebService",
        "shorts:edge:Edge",
        "shorts:edge:AppPolicy",
        "shorts:operations:Operations",
        "shorts:operations:Alerting",
        "shorts:operations:AlertReceiver",
    }
    for resource in evaluation.kubernetes():
        assert resource.parent in components, f"{resource.type} {resource.name} has no component parent"
    for component in components.values():
        assert component.outputs, f"{component.type} {component.name} registered no outputs"
    web = [c for c in components.values() if c.type == "shorts:web:WebService"]
    assert sorted(c.outputs["rollout"] for c in web) == sorted(SERVICES)


def test_stack_outputs(evaluation: Evaluation) -> None:
    domain = settings_of(evaluation)["domain"]
    assert evaluation.exports["namespace"] == "shorts"
    assert evaluation.exports["hosts"] == [f"{s}.{domain}" for s in SERVICES]
    assert evaluation.exports["canaryWeights"] == [5, 25, 50, 100]


def test_edge_serves_tls_when_the_public_urls_are_https(evaluations: dict[str, Evaluation]) -> None:
    for stack, evaluation in evaluations.items():
        https = settings_of(evaluation)["remediation"]["profile"]["api_url"].startswith("https://")
        for route in evaluation.of_kind("IngressRoute"):
            assert route.inputs["spec"]["entryPoints"] == (["websecure"] if https else ["web"]), stack
            assert ("tls" in route.inputs["spec"]) == https


def test_render_directory_setting_sends_manifests_to_a_directory() -> None:
    from infra.evaluate import evaluate

    config = stack_config("local")
    config["shorts-platform:renderDirectory"] = "build/rendered/local"
    providers = [
        r for r in evaluate("local", config=config).resources if r.type == "pulumi:providers:kubernetes"
    ]
    assert [p.inputs.get("renderYamlToDirectory") for p in providers] == ["build/rendered/local"]


def test_mocks_render_writes_one_file_per_resource_deterministically(
    evaluations: dict[str, Evaluation], tmp_path: Path
) -> None:
    """tools.render: what the manifest tests (strict validation, server dry run) read, one file per object."""
    from tools.render import render

    def run() -> dict[str, str]:
        render("production", tmp_path)
        return {p.name: p.read_text(encoding="utf-8") for p in sorted(tmp_path.glob("*.yaml"))}

    first = run()
    assert len(first) == len(evaluations["production"].kubernetes())
    for name, text in first.items():
        (document,) = list(yaml.safe_load_all(text))
        assert name.endswith(f"-{document['kind'].lower()}-{document['metadata']['name']}.yaml")
    assert sorted(first)[0] == "00-namespace-shorts.yaml"
    assert run() == first
