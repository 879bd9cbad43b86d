"""`api-restart` and `scale-out` end to end: the real `remediation run` command, as the remediation
ServiceAccount (its token in the profile's kubeconfig, bound to the contract Role), against a Rollout `api`
that the Argo Rollouts controller really rolls out on kwok nodes.

Each test snapshots every other object of the namespace before the run and compares after it: a runbook
may change exactly what it promises and nothing else.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.e2e.conftest import PROJECT_DIR, eventually
from tests.e2e.test_cluster_actions import profile, rollout  # noqa: F401 (profile: a fixture)
from tests.servers.httpstub import Handler, StubServer
from tests.servers.prometheus_server import METRICS, PrometheusServer
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub

pytestmark = pytest.mark.e2e

ROLLOUTS = ("argoproj.io", "v1alpha1")
CLI = PROJECT_DIR / ".venv" / "bin" / "remediation"


def untyped(api: object) -> Any:
    """The generated client's stubs want model objects; plain dicts (what the API takes) are simpler here."""
    return api


# ---- the world the runbooks act on --------------------------------------------------------------------


def service(name: str, app: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def hpa(name: str, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


def read_rollout(k8s: client.ApiClient, namespace: str, name: str = "api") -> dict[str, Any]:
    custom = untyped(client.CustomObjectsApi(k8s))
    return dict(custom.get_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", name))


def healthy(k8s: client.ApiClient, namespace: str, name: str, replicas: int) -> bool:
    obj = read_rollout(k8s, namespace, name)
    status = obj.get("status") or {}
    return (
        status.get("phase") == "Healthy"
        and status.get("observedGeneration") == str(obj["metadata"]["generation"])
        and status.get("readyReplicas") == replicas
    )


def api_rollout(k8s: client.ApiClient, namespace: str, replicas: int = 2) -> None:
    """Rollouts `api` (the target) and `app` (a bystander), their Services and HPAs, all Healthy."""
    core, hpas = untyped(client.CoreV1Api(k8s)), untyped(client.AutoscalingV2Api(k8s))
    custom = untyped(client.CustomObjectsApi(k8s))
    for name in ("api", "app"):
        stable, canary = f"{name}-stable", f"{name}-canary"
        core.create_namespaced_service(namespace, service(stable, name))
        core.create_namespaced_service(namespace, service(canary, name))
        body = rollout(name, replicas)
        body["spec"]["strategy"] = {
            "canary": {
                "stableService": stable,
                "canaryService": canary,
                "steps": [{"setWeight": 20}, {"pause": {"duration": "10s"}}],
            }
        }
        custom.create_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts", body)
        hpas.create_namespaced_horizontal_pod_autoscaler(namespace, hpa(name, replicas, 10))
    for name in ("api", "app"):
        eventually(functools.partial(healthy, k8s, namespace, name, replicas), 90, f"Rollout {name} Healthy")


def snapshot(k8s: client.ApiClient, namespace: str) -> dict[str, Any]:
    """The specs of every object a runbook could touch, by kind and name (status left out: it moves)."""
    core, hpas = untyped(client.CoreV1Api(k8s)), untyped(client.AutoscalingV2Api(k8s))
    custom, apps = untyped(client.CustomObjectsApi(k8s)), untyped(client.AppsV1Api(k8s))
    plain = k8s.sanitize_for_serialization
    rollouts = custom.list_namespaced_custom_object(*ROLLOUTS, namespace, "rollouts")["items"]
    return {
        "Service": {s.metadata.name: plain(s.spec) for s in core.list_namespaced_service(namespace).items},
        "HorizontalPodAutoscaler": {
            h.metadata.name: plain(h.spec)
            for h in hpas.list_namespaced_horizontal_pod_autoscaler(namespace).items
        },
        "Rollout": {r["metadata"]["name"]: r["spec"] for r in rollouts},
        "Deployment": {
            d.metadata.name: plain(d.spec) for d in apps.list_namespaced_deployment(namespace).items
        },
        "ConfigMap": {c.metadata.name: c.data for c in core.list_namespaced_config_map(namespace).items},
    }


def pod_uids(k8s: client.ApiClient, namespace: str, app: str) -> set[str]:
    pods = untyped(client.CoreV1Api(k8s)).list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return {p.metadata.uid for p in pods if p.metadata.deletion_timestamp is None}


def when(condition: Callable[[], bool], then: Callable[[], None]) -> threading.Event:
    """Calls `then` once `condition` holds (polled in a daemon thread); set the returned event to stop."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                if condition():
                    then()
                    return
            except Exception:  # the API server may be briefly unreachable (the outage test): poll on
                pass
            stop.wait(0.2)

    threading.Thread(target=watch, daemon=True).start()
    return stop


# ---- the service, Prometheus and Slack stand-ins -------------------------------------------------------


@pytest.fixture
def shorts() -> Iterator[ShortsStub]:
    stub = ShortsStub()
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    stub = SlackStub()
    stub.start()
    yield stub
    stub.stop()


class Latency:
    """Traefik's request-duration histogram for the api service, counters growing with time.

    Slow: 10 requests/s, all between 0.5 s and 1 s (p95 about 0.97 s). Fast: 100,000 requests/s under
    0.1 s, so that within a scrape or two they outweigh the slow ones in a 5-minute rate() window.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.slow, self.fast = 0.0, 0.0
        self.mode, self.since = "slow", time.monotonic()

    def set(self, mode: str) -> None:
        with self.lock:
            self._advance()
            self.mode = mode

    def _advance(self) -> None:
        now = time.monotonic()
        if self.mode == "slow":
            self.slow += 10 * (now - self.since)
        else:
            self.fast += 100_000 * (now - self.since)
        self.since = now

    def exposition(self) -> str:
        with self.lock:
            self._advance()
            fast, total = int(self.fast), int(self.fast) + int(self.slow)
        name = "traefik_service_request_duration_seconds_bucket"
        labels = 'service="shorts-api-stable-80@kubernetes"'
        lines = ["# TYPE traefik_service_request_duration_seconds histogram"]
        for le, count in (("0.1", fast), ("0.5", fast), ("1", total), ("+Inf", total)):
            lines.append(f'{name}{{{labels},le="{le}"}} {count}')
        return "\n".join(lines) + "\n"


class _LatencyHandler(Handler):
    def do_GET(self) -> None:
        latency: Latency = self.server.stub.latency  # type: ignore[attr-defined]
        self.send_text(200, METRICS + latency.exposition(), "text/plain; version=0.0.4")


@pytest.fixture
def latency() -> Iterator[tuple[Latency, PrometheusServer]]:
    """A real Prometheus scraping the histogram every second; slow to begin with."""
    curve = Latency()
    server = PrometheusServer()
    server.exporter = StubServer(_LatencyHandler)
    server.exporter.latency = curve  # type: ignore[attr-defined]
    server.start()
    yield curve, server
    server.stop()


# ---- the command ---------------------------------------------------------------------------------------


def write_profile(path: Path, kubeconfig: str, **urls: str) -> Path:
    path.write_text(yaml.safe_dump({"kubeconfig": kubeconfig, **urls}))
    return path


def remediation(
    *args: str, profile_file: Path, state: Path, slack: SlackStub, timeout: float = 600
) -> tuple[int, dict[str, Any]]:
    """`remediation run ... --output json` in a child process; KUBECONFIG points nowhere, so the only
    credentials it has are the ServiceAccount token in the profile's kubeconfig."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "REMEDIATION_", "SLACK"))}
    environ.update(KUBECONFIG=str(state / "no-kubeconfig"), SLACK_WEBHOOK_URL=slack.webhook_url)
    command = [str(CLI), "run", *args, "--runbooks-dir", str(PROJECT_DIR / "runbooks")]
    command += ["--profile", str(profile_file), "--yes", "--output", "json", "--state-dir", str(state)]
    done = subprocess.run(
        command, cwd=PROJECT_DIR, env=environ, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    try:
        return done.returncode, json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"exit {done.returncode}, no JSON:\n{done.stdout}\n{done.stderr}")


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in result["steps"]}


def record(state: Path, result: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads((state / "runs" / f"{result['id']}.json").read_text()))


# ---- api-restart ---------------------------------------------------------------------------------------


def test_api_restart_restarts_the_rollout_and_nothing_else(
    k8s: client.ApiClient,
    namespace: str,
    profile: dict[str, str],  # noqa: F811 (the fixture imported above)
    shorts: ShortsStub,
    slack: SlackStub,
    tmp_path: Path,
) -> None:
    api_rollout(k8s, namespace)
    before, old_pods = snapshot(k8s, namespace), pod_uids(k8s, namespace, "api")
    app_pods = pod_uids(k8s, namespace, "app")
    shorts.behave("/health", status=503)
    # The restart is what heals the service: /health answers 200 again once spec.restartAt is written.
    stop = when(lambda: "restartAt" in read_rollout(k8s, namespace)["spec"], shorts.reset)
    profile_file = write_profile(tmp_path / "profile.yaml", profile["kubeconfig"], api_url=shorts.url)
    try:
        code, result = remediation(
            "api-restart", "--param", f"namespace={namespace}", profile_file=profile_file,
            state=tmp_path / "state", slack=slack,
        )  # fmt: skip
    finally:
        stop.set()

    assert (code, result["outcome"]) == (0, "success"), json.dumps(result, indent=1)
    steps = by_id(result)
    assert [s["id"] for s in result["steps"]] == ["confirm", "restart", "wait-ready", "verify"]
    assert steps["confirm"]["outcome"] == "failed" and steps["confirm"]["attempts"] == 2
    assert [steps[s]["outcome"] for s in ("restart", "wait-ready", "verify")] == ["success"] * 3
    assert record(tmp_path / "state", result)["outcome"] == "success"
    assert slack.posts == []  # nobody paged

    after = read_rollout(k8s, namespace)
    assert after["spec"]["restartAt"] == steps["restart"]["output"]["restarted_at"]
    # The controller replaced every pod of api (and only of api) and reports the restart done.
    eventually(lambda: healthy(k8s, namespace, "api", 2), 90, "api Healthy after the restart")
    eventually(
        lambda: read_rollout(k8s, namespace)["status"].get("restartedAt") == after["spec"]["restartAt"],
        90,
        "status.restartedAt",
    )
    eventually(lambda: len(pod_uids(k8s, namespace, "api")) == 2, 60, "two api pods")
    assert not pod_uids(k8s, namespace, "api") & old_pods
    assert pod_uids(k8s, namespace, "app") == app_pods

    expected = json.loads(json.dumps(before))
    expected["Rollout"]["api"]["restartAt"] = after["spec"]["restartAt"]
    assert snapshot(k8s, namespace) == expected


# ---- scale-out -----------------------------------------------------------------------------------------


def min_replicas(k8s: client.ApiClient, namespace: str, name: str = "api") -> int:
    hpa = untyped(client.AutoscalingV2Api(k8s)).read_namespaced_horizontal_pod_autoscaler(name, namespace)
    return int(hpa.spec.min_replicas)


def test_scale_out_raises_the_hpa_minimum_by_two_and_nothing_else(
    k8s: client.ApiClient,
    namespace: str,
    profile: dict[str, str],  # noqa: F811
    latency: tuple[Latency, PrometheusServer],
    slack: SlackStub,
    tmp_path: Path,
) -> None:
    curve, prometheus = latency
    api_rollout(k8s, namespace)
    before = snapshot(k8s, namespace)
    # More replicas make the API fast again: the histogram turns fast once the HPA's minimum rises.
    stop = when(lambda: min_replicas(k8s, namespace) > 2, lambda: curve.set("fast"))
    profile_file = write_profile(
        tmp_path / "profile.yaml", profile["kubeconfig"], prometheus_url=prometheus.url
    )
    try:
        code, result = remediation(
            "scale-out", "--param", f"namespace={namespace}", profile_file=profile_file,
            state=tmp_path / "state", slack=slack,
        )  # fmt: skip
    finally:
        stop.set()

    # First what the cluster shows: exactly the promised change.
    assert min_replicas(k8s, namespace) == 4
    # The HPA, not the runbook, adds the pods: the Rollout follows its new minimum.
    eventually(lambda: healthy(k8s, namespace, "api", 4), 120, "api Healthy with 4 ready replicas")
    expected = json.loads(json.dumps(before))
    expected["HorizontalPodAutoscaler"]["api"]["minReplicas"] = 4
    expected["Rollout"]["api"]["replicas"] = 4
    assert snapshot(k8s, namespace) == expected

    # Then what the run says: the API got fast again after the scale-out, so the run succeeded.
    assert (code, result["outcome"]) == (0, "success"), json.dumps(result, indent=1)
    steps = by_id(result)
    assert [s["id"] for s in result["steps"]] == ["confirm", "scale", "wait-ready", "verify", "notify"]
    assert steps["confirm"]["outcome"] == "failed" and steps["confirm"]["output"]["value"] > 0.5
    assert steps["scale"]["output"] == {"from": 2, "to": 4}
    assert steps["verify"]["outcome"] == "success" and steps["verify"]["output"]["value"] < 0.5
    assert record(tmp_path / "state", result)["outcome"] == "success"
    assert [p.json["channel"] for p in slack.posts] == ["#ops"]
    assert "2 → 4" in slack.posts[0].json["text"]
