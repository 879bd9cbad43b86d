"""The executor's Kubernetes actions against the real control plane, as the remediation ServiceAccount.

Every action runs with a kubeconfig holding only the `remediation` ServiceAccount's token, bound to a Role
with exactly the rules of the contract: what works here works under least privilege.
The Argo Rollouts controller runs in the cluster, so Rollout tests assert what it does with what the
actions write: a promoted canary really moves on, an aborted one really goes back to the stable version.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from remediation.errors import PermanentError
from tests.e2e.conftest import Cluster, bound_service_account_token, eventually, write_token_kubeconfig
from tests.servers.context import RecordingContext, run_action

pytestmark = pytest.mark.e2e

ROLLOUTS = ("argoproj.io", "v1alpha1")

# The remediation Role of the contract, rule for rule.
REMEDIATION_RULES = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch", "patch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["rollouts/status"], "verbs": ["patch"]},
    {
        "apiGroups": ["autoscaling"],
        "resources": ["horizontalpodautoscalers"],
        "verbs": ["get", "list", "patch"],
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]},
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]},
]


@pytest.fixture
def profile(cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path) -> dict[str, str]:
    """An executor profile whose kubeconfig authenticates as the namespace's remediation ServiceAccount."""
    token = bound_service_account_token(k8s, namespace, "remediation", REMEDIATION_RULES)
    path = write_token_kubeconfig(k8s, token, tmp_path / "remediation.kubeconfig")
    return {"kubeconfig": str(path)}


def act(action: str, profile: dict[str, str], /, **params: Any) -> dict[str, Any]:
    """Runs one action as the executor would, with the remediation ServiceAccount's profile."""
    return run_action(action, params, RecordingContext(profile=profile))


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "registry.invalid/api:1.0"}]},
            },
        },
    }


def rollout(name: str, replicas: int = 2) -> dict[str, Any]:
    body = deployment(name, replicas)
    body.update(apiVersion="argoproj.io/v1alpha1", kind="Rollout")
    body["spec"]["strategy"] = {
        "canary": {"steps": [{"setWeight": 5}, {"pause": {"duration": "10m"}}, {"setWeight": 25}]}
    }
    return body


def ready_deployment(k8s: client.ApiClient, namespace: str, name: str, replicas: int) -> None:
    apps = client.AppsV1Api(k8s)
    apps.create_namespaced_deployment(namespace, deployment(name, replicas))
    eventually(
        lambda: apps.read_namespaced_deployment(name, namespace).status.ready_replicas == replicas,
        what=f"{replicas} ready replicas of {name}",
    )


# ---- kubernetes.restart -------------------------------------------------------------------------------


