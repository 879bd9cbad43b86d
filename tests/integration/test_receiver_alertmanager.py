"""A real Alertmanager (Debian package) notifies the receiver: Jobs start once, never for resolved
alerts, never twice for the copies an HA pair sends, never without the token.

Two Alertmanagers run side by side without gossip, both routing to the receiver: exactly what the
receiver sees from an HA pair whose peers each send the notification (the duplicate case).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from remediation.receiver.alertlog import AlertLog
from remediation.receiver.core import Receiver, ReceiverConfig
from remediation.receiver.events import RecordingEvents
from remediation.receiver.guards import InMemoryGuardStore
from remediation.receiver.jobs import RecordingLauncher
from remediation.receiver.server import ReceiverServer, TokenSource

pytestmark = pytest.mark.integration

ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
TOKEN = "am-integration-token-5d1c"
RUNBOOK = """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: api-restart, title: Restart the API when health checks fail, severity: P1}
triggers: [{alert: APIHealthCheckFailed}]
params: {namespace: {type: string, default: shorts}, deployment: {type: string, default: api}}
guards: {cooldown: 10m, budget: {runs: 3, per: 1h}}
steps:
  - id: restart
    action: kubernetes.restart
    with: {kind: Rollout, name: "${params.deployment}", namespace: "${params.namespace}"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s:.0f}s")


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def post(self, alerts: list[dict[str, object]]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=10)
        assert response.status_code == 200, response.text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_alertmanager(workdir: Path, receiver_url: str, token_file: Path) -> Alertmanager:
    workdir.mkdir(parents=True)
    port = free_port()
    config = {
        "route": {
            "receiver": "remediation",
            "group_by": ["alertname", "deployment"],
            # Short timings so the test sees notifications within a second or two.
            "group_wait": "100ms",
            "group_interval": "500ms",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "remediation",
                "webhook_configs": [
                    {
                        "url": f"{receiver_url}/alerts",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                        },
                    }
                ],
            }
        ],
    }
    (workdir / "alertmanager.yml").write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    log_path = workdir / "alertmanager.log"
    with log_path.open("wb") as log_file:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [
                ALERTMANAGER,
                f"--config.file={workdir / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",  # no gossip: each instance notifies on its own
                "--log.level=debug",
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    am = Alertmanager(f"http://127.0.0.1:{port}", process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"alertmanager exited: {am.log()[-2000:]}")
        try:
            return httpx.get(f"{am.url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(ready, "alertmanager to be ready")
    return am


@dataclass
class Setup:
    server: ReceiverServer
    launcher: RecordingLauncher
    alertmanagers: list[Alertmanager]
    alert_log: Path

    def metric(self, counter: str, **labels: str) -> float:
        return float(getattr(self.server.receiver.metrics, counter).value(**labels))

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.alert_log.read_text().splitlines()]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Callable[..., Setup]]:
    servers: list[ReceiverServer] = []
    processes: list[subprocess.Popen[bytes]] = []

    def build(replicas: int = 2, alertmanager_token: str = TOKEN) -> Setup:
        runbooks = tmp_path / "runbooks"
        runbooks.mkdir(exist_ok=True)
        (runbooks / "api-restart.yaml").write_text(RUNBOOK, encoding="utf-8")
        receiver_token = tmp_path / "receiver-token"
        receiver_token.write_text(TOKEN, encoding="utf-8")
        am_token = tmp_path / "am-token"
        am_token.write_text(alertmanager_token, encoding="utf-8")
        launcher = RecordingLauncher()
        alert_log = tmp_path / "alerts.jsonl"
        receiver = Receiver(
            ReceiverConfig(runbooks),
            InMemoryGuardStore(),
            launcher,
            events=RecordingEvents(),
            alert_log=AlertLog(alert_log),
        )
        server = ReceiverServer(receiver, TokenSource(receiver_token), port=free_port())
        server.start()
        servers.append(server)
        ams = [start_alertmanager(tmp_path / f"am{i}", server.url, am_token) for i in range(replicas)]
        processes.extend(am.process for am in ams)
        return Setup(server, launcher, ams, alert_log)

    yield build
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
    for server in servers:
        server.stop()


def api_alert(
    starts_at: datetime, ends_at: datetime | None = None, deployment: str = "api"
) -> dict[str, object]:
    alert: dict[str, object] = {
        "labels": {
            "alertname": "APIHealthCheckFailed",
            "namespace": "shorts",
            "deployment": deployment,
            "severity": "critical",
        },
        "annotations": {"summary": "GET /health failed 3 times"},
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "generatorURL": "http://prometheus.test/graph",
    }
    if ends_at is not None:
        alert["endsAt"] = ends_at.isoformat().replace("+00:00", "Z")
    return alert


def test_a_firing_alert_starts_exactly_one_job(setup: Callable[..., Setup]) -> None:
    s = setup(replicas=1)
    s.alertmanagers[0].post([api_alert(datetime.now(UTC) - timedelta(seconds=5))])
    wait_for(lambda: s.launcher.jobs != {}, "a Job launch")
    s.server.drain()
    assert len(s.launcher.jobs) == 1
    request = s.launcher.requests[0]
    assert (request.runbook, request.target.key) == ("api-restart", "shorts/deployment/api")
    command = next(iter(s.launcher.jobs.values()))["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:3] == ["remediation", "run", "api-restart"]
    assert command[-4:] == ["--param", "deployment=api", "--param", "namespace=shorts"]


def test_the_copies_an_ha_pair_sends_start_one_job(setup: Callable[..., Setup]) -> None:
    s = setup(replicas=2)
    alert = api_alert(datetime.now(UTC) - timedelta(seconds=5))
    for am in s.alertmanagers:
        am.post([alert])
    # Both copies arrive (each Alertmanager notifies on its own) ...
    wait_for(lambda: s.metric("received", status="firing") >= 2, "both Alertmanagers' notifications")
    s.server.drain()
    # ... and only the first starts anything.
    assert len(s.launcher.jobs) == 1
    assert s.metric("deduplicated") >= 1
    fingerprints = {r["fingerprint"] for r in s.records()}
    assert len(fingerprints) == 1  # the same alert: Alertmanagers agree on its fingerprint


def test_a_resolved_alert_starts_nothing(setup: Callable[..., Setup]) -> None:
    s = setup(replicas=1)
    started = datetime.now(UTC) - timedelta(seconds=5)
    s.alertmanagers[0].post([api_alert(started)])
    wait_for(lambda: len(s.launcher.jobs) == 1, "the Job of the firing alert")
    s.alertmanagers[0].post([api_alert(started, ends_at=datetime.now(UTC) - timedelta(seconds=1))])
    wait_for(lambda: s.metric("received", status="resolved") >= 1, "the resolved notification")
    s.server.drain()
    assert len(s.launcher.jobs) == 1
    assert any(r["outcome"] == "resolved" for r in s.records())


def test_an_alertmanager_with_the_wrong_token_gets_401_and_starts_nothing(
    setup: Callable[..., Setup],
) -> None:
    s = setup(replicas=1, alertmanager_token="not-the-token")
    s.alertmanagers[0].post([api_alert(datetime.now(UTC) - timedelta(seconds=5))])
    wait_for(lambda: s.server.receiver.metrics.requests.value(code="401") >= 1, "the refused notification")
    s.server.drain()
    assert s.launcher.jobs == {}
    assert s.metric("received", status="firing") == 0
    wait_for(lambda: "401" in s.alertmanagers[0].log(), "Alertmanager to log the 401")
