"""The API server stopped in the middle of `api-restart`: the restart step retries, then the run escalates;
the record shows the restart not done (and the Rollout is untouched); once the API server is back, the run
resumes at that step (`--from restart --resume-run ID`) and succeeds.

Two tests, so that each of the two promises fails or passes on its own. The API server is stopped
with `tools/cluster stop kube-apiserver` while the run is in its `confirm` step
(the unhealthy service makes it wait 5 s before its second attempt), so the outage begins mid-run, before the
first Kubernetes call. A finally block brings the API server back for the tests that follow.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.conftest import PROJECT_DIR, Cluster, eventually
from tests.e2e.test_cluster_actions import profile  # noqa: F401 (profile: a fixture)
from tests.e2e.test_runbooks_cluster import (
    CLI,
    api_rollout,
    by_id,
    healthy,
    read_rollout,
    remediation,
    shorts,  # noqa: F401 (a fixture)
    slack,  # noqa: F401 (a fixture)
    snapshot,
    untyped,
    when,
    write_profile,
)
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub

pytestmark = pytest.mark.e2e


def api_is_down(k8s: client.ApiClient) -> bool:
    try:
        untyped(client.VersionApi(k8s)).get_code(_request_timeout=2)
    except Exception:  # refused or reset: what an unreachable API server looks like to a client
        return True
    return False


@dataclass
class Outage:
    """A run of api-restart during which the API server was stopped, and what it left behind."""

    exit_code: int
    result: dict[str, Any]
    state: Path
    profile_file: Path
    before: dict[str, Any]


def run_through_an_outage(
    cluster: Cluster,
    k8s: client.ApiClient,
    namespace: str,
    kubeconfig: str,
    service: ShortsStub,
    webhook: SlackStub,
    tmp_path: Path,
) -> Outage:
    api_rollout(k8s, namespace)
    before = snapshot(k8s, namespace)
    service.behave("/health", status=503)
    state = tmp_path / "state"
    profile_file = write_profile(tmp_path / "profile.yaml", kubeconfig, api_url=service.url)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "REMEDIATION_", "SLACK"))}
    environ.update(KUBECONFIG=str(state / "no-kubeconfig"), SLACK_WEBHOOK_URL=webhook.webhook_url)
    command = [str(CLI), "run", "api-restart", "--runbooks-dir", str(PROJECT_DIR / "runbooks")]
    command += ["--param", f"namespace={namespace}", "--profile", str(profile_file), "--yes"]
    command += ["--output", "json", "--state-dir", str(state)]
    try:
        run = subprocess.Popen(command, cwd=PROJECT_DIR, env=environ, stdout=subprocess.PIPE, text=True)
        # The run has started (its record exists) and is still confirming: now the API server goes away.
        eventually(lambda: any((state / "runs").glob("*.json")), 30, "the run to start")
        cluster.tool("stop", "kube-apiserver")
        assert api_is_down(k8s)
        stdout, _ = run.communicate(timeout=300)
    finally:
        cluster.tool("up")
    eventually(lambda: not api_is_down(k8s), 60, "the API server to be back")
    return Outage(run.returncode, json.loads(stdout), state, profile_file, before)


@pytest.fixture
def outage(
    cluster: Cluster,
    k8s: client.ApiClient,
    namespace: str,
    profile: dict[str, str],  # noqa: F811
    shorts: ShortsStub,  # noqa: F811
    slack: SlackStub,  # noqa: F811
    tmp_path: Path,
) -> Outage:
    return run_through_an_outage(cluster, k8s, namespace, profile["kubeconfig"], shorts, slack, tmp_path)


def test_api_server_outage_mid_run_retries_records_nothing_done_and_escalates(
    k8s: client.ApiClient,
    namespace: str,
    outage: Outage,
    slack: SlackStub,  # noqa: F811
) -> None:
    # The restart step ran while the API server was down: it retried, and is recorded as not done.
    steps = by_id(outage.result)
    restart = steps["restart"]
    assert steps["confirm"]["outcome"] == "failed"
    assert restart["outcome"] == "failed" and restart["attempts"] == 3, restart
    assert "unreachable" in restart["error"], restart
    record = json.loads((outage.state / "runs" / f"{outage.result['id']}.json").read_text())
    assert [(s["id"], s["outcome"]) for s in record["steps"]] == [
        ("confirm", "failed"),
        ("restart", "failed"),
    ]
    # Nothing was done: the Rollout and everything around it are as they were.
    assert snapshot(k8s, namespace) == outage.before
    assert "restartAt" not in read_rollout(k8s, namespace)["spec"]

    # The API is still unhealthy and nothing could be done about it: a human must be told (exit 3).
    assert (outage.exit_code, outage.result["outcome"]) == (3, "escalated"), json.dumps(
        outage.result, indent=1
    )
    assert [p.json["channel"] for p in slack.posts] == ["#incident"]


def test_after_the_outage_the_run_resumes_at_the_step_not_done(
    k8s: client.ApiClient,
    namespace: str,
    outage: Outage,
    shorts: ShortsStub,  # noqa: F811
    slack: SlackStub,  # noqa: F811
) -> None:
    assert by_id(outage.result)["restart"]["outcome"] == "failed"

    # Resumed at the step that was not done, with the first run's outputs; the restart heals the service.
    stop = when(lambda: "restartAt" in read_rollout(k8s, namespace)["spec"], shorts.reset)
    try:
        code, resumed = remediation(
            "api-restart", "--from", "restart", "--resume-run", outage.result["id"],
            "--param", f"namespace={namespace}", profile_file=outage.profile_file, state=outage.state,
            slack=slack,
        )  # fmt: skip
    finally:
        stop.set()
    assert (code, resumed["outcome"]) == (0, "success"), json.dumps(resumed, indent=1)
    assert [s["id"] for s in resumed["steps"]] == ["restart", "wait-ready", "verify"]
    restarted_at = by_id(resumed)["restart"]["output"]["restarted_at"]
    assert read_rollout(k8s, namespace)["spec"]["restartAt"] == restarted_at
    eventually(lambda: healthy(k8s, namespace, "api", 2), 90, "api Healthy after the restart")