def test_restart_deployment_rolls_out_a_new_replicaset(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    ready_deployment(k8s, namespace, "api", 2)
    apps = client.AppsV1Api(k8s)
    before = {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items}

    out = act("kubernetes.restart", profile, kind="Deployment", name="api", namespace=namespace)

    template = apps.read_namespaced_deployment("api", namespace).spec.template
    assert template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == out["restarted_at"]
    new = eventually(
        lambda: {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items} - before,
        what="a new ReplicaSet",
    )
    assert len(new) == 1
    # wait_rollout sees the restart through: the new ReplicaSet's pods are Ready on kwok nodes.
    waited = act(
        "kubernetes.wait_rollout", profile, kind="Deployment", name="api", namespace=namespace, timeout="2m"
    )
    assert waited == {"ready_replicas": 2}
    new_rs = apps.read_namespaced_replica_set(new.pop(), namespace)
    assert new_rs.status.ready_replicas == 2


def test_restart_rollout_sets_restart_at(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    custom = client.CustomObjectsApi(k8s)
    custom.create_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", rollout("api"))

    out = act("kubernetes.restart", profile, kind="Rollout", name="api", namespace=namespace)

    stored = custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api")
    assert stored["spec"]["restartAt"] == out["restarted_at"]


# ---- kubernetes.scale ---------------------------------------------------------------------------------


def test_scale_deployment_adds_two_up_to_the_maximum(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    ready_deployment(k8s, namespace, "api", 2)
    apps = client.AppsV1Api(k8s)

    assert act(
        "kubernetes.scale", profile, kind="Deployment", name="api", namespace=namespace, by=2, max=3
    ) == {
        "from": 2,
        "to": 3,
    }
    assert apps.read_namespaced_deployment("api", namespace).spec.replicas == 3
    eventually(
        lambda: apps.read_namespaced_deployment("api", namespace).status.ready_replicas == 3, what="3 ready"
    )

    # At the maximum, scaling cannot help: a permanent failure, and nothing changes.
    with pytest.raises(PermanentError, match="already at 3"):
        act("kubernetes.scale", profile, kind="Deployment", name="api", namespace=namespace, by=2, max=3)
    assert apps.read_namespaced_deployment("api", namespace).spec.replicas == 3


def test_scale_rollout_raises_spec_replicas(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    custom = client.CustomObjectsApi(k8s)
    custom.create_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", rollout("api", replicas=3))

    out = act("kubernetes.scale", profile, kind="Rollout", name="api", namespace=namespace, by=2, max=10)

    assert out == {"from": 3, "to": 5}
    assert (
        custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api")["spec"]["replicas"] == 5
    )


def test_scale_hpa_raises_min_replicas_bounded_by_max_replicas(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    hpas = client.AutoscalingV2Api(k8s)
    hpas.create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "api"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 5,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    )
    scale = {"kind": "HorizontalPodAutoscaler", "name": "api", "namespace": namespace}

    assert act("kubernetes.scale", profile, **scale, by=2, max=20) == {"from": 2, "to": 4}
    # The step's max (20) is above the HPA's maxReplicas (5): the HPA's bound wins.
    assert act("kubernetes.scale", profile, **scale, by=2, max=20) == {"from": 4, "to": 5}
    assert hpas.read_namespaced_horizontal_pod_autoscaler("api", namespace).spec.min_replicas == 5


# ---- kubernetes.cronjob_last_success ------------------------------------------------------------------


def test_cronjob_last_success_reads_the_real_status(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    batch = client.BatchV1Api(k8s)
    batch.create_namespaced_cron_job(
        namespace,
        {
            "metadata": {"name": "db-backup"},
            "spec": {
                "schedule": "0 3 * * *",
                "timeZone": "Asia/Seoul",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "OnFailure",
                                "containers": [{"name": "backup", "image": "registry.invalid/backup:1.0"}],
                            }
                        }
                    }
                },
            },
        },
    )
    check = {"name": "db-backup", "namespace": namespace}
    with pytest.raises(PermanentError, match="never succeeded"):
        act("kubernetes.cronjob_last_success", profile, **check, max_age="26h")

    # What the CronJob controller records after a successful Job, two hours ago.
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    batch.patch_namespaced_cron_job_status(
        "db-backup", namespace, {"status": {"lastSuccessfulTime": two_hours_ago}}
    )

    out = act("kubernetes.cronjob_last_success", profile, **check, max_age="26h")
    assert 7200 - 60 <= out["age_seconds"] <= 7200 + 60
    with pytest.raises(PermanentError, match="longer than 1h"):
        act("kubernetes.cronjob_last_success", profile, **check, max_age="1h")


# ---- Argo Rollouts: promote and abort -----------------------------------------------------------------


def canary_step(custom: client.CustomObjectsApi, namespace: str) -> tuple[int | None, str | None]:
    status = custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api").get("status", {})
    return status.get("currentStepIndex"), status.get("phase")


def paused_canary(k8s: client.ApiClient, namespace: str) -> client.CustomObjectsApi:
    """A Rollout whose new version the Argo Rollouts controller holds at the first pause (weight 5)."""
    custom = client.CustomObjectsApi(k8s)
    body = rollout("api")
    body["spec"]["strategy"]["canary"]["steps"] = [
        {"setWeight": 5},
        {"pause": {}},  # indefinite: only a promotion moves it on, so the test is not racing a timer
        {"setWeight": 25},
        {"pause": {}},
        {"setWeight": 100},
    ]
    custom.create_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", body)
    eventually(lambda: canary_step(custom, namespace)[1] == "Healthy", what="the first version to be Healthy")
    image = {
        "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "registry.invalid/api:2.0"}]}}}
    }
    custom.patch_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api", image)
    eventually(lambda: canary_step(custom, namespace) == (1, "Paused"), what="the canary to pause at 5 %")
    return custom


def test_promote_moves_a_paused_canary_to_its_next_pause(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    custom = paused_canary(k8s, namespace)

    assert act("kubernetes.rollout_promote", profile, name="api", namespace=namespace) == {"promoted": True}

    # The controller acts on what the action wrote: weight 25, then the second pause.
    eventually(lambda: canary_step(custom, namespace) == (3, "Paused"), what="the canary to reach 25 %")


def test_promote_full_finishes_the_rollout(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    custom = paused_canary(k8s, namespace)

    act("kubernetes.rollout_promote", profile, name="api", namespace=namespace, full=True)

    eventually(lambda: canary_step(custom, namespace) == (5, "Healthy"), what="the new version to be stable")
    out = act(
        "kubernetes.wait_rollout", profile, kind="Rollout", name="api", namespace=namespace, timeout="1m"
    )
    assert out["ready_replicas"] == 2


def test_abort_returns_all_traffic_to_the_stable_version(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    custom = paused_canary(k8s, namespace)

    assert act("kubernetes.rollout_abort", profile, name="api", namespace=namespace) == {"aborted": True}

    def aborted() -> bool:
        status = custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api")["status"]
        return bool(status.get("abort")) and status.get("phase") == "Degraded"

    eventually(aborted, what="the controller to abort the canary")
    stored = custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", "api")["status"]
    assert stored["stableRS"] != stored["currentPodHash"]  # the old version still serves


# ---- least privilege ----------------------------------------------------------------------------------


def test_the_remediation_token_is_refused_outside_its_role(
    k8s: client.ApiClient, namespace: str, profile: dict[str, str]
) -> None:
    # Another namespace: the same action is forbidden, reported as a permanent error naming the Role.
    other = f"{namespace}-other"
    client.CoreV1Api(k8s).create_namespace({"metadata": {"name": other}})
    try:
        ready_deployment(k8s, other, "api", 1)
        with pytest.raises(PermanentError, match="forbidden"):
            act("kubernetes.restart", profile, kind="Deployment", name="api", namespace=other)
        template = client.AppsV1Api(k8s).read_namespaced_deployment("api", other).spec.template
        assert not (template.metadata.annotations or {}).get("kubectl.kubernetes.io/restartedAt")
    finally:
        client.CoreV1Api(k8s).delete_namespace(other)
