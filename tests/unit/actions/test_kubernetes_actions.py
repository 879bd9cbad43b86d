"""Kubernetes actions without a cluster: parameters, patches, scaling bounds, rollout progress, client set-up.

Their behaviour against a real API server is tested with the local control plane (tests/e2e).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from kubernetes import client as k8s

from remediation.actions import kubernetes as kube
from remediation.actions.registry import load_all
from remediation.errors import PermanentError, TemporaryError
from tests.servers.context import RecordingContext, run_action
from tests.servers.net import free_port

SPECS = load_all().items()
TARGET = {"name": "api", "namespace": "shorts"}


# ---- parameters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("kubernetes.restart", {**TARGET, "kind": "StatefulSet"}),
        ("kubernetes.restart", {**TARGET, "kind": "Rollout", "name": "API"}),
        ("kubernetes.restart", {"kind": "Rollout", "name": "api"}),
        ("kubernetes.scale", {**TARGET, "kind": "Rollout", "by": 0, "max": 10}),
        ("kubernetes.scale", {**TARGET, "kind": "Rollout", "by": 2}),
        ("kubernetes.scale", {**TARGET, "kind": "Rollout", "by": -2, "max": 10}),
        ("kubernetes.scale", {**TARGET, "kind": "CronJob", "by": 2, "max": 10}),
        ("kubernetes.wait_rollout", {**TARGET, "kind": "Rollout", "timeout": "five minutes"}),
        ("kubernetes.wait_rollout", {**TARGET, "kind": "HorizontalPodAutoscaler"}),
        ("kubernetes.cronjob_last_success", {**TARGET}),
        ("kubernetes.cronjob_last_success", {**TARGET, "max_age": 3600}),
        ("kubernetes.rollout_promote", {**TARGET, "full": "yes"}),
        ("kubernetes.rollout_abort", {**TARGET, "kind": "Rollout"}),
        ("kubernetes.rollout_abort", {"name": "api", "namespace": "Shorts_NS"}),
    ],
)
def test_invalid_parameters_are_refused(name: str, params: dict[str, Any]) -> None:
    assert not Draft202012Validator(SPECS[name].params).is_valid(params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("kubernetes.restart", {**TARGET, "kind": "Deployment"}),
        ("kubernetes.scale", {**TARGET, "kind": "HorizontalPodAutoscaler", "by": 2, "max": 20}),
        ("kubernetes.wait_rollout", {**TARGET, "kind": "Rollout", "timeout": "10m"}),
        ("kubernetes.cronjob_last_success", {"name": "db-backup", "namespace": "shorts", "max_age": "26h"}),
        ("kubernetes.rollout_promote", {**TARGET, "full": True}),
        ("kubernetes.rollout_abort", TARGET),
    ],
)
def test_valid_parameters_are_accepted(name: str, params: dict[str, Any]) -> None:
    assert Draft202012Validator(SPECS[name].params).is_valid(params)


# ---- what each action would change --------------------------------------------------------------


def test_restart_patches() -> None:
    at = "2026-11-26T05:00:00Z"
    assert kube.restart_patch("Rollout", at) == {"spec": {"restartAt": at}}
    assert kube.restart_patch("Deployment", at) == {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}
    }


@pytest.mark.parametrize(("current", "by", "bound", "target"), [(3, 2, 10, 5), (9, 2, 10, 10), (1, 5, 4, 4)])
def test_scale_adds_n_up_to_the_bound(current: int, by: int, bound: int, target: int) -> None:
    assert kube.scale_target(current, by, bound, "Rollout shorts/api replicas") == target


@pytest.mark.parametrize(("current", "bound"), [(10, 10), (12, 10)])
def test_scale_at_the_bound_is_permanent(current: int, bound: int) -> None:
    with pytest.raises(PermanentError, match=f"already at {current}, the limit is {bound}.*escalate") as err:
        kube.scale_target(current, 2, bound, "Rollout shorts/api replicas")
    assert err.value.output == {"from": current, "to": current}


CANARY = {
    "strategy": {"canary": {"steps": [{"setWeight": 5}, {"pause": {"duration": "10m"}}, {"setWeight": 25}]}}
}


@pytest.mark.parametrize(
    ("rollout", "full", "spec_patch", "status_patch"),
    [
        # paused at a canary pause step: clear the pause conditions
        (
            {
                "spec": CANARY,
                "status": {"pauseConditions": [{"reason": "CanaryPauseStep"}], "currentStepIndex": 1},
            },
            False,
            None,
            {"status": {"pauseConditions": None}},
        ),
        # paused by hand (spec.paused) as well
        (
            {
                "spec": {**CANARY, "paused": True},
                "status": {"pauseConditions": [{"reason": "CanaryPauseStep"}]},
            },
            False,
            {"spec": {"paused": False}},
            {"status": {"pauseConditions": None}},
        ),
        # held without a pause condition (e.g. in an analysis step): move to the next step
        (
            {"spec": CANARY, "status": {"currentStepIndex": 0}},
            False,
            None,
            {"status": {"pauseConditions": None, "currentStepIndex": 1}},
        ),
        # never past the last step
        (
            {"spec": CANARY, "status": {"currentStepIndex": 3}},
            False,
            None,
            {"status": {"pauseConditions": None, "currentStepIndex": 3}},
        ),
        # a rollout without steps: only the spec pause can be lifted
        (
            {"spec": {"paused": True, "strategy": {"canary": {}}}, "status": {}},
            False,
            {"spec": {"paused": False}},
            None,
        ),
        # full promotion of an update in progress
        (
            {"spec": CANARY, "status": {"currentPodHash": "new", "stableRS": "old"}},
            True,
            None,
            {"status": {"promoteFull": True}},
        ),
        # full promotion when the update already is the stable version: nothing to do
        ({"spec": CANARY, "status": {"currentPodHash": "same", "stableRS": "same"}}, True, None, None),
    ],
)
def test_promote_patches_follow_the_argo_rollouts_plugin(
    rollout: dict[str, Any], full: bool, spec_patch: Any, status_patch: Any
) -> None:
    assert kube.promote_patches(rollout, full) == (spec_patch, status_patch)


def _deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": 3},
        "status": {"observedGeneration": 2, **status},
    }


@pytest.mark.parametrize(
    ("kind", "obj", "state"),
    [
        (
            "Deployment",
            _deployment(replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3),
            (True, 3, None),
        ),
        (
            "Deployment",
            _deployment(replicas=4, updatedReplicas=3, readyReplicas=4, availableReplicas=4),
            (False, 4, None),
        ),
        (
            "Deployment",
            _deployment(replicas=3, updatedReplicas=2, readyReplicas=3, availableReplicas=3),
            (False, 3, None),
        ),
        (
            "Deployment",
            {
                **_deployment(replicas=3, updatedReplicas=3, readyReplicas=3, availableReplicas=3),
                "metadata": {"generation": 3},
            },
            (False, 3, None),
        ),
        (
            "Deployment",
            _deployment(
                conditions=[
                    {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
                ]
            ),
            (False, 0, "too slow"),
        ),
        (
            "Rollout",
            {
                "metadata": {"generation": 5},
                "status": {"phase": "Healthy", "observedGeneration": "5", "readyReplicas": 4},
            },
            (True, 4, None),
        ),
        (
            "Rollout",
            {"metadata": {"generation": 6}, "status": {"phase": "Healthy", "observedGeneration": "5"}},
            (False, 0, None),
        ),
        (
            "Rollout",
            {"metadata": {"generation": 5}, "status": {"phase": "Paused", "readyReplicas": 4}},
            (False, 4, None),
        ),
        (
            "Rollout",
            {"metadata": {"generation": 5}, "status": {"phase": "Degraded", "message": "analysis failed"}},
            (False, 0, "analysis failed"),
        ),
    ],
)
def test_rollout_progress(kind: str, obj: dict[str, Any], state: tuple[bool, int, str | None]) -> None:
    assert kube.rollout_state(kind, obj) == state


# ---- the client: from the profile, replaceable, and its failures --------------------------------

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- {{name: a, cluster: {{server: "https://127.0.0.1:{a}", insecure-skip-tls-verify: true}}}}
- {{name: b, cluster: {{server: "https://127.0.0.1:{b}", insecure-skip-tls-verify: true}}}}
users:
- {{name: u, user: {{token: not-a-real-token}}}}
contexts:
- {{name: ctx-a, context: {{cluster: a, user: u}}}}
- {{name: ctx-b, context: {{cluster: b, user: u}}}}
current-context: ctx-a
"""


