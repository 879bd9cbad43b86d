"""Builders for the receiver's unit tests: runbooks on disk, webhook payloads, a receiver with fakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from remediation.receiver.alertlog import AlertLog
from remediation.receiver.core import Receiver, ReceiverConfig
from remediation.receiver.events import RecordingEvents
from remediation.receiver.guards import GuardPolicy, InMemoryGuardStore
from remediation.receiver.jobs import RecordingLauncher

RUNBOOKS = {
    "api-restart.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: api-restart, title: Restart the API when health checks fail, severity: P1}
triggers: [{alert: APIHealthCheckFailed}]
params:
  namespace: {type: string, default: shorts}
  deployment: {type: string, default: api}
guards: {cooldown: 10m, budget: {runs: 3, per: 1h}}
steps:
  - id: restart
    action: kubernetes.restart
    with: {kind: Rollout, name: "${params.deployment}", namespace: shorts}
escalate: [{action: notify.slack, with: {channel: "#incident", text: "api-restart gave up"}}]
""",
    "scale-out.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: scale-out, title: Add two instances, severity: P2}
triggers: [{alert: APIResponseTimeHigh}, {alert: TrafficOverload}]
params: {deployment: {type: string, default: api}}
steps:
  - {id: scale, action: kubernetes.scale, with: {kind: Rollout, name: api, namespace: shorts, by: 2, max: 10}}
""",
    "cache-flush-warm.yaml": """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: cache-flush-warm, title: Flush and warm the cache, severity: P2}
triggers: []
steps:
  - {id: flush, action: redis.flush, with: {url: "${profile.redis_url}", pattern: "trending:*"}}
""",
}


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_alert(
    alertname: str = "APIHealthCheckFailed",
    *,
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    starts_at: str = "2026-11-26T06:00:00Z",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": alertname, "severity": "critical", "namespace": "shorts", **(labels or {})},
        "annotations": {"summary": f"{alertname} is firing", **(annotations or {})},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-26T06:30:00Z",
        "generatorURL": "http://prometheus.local/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def make_payload(*alerts: dict[str, Any], status: str | None = None) -> dict[str, Any]:
    first = alerts[0] if alerts else make_alert()
    return {
        "version": "4",
        "groupKey": "{}:{alertname=" + json.dumps(first["labels"]["alertname"]) + "}",
        "truncatedAlerts": 0,
        "status": status or first["status"],
        "receiver": "remediation",
        "groupLabels": {"alertname": first["labels"]["alertname"]},
        "commonLabels": {"alertname": first["labels"]["alertname"]},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": list(alerts),
    }


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


class Harness:
    """A Receiver with an in-memory guard store, a recording launcher, recorded Events and a JSONL log."""

    def __init__(
        self,
        runbooks_dir: Path,
        log_path: Path,
        policy: GuardPolicy | None = None,
        store: InMemoryGuardStore | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.store = store or InMemoryGuardStore()
        self.launcher = RecordingLauncher()
        self.events = RecordingEvents()
        self.log_path = log_path
        self.receiver = Receiver(
            ReceiverConfig(runbooks_dir, "shorts", policy or GuardPolicy()),
            self.store,
            self.launcher,
            events=self.events,
            alert_log=AlertLog(log_path),
            clock=self.clock,
        )

    def send(self, payload: dict[str, Any]) -> None:
        from remediation.receiver.payload import parse_notification

        self.receiver.handle(parse_notification(body(payload)), self.clock(), None)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text(encoding="utf-8").splitlines()]

    def finish_last(self, succeeded: bool) -> None:
        self.launcher.finish(list(self.launcher.jobs)[-1], succeeded)
        self.receiver.reconcile()


def write_runbooks(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in RUNBOOKS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory
