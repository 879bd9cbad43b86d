"""Each policy rule accepts what the program declares and rejects what it should, saying why."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import unknown_checking_proxy

from infra.evaluate import Evaluation, evaluate, stacks
from policy.pack import policies
from policy.rules import (
    RESOURCE_RULES,
    STACK_RULES,
    canary_steps_valid,
    duration_seconds,
    hpa_owned_without_replicas,
    hpa_targets_in_range,
    no_latest_images,
    no_wildcard_rbac,
    probes_and_resources,
    rate_limits_positive,
)

ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
MIDDLEWARE = "kubernetes:traefik.io/v1alpha1:Middleware"


@pytest.fixture(scope="module")
def evaluations() -> dict[str, Evaluation]:
    return {stack: evaluate(stack) for stack in stacks()}


def test_every_resource_of_every_stack_passes_every_rule(evaluations: dict[str, Evaluation]) -> None:
    for stack, evaluation in evaluations.items():
        resources = [(r.type, r.inputs) for r in evaluation.kubernetes()]
        assert len(resources) > 40
        for name, (_, rule) in RESOURCE_RULES.items():
            violations = [v for t, props in resources for v in rule(t, props)]
            assert violations == [], f"{stack}: {name}"
        for name, (_, stack_rule) in STACK_RULES.items():
            assert stack_rule(resources) == [], f"{stack}: {name}"


def _container(**overrides: Any) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    container: dict[str, Any] = {
        "name": "api",
        "image": "ghcr.io/x/api:1.0.0",
        "livenessProbe": probe,
        "readinessProbe": probe,
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "256Mi"},
        },
    }
    container.update(overrides)
    return {k: v for k, v in container.items() if v is not None}


def _workload(container: dict[str, Any], replicas: int | None = None, name: str = "api") -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name, "namespace": "shorts"}, "spec": spec}


def _cronjob(container: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "check"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [container]}}}}},
    }


# ---------------------------------------------------------------- probes and resources


def test_probes_and_resources_accepts_a_complete_container() -> None:
    assert probes_and_resources(ROLLOUT, _workload(_container())) == []


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (_container(livenessProbe=None), "Rollout api: container api has no livenessProbe"),
        (_container(readinessProbe=None), "Rollout api: container api has no readinessProbe"),
        (_container(resources=None), "Rollout api: container api has no resources.requests.cpu"),
        (
            _container(resources={"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1"}}),
            "Rollout api: container api has no resources.limits.memory",
        ),
    ],
)
def test_probes_and_resources_rejects(container: dict[str, Any], message: str) -> None:
    assert message in probes_and_resources(ROLLOUT, _workload(container))


def test_jobs_need_resources_but_no_probes() -> None:
    job_container = _container(livenessProbe=None, readinessProbe=None)
    assert probes_and_resources(CRONJOB, _cronjob(job_container)) == []
    assert probes_and_resources(CRONJOB, _cronjob(_container(livenessProbe=None, resources=None))) == [
        "CronJob check: container api has no resources.requests.cpu",
        "CronJob check: container api has no resources.requests.memory",
        "CronJob check: container api has no resources.limits.cpu",
        "CronJob check: container api has no resources.limits.memory",
    ]


def test_init_containers_are_checked_too() -> None:
    workload = _workload(_container())
    workload["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "x/m:1"}]
    assert "Deployment api: container migrate has no resources.limits.cpu" in probes_and_resources(
        DEPLOYMENT, workload
    )


# ---------------------------------------------------------------- images


@pytest.mark.parametrize(
    "image", ["ghcr.io/x/api:1.0.0", "registry:5000/x/api:2", "x/api@sha256:" + "a" * 64]
)
def test_pinned_images_pass(image: str) -> None:
    assert no_latest_images(ROLLOUT, _workload(_container(image=image))) == []


@pytest.mark.parametrize("image", ["ghcr.io/x/api:latest", "ghcr.io/x/api", "registry:5000/x/api"])
def test_latest_or_untagged_images_fail(image: str) -> None:
    assert no_latest_images(CRONJOB, _cronjob(_container(image=image))) == [
        f"CronJob check: container api uses image {image!r}; pin a tag or digest"
    ]


# ---------------------------------------------------------------- HPA targets


def _hpa(cpu: float, memory: float) -> dict[str, Any]:
    def metric(name: str, value: float) -> dict[str, Any]:
        return {
            "type": "Resource",
            "resource": {"name": name, "target": {"type": "Utilization", "averageUtilization": value}},
        }

    return {"metadata": {"name": "api"}, "spec": {"metrics": [metric("cpu", cpu), metric("memory", memory)]}}


def test_hpa_targets_between_50_and_90_pass() -> None:
    assert hpa_targets_in_range(HPA, _hpa(50, 90)) == []
    assert hpa_targets_in_range(HPA, _hpa(70.0, 80.0)) == []


@pytest.mark.parametrize(
    ("cpu", "memory", "message"),
    [
        (150, 80, "HorizontalPodAutoscaler api: cpu target 150 % is outside 50-90 %"),
        (70, 95, "HorizontalPodAutoscaler api: memory target 95 % is outside 50-90 %"),
        (49, 80, "HorizontalPodAutoscaler api: cpu target 49 % is outside 50-90 %"),
    ],
)
def test_hpa_targets_outside_the_range_fail(cpu: int, memory: int, message: str) -> None:
    assert hpa_targets_in_range(HPA, _hpa(cpu, memory)) == [message]


# ---------------------------------------------------------------- canary steps


def _rollout(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "api"}, "spec": {"strategy": {"canary": {"steps": steps}}}}


def _steps(*weights: int, pause_after: Callable[[int], bool] = lambda w: w < 100) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for w in weights:
        steps.append({"setWeight": w})
        if pause_after(w):
            steps.append({"pause": {"duration": "10m"}})
    return steps


def test_the_manuals_canary_passes() -> None:
    assert canary_steps_valid(ROLLOUT, _rollout(_steps(5, 25, 50, 100))) == []


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (_steps(5, 50, 25, 100), "Rollout api: canary weight 25 does not increase on 50"),
        (_steps(5, 25, 25, 100), "Rollout api: canary weight 25 does not increase on 25"),
        (_steps(5, 25, 50), "Rollout api: canary weights end at 50, not 100"),
        (
            _steps(5, 25, 50, 100, pause_after=lambda w: w not in (25, 100)),
            "Rollout api: canary weight 25 is not followed by a pause",
        ),
        ([{"pause": {}}], "Rollout api: canary steps set no weight"),
    ],
)
def test_bad_canaries_fail(steps: list[dict[str, Any]], message: str) -> None:
    assert message in canary_steps_valid(ROLLOUT, _rollout(steps))


def test_canary_rule_ignores_other_kinds() -> None:
    assert canary_steps_valid(DEPLOYMENT, _rollout(_steps(50, 5))) == []


# ---------------------------------------------------------------- RBAC


def _role(**rule: list[str]) -> dict[str, Any]:
    base = {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}
    return {"metadata": {"name": "remediation"}, "rules": [{**base, **rule}]}


def test_named_rules_pass() -> None:
    assert no_wildcard_rbac(ROLE, _role()) == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"verbs": ["*"]}, "Role remediation: rules[0].verbs has a wildcard ['*']"),
        ({"resources": ["*"]}, "Role remediation: rules[0].resources has a wildcard ['*']"),
        (
            {"resources": ["deployments/*"]},
            "Role remediation: rules[0].resources has a wildcard ['deployments/*']",
        ),
        ({"apiGroups": ["*"]}, "Role remediation: rules[0].apiGroups has a wildcard ['*']"),
    ],
)
def test_wildcards_fail(rule: dict[str, list[str]], message: str) -> None:
    assert no_wildcard_rbac(ROLE, _role(**rule)) == [message]


def test_cluster_roles_are_checked_too() -> None:
    assert no_wildcard_rbac(CLUSTER_ROLE, _role(verbs=["*"])) == [
        "ClusterRole remediation: rules[0].verbs has a wildcard ['*']"
    ]


# ---------------------------------------------------------------- rate limits


def _middleware(**rate_limit: Any) -> dict[str, Any]:
    return {"metadata": {"name": "ratelimit-anonymous"}, "spec": {"rateLimit": rate_limit}}


def test_positive_rate_limits_pass() -> None:
    assert rate_limits_positive(MIDDLEWARE, _middleware(average=100, period="15m")) == []
    assert rate_limits_positive(MIDDLEWARE, _middleware(average=100, period=900)) == []


@pytest.mark.parametrize(
    ("rate_limit", "message"),
    [
        ({"average": 0, "period": "15m"}, "rateLimit.average is 0; it must be a positive number"),
        ({"average": -5, "period": "15m"}, "rateLimit.average is -5; it must be a positive number"),
        ({"period": "15m"}, "rateLimit.average is None; it must be a positive number"),
        ({"average": 100, "period": "0s"}, "rateLimit.period is '0s'; it must be a positive duration"),
        (
            {"average": 100, "period": "15 minutes"},
            "rateLimit.period is '15 minutes'; it must be a positive duration",
        ),
        ({"average": 100}, "rateLimit.period is None; it must be a positive duration"),
    ],
)
def test_bad_rate_limits_fail(rate_limit: dict[str, Any], message: str) -> None:
    assert [f"Middleware ratelimit-anonymous: {message}"] == rate_limits_positive(
        MIDDLEWARE, _middleware(**rate_limit)
    )


def test_durations() -> None:
    assert duration_seconds("15m") == 900
    assert duration_seconds("1.5h") == 5400
    assert duration_seconds(True) is None


# ---------------------------------------------------------------- HPA-owned replicas (stack rule)


def _scaled(kind: str, name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shorts"},
        "spec": {"scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "name": name}},
    }


def test_hpa_owned_workload_without_replicas_passes() -> None:
    assert (
        hpa_owned_without_replicas([(ROLLOUT, _workload(_container())), (HPA, _scaled("Rollout", "api"))])
        == []
    )


def test_hpa_owned_workload_with_replicas_fails() -> None:
    resources = [(ROLLOUT, _workload(_container(), replicas=3)), (HPA, _scaled("Rollout", "api"))]
    assert hpa_owned_without_replicas(resources) == [
        "Rollout api sets replicas=3 but a HorizontalPodAutoscaler scales it"
    ]


def test_replicas_are_fine_where_no_hpa_scales() -> None:
    resources = [(DEPLOYMENT, _workload(_container(), replicas=3)), (HPA, _scaled("Rollout", "api"))]
    assert hpa_owned_without_replicas(resources) == []


# ---------------------------------------------------------------- the pack


class _Args:
    def __init__(self, resource_type: str, props: dict[str, Any]) -> None:
        self.resource_type, self.props = resource_type, props


class _Resource(_Args):
    pass


class _StackArgs:
    def __init__(self, resources: list[_Resource]) -> None:
        self.resources = resources


def test_the_pack_holds_every_rule_as_a_mandatory_policy() -> None:
    built = policies()
    assert {p.name for p in built} == set(RESOURCE_RULES) | set(STACK_RULES)
    assert {p.enforcement_level for p in built} == {EnforcementLevel.MANDATORY}


def test_the_pack_reports_what_the_rules_find(evaluations: dict[str, Evaluation]) -> None:
    by_name = {p.name: p for p in policies()}
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    canary = by_name["canary-steps"]
    assert isinstance(canary, ResourceValidationPolicy)
    rollout = copy.deepcopy(evaluations["production"].named("Rollout", "api").inputs)
    canary.validate(_Args(ROLLOUT, rollout), report)  # type: ignore[arg-type]
    assert reported == []
    rollout["spec"]["strategy"]["canary"]["steps"] = _steps(5, 50, 25, 100)
    canary.validate(_Args(ROLLOUT, rollout), report)  # type: ignore[arg-type]
    assert reported == ["Rollout api: canary weight 25 does not increase on 50"]

    replicas = by_name["hpa-owned-workloads-set-no-replicas"]
    assert isinstance(replicas, StackValidationPolicy)
    rollout["spec"]["replicas"] = 3
    hpa = evaluations["production"].named("HorizontalPodAutoscaler", "api").inputs
    replicas.validate(_StackArgs([_Resource(ROLLOUT, rollout), _Resource(HPA, hpa)]), report)  # type: ignore[arg-type]
    assert reported[-1] == "Rollout api sets replicas=3 but a HorizontalPodAutoscaler scales it"


def test_the_pack_entry_point_starts_an_analyzer() -> None:
    """policy/__main__.py as the language host runs it (a script in policy/): it builds every policy, starts
    the analyzer server and prints its port, then serves until stopped."""
    import subprocess
    import sys
    from pathlib import Path

    pack = Path(__file__).resolve().parents[3] / "policy"
    process = subprocess.Popen(
        [sys.executable, str(pack / "__main__.py")],
        cwd=pack,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit() and int(port) > 0, process.stderr.read() if process.poll() is not None else port
        assert process.poll() is None  # still serving
    finally:
        process.kill()
        process.wait(timeout=30)


# The engine hands rules its read-only proxies (lists that are no `list`), not the plain dicts above.
PROXIED_VIOLATIONS = [
    (
        ROLE,
        {"metadata": {"name": "ops"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]},
        "Role ops: rules[0].verbs has a wildcard ['*']",
    ),
    (
        ROLLOUT,
        {"metadata": {"name": "api"}, "spec": {"strategy": {"canary": {"steps": [{"setWeight": 50}]}}}},
        "Rollout api: canary weights end at 50, not 100",
    ),
    (
        DEPLOYMENT,
        {
            "metadata": {"name": "api"},
            "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "x:latest"}]}}},
        },
        "latest",
    ),
]


@pytest.mark.parametrize(("resource_type", "props", "expected"), PROXIED_VIOLATIONS)
def test_rules_see_through_the_engines_proxies(
    resource_type: str, props: dict[str, Any], expected: str
) -> None:
    proxied = unknown_checking_proxy(copy.deepcopy(props))
    messages = [m for _, (_, rule) in RESOURCE_RULES.items() for m in rule(resource_type, proxied)]
    assert any(expected in m for m in messages), messages