@pytest.fixture
def kubeconfig(tmp_path: Path) -> tuple[Path, int, int]:
    a, b = free_port(), free_port()
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG.format(a=a, b=b))
    return path, a, b


def test_client_uses_the_profiles_kubeconfig_and_context(kubeconfig: tuple[Path, int, int]) -> None:
    path, a, b = kubeconfig
    with kube.build_api_client({"kubeconfig": str(path)}) as api:
        assert api.configuration.host == f"https://127.0.0.1:{a}"
    with kube.build_api_client({"kubeconfig": str(path), "kube_context": "ctx-b"}) as api:
        assert api.configuration.host == f"https://127.0.0.1:{b}"
        assert api.configuration.retries == 0


def test_client_falls_back_to_the_default_kubeconfig(
    kubeconfig: tuple[Path, int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, a, _ = kubeconfig
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    with kube.build_api_client({}) as api:
        assert api.configuration.host == f"https://127.0.0.1:{a}"


def test_a_missing_kubeconfig_is_permanent_and_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"set kubeconfig .* in the profile"):
        kube.build_api_client({"kubeconfig": str(tmp_path / "absent")})


def test_an_unreachable_api_server_is_temporary(kubeconfig: tuple[Path, int, int]) -> None:
    ctx = RecordingContext(profile={"kubeconfig": str(kubeconfig[0])})  # nothing listens on its ports
    with pytest.raises(TemporaryError, match="API server is unreachable"):
        run_action("kubernetes.restart", {**TARGET, "kind": "Rollout"}, ctx)
    with pytest.raises(TemporaryError, match="API server is unreachable"):
        run_action("kubernetes.scale", {**TARGET, "kind": "HorizontalPodAutoscaler", "by": 2, "max": 10}, ctx)


def test_the_client_factory_is_replaceable(
    monkeypatch: pytest.MonkeyPatch, kubeconfig: tuple[Path, int, int]
) -> None:
    seen: list[Any] = []

    def factory(profile: Any) -> k8s.ApiClient:
        seen.append(dict(profile))
        return kube.build_api_client({"kubeconfig": str(kubeconfig[0]), "kube_context": "ctx-b"})

    monkeypatch.setattr(kube, "client_factory", factory)
    with pytest.raises(TemporaryError):
        run_action("kubernetes.rollout_abort", TARGET, RecordingContext(profile={"namespace": "shorts"}))
    assert seen == [{"namespace": "shorts"}]


def _api_error(status: int, message: str) -> k8s.ApiException:
    err = k8s.ApiException(status=status, reason="x")
    err.body = json.dumps({"kind": "Status", "message": message})
    return err


@pytest.mark.parametrize(
    ("status", "kind", "text"),
    [
        (404, PermanentError, "not found .*check the kind, name and namespace"),
        (403, PermanentError, "forbidden .*Role does not allow it"),
        (401, PermanentError, "forbidden"),
        (422, PermanentError, "refused it with 422"),
        (409, TemporaryError, "answered 409"),
        (429, TemporaryError, "answered 429"),
        (500, TemporaryError, "answered 500"),
        (503, TemporaryError, "answered 503"),
    ],
)
def test_api_errors_are_classified(status: int, kind: type[Exception], text: str) -> None:
    err = kube._error(
        _api_error(status, 'rollouts.argoproj.io "api" is forbidden'), "patch Rollout shorts/api"
    )
    assert type(err) is kind
    assert err.output["status"] == status
    with pytest.raises(kind, match=text):
        raise err
