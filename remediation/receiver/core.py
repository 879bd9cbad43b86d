"""The receiver's decisions, independent of HTTP: one notification in, records, guards and launches out."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .alertlog import AlertLog, record
from .dedupe import SeenAlerts
from .events import EventRecorder, Note, RecordingEvents
from .guards import Decision, GuardPolicy, GuardState, GuardStore, decide, record_outcome, release
from .jobs import FinishedRun, JobLauncher, LaunchRequest, guard_key
from .mapping import RunbookIndex, load_index, runbook_params, target_of
from .metrics import Metrics
from .payload import Alert, Notification

log = logging.getLogger(__name__)


@dataclass
class ReceiverConfig:
    runbooks_dir: Path
    namespace: str = "shorts"
    policy: GuardPolicy = field(default_factory=GuardPolicy)
    reload_every_s: float = 30.0  # the runbooks ConfigMap mount changes under us; re-read now and then


class Receiver:
    def __init__(
        self,
        config: ReceiverConfig,
        store: GuardStore,
        launcher: JobLauncher,
        *,
        events: EventRecorder | None = None,
        alert_log: AlertLog | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.launcher = launcher
        self.events = events or RecordingEvents()
        self.alert_log = alert_log or AlertLog(None)
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.seen = SeenAlerts()
        self._index = load_index(config.runbooks_dir)
        self._index_loaded = time.monotonic()

    @property
    def index(self) -> RunbookIndex:
        if time.monotonic() - self._index_loaded > self.config.reload_every_s:
            self._index = load_index(self.config.runbooks_dir)
            self._index_loaded = time.monotonic()
        return self._index

    def handle(
        self, notification: Notification, received_at: float, received_mono: float | None = None
    ) -> None:
        """Decide for every alert of one notification; every alert gets at least one log record."""
        if notification.truncated_alerts:
            self.metrics.failures.inc(notification.truncated_alerts, stage="truncated")
            log.warning(
                "group %s: Alertmanager left out %d alerts (max_alerts)",
                notification.group_key,
                notification.truncated_alerts,
            )
        records: list[dict[str, Any]] = []
        for alert in notification.alerts:
            self.metrics.received.inc(status=alert.status)
            records += self._handle_alert(alert, received_at, received_mono)
        self.alert_log.write(records)

    def _handle_alert(
        self, alert: Alert, received_at: float, received_mono: float | None
    ) -> list[dict[str, Any]]:
        if not alert.firing:
            return [record(alert, received_at, "resolved")]
        if not self.seen.first_time(alert.dedupe_id):
            self.metrics.deduplicated.inc()
            return [record(alert, received_at, "deduplicated")]
        names, problem = self.index.runbooks_for(alert)
        if problem:
            self.metrics.suppressed.inc(reason="no-runbook")
            return [record(alert, received_at, "suppressed", reason="no-runbook", detail=problem)]
        return [self._guard_and_launch(alert, name, received_at, received_mono) for name in names]

    def _guard_and_launch(
        self, alert: Alert, runbook: str, received_at: float, received_mono: float | None
    ) -> dict[str, Any]:
        info = self.index.runbooks[runbook]
        target = target_of(alert, self.config.namespace, runbook)
        key = guard_key(runbook, target)
        policy = self.config.policy.with_runbook_guards(info.guards)
        now = self.clock()
        try:
            decision, started_at = self.store.update(key, lambda s: self._decide(s, policy, alert, now))
        except Exception as exc:  # the store is remote: never let one alert kill the worker
            self.metrics.failures.inc(stage="guard-store")
            self.seen.forget(alert.dedupe_id)
            log.error("guard store for %s: %s", key, exc)
            return record(
                alert,
                received_at,
                "failed",
                runbook=runbook,
                target=target.key,
                stage="guard-store",
                detail=str(exc),
            )
        base: dict[str, Any] = {"runbook": runbook, "target": target.key}
        if decision.action == "duplicate":
            self.metrics.deduplicated.inc()
            return record(alert, received_at, "deduplicated", **base)
        if decision.action == "suppress":
            self.metrics.suppressed.inc(reason=decision.reason)
            self.events.record(
                Note(
                    target,
                    runbook,
                    "RemediationSuppressed",
                    f"{alert.alertname} suppressed: {decision.reason}: {decision.detail}",
                )
            )
            return record(
                alert, received_at, "suppressed", reason=decision.reason, detail=decision.detail, **base
            )
        request = LaunchRequest(
            runbook=runbook,
            target=target,
            alert=alert,
            params=runbook_params(info, alert),
            escalate_only=decision.action == "escalate",
            reason=decision.reason,
        )
        return self._launch(request, decision, started_at, received_at, received_mono, base)

    @staticmethod
    def _decide(
        state: GuardState, policy: GuardPolicy, alert: Alert, now: float
    ) -> tuple[tuple[Decision, float | None], GuardState | None]:
        decision, new = decide(state, policy, alert.dedupe_id, now)
        # Only decisions that act are stored: a storm of suppressions costs no writes.
        stored = new if decision.action in ("run", "escalate") else None
        return (decision, now if decision.action == "run" else None), stored

    def _launch(
        self,
        request: LaunchRequest,
        decision: Decision,
        started_at: float | None,
        received_at: float,
        received_mono: float | None,
        base: dict[str, Any],
    ) -> dict[str, Any]:
        alert, target = request.alert, request.target
        try:
            result = self.launcher.launch(request)
        except Exception as exc:
            self.metrics.failures.inc(stage="launch")
            log.error("launching %s for %s: %s", request.runbook, target.key, exc)
            self._undo(request, started_at)
            return record(alert, received_at, "failed", stage="launch", detail=str(exc), **base)
        if received_mono is not None:
            self.metrics.latency.observe(time.monotonic() - received_mono)
        if not result.created:
            self.metrics.deduplicated.inc()
            return record(alert, received_at, "deduplicated", job=result.job_name, **base)
        self.metrics.jobs_created.inc(mode=request.mode)
        if request.escalate_only:
            self.events.record(
                Note(
                    target,
                    request.runbook,
                    "RemediationEscalated",
                    f"{alert.alertname}: escalating to a human: {decision.reason}: {decision.detail}"
                    f" (Job {result.job_name})",
                    warning=True,
                )
            )
            return record(
                alert,
                received_at,
                "escalated",
                job=result.job_name,
                reason=decision.reason,
                detail=decision.detail,
                **base,
            )
        self.events.record(
            Note(
                target,
                request.runbook,
                "RemediationStarted",
                f"{alert.alertname}: Job {result.job_name} started",
            )
        )
        return record(alert, received_at, "started", job=result.job_name, **base)

    def _undo(self, request: LaunchRequest, started_at: float | None) -> None:
        self.seen.forget(request.alert.dedupe_id)
        try:
            self.store.update(
                request.guard_key, lambda s: (None, release(s, request.alert.dedupe_id, started_at))
            )
        except Exception as exc:
            log.error("releasing guard %s after a failed launch: %s", request.guard_key, exc)

    def reconcile(self) -> int:
        """Count finished runs into the breakers (escalation Jobs do not count); flush Events."""
        counted = 0
        try:
            finished = self.launcher.finished()
        except Exception as exc:
            self.metrics.failures.inc(stage="job-status")
            log.error("listing finished Jobs: %s", exc)
            finished = []
        now = self.clock()
        for run in finished:
            if run.mode != "run" or not run.guard_key:
                continue
            try:
                self.store.update(run.guard_key, _outcome_recorder(run, now))
                counted += 1
            except Exception as exc:
                self.metrics.failures.inc(stage="guard-store")
                log.error("recording outcome of %s: %s", run.job_name, exc)
        self.events.flush()
        return counted


def _outcome_recorder(run: FinishedRun, now: float) -> Callable[[GuardState], tuple[None, GuardState | None]]:
    def apply(state: GuardState) -> tuple[None, GuardState | None]:
        return None, record_outcome(state, run.job_name, run.succeeded, now)

    return apply
