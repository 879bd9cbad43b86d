"""Guards per (runbook, target): dedupe across replicas, cooldown, run budget per window, circuit breaker.

The decision is a pure function of (state, policy, alert, now); a GuardStore applies it atomically
(compare-and-swap), so two receiver replicas never both start a run for the same key.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, TypeVar

from .mapping import parse_duration

T = TypeVar("T")

RECENT_ALERTS_KEPT = 64  # dedupe ids kept per key: far more than one key sees within a cooldown
COUNTED_JOBS_KEPT = 256  # > runs a key can have within the Jobs' TTL (budget 3/h * 24 h)


@dataclass(frozen=True)
class GuardPolicy:
    cooldown_s: float = 600.0
    budget_runs: int = 3
    budget_window_s: float = 3600.0
    breaker_failures: int = 3
    # An open breaker lets one trial run through after this long (half-open); a success closes it.
    breaker_reset_s: float = 3600.0
    # At most one escalation per key per this long, so a storm pages a human once, not a thousand times.
    escalation_cooldown_s: float = 1800.0

    def with_runbook_guards(self, guards: Mapping[str, Any]) -> GuardPolicy:
        """Overlay a runbook's own `guards:` (cooldown, budget {runs, per}, breaker {failures, reset})."""
        policy = self
        if isinstance(guards.get("cooldown"), str):
            policy = replace(policy, cooldown_s=parse_duration(guards["cooldown"]))
        budget = guards.get("budget")
        if isinstance(budget, dict):
            if isinstance(budget.get("runs"), int):
                policy = replace(policy, budget_runs=budget["runs"])
            if isinstance(budget.get("per"), str):
                policy = replace(policy, budget_window_s=parse_duration(budget["per"]))
        breaker = guards.get("breaker")
        if isinstance(breaker, dict):
            if isinstance(breaker.get("failures"), int):
                policy = replace(policy, breaker_failures=breaker["failures"])
            if isinstance(breaker.get("reset"), str):
                policy = replace(policy, breaker_reset_s=parse_duration(breaker["reset"]))
        return policy


@dataclass
class GuardState:
    starts: list[float] = field(default_factory=list)  # run start times inside the budget window
    last_start: float | None = None
    consecutive_failures: int = 0
    breaker_opened_at: float | None = None
    last_escalation: float | None = None
    recent_alerts: list[str] = field(default_factory=list)  # dedupe ids that already got a decision
    counted_jobs: list[str] = field(default_factory=list)  # finished Jobs whose outcome is counted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GuardState:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass(frozen=True)
class Decision:
    action: str  # run | escalate | suppress | duplicate
    reason: str = ""  # cooldown | budget | breaker | escalation-cooldown (suppress / escalate)
    detail: str = ""


def _remember(items: list[str], item: str, keep: int) -> list[str]:
    return [*items, item][-keep:]


def _breaker_open(state: GuardState, policy: GuardPolicy, now: float) -> bool:
    if state.consecutive_failures < policy.breaker_failures:
        return False
    opened = state.breaker_opened_at or 0.0
    return now - opened < policy.breaker_reset_s


def _escalate_or_suppress(
    state: GuardState, policy: GuardPolicy, now: float, reason: str, detail: str
) -> tuple[Decision, GuardState]:
    if state.last_escalation is not None and now - state.last_escalation < policy.escalation_cooldown_s:
        return Decision("suppress", reason, f"{detail}; a human was already alerted"), state
    return Decision("escalate", reason, detail), replace(state, last_escalation=now)


def decide(state: GuardState, policy: GuardPolicy, alert_id: str, now: float) -> tuple[Decision, GuardState]:
    """What to do with one firing alert for one key, and the state to store if it is acted on."""
    if alert_id in state.recent_alerts:
        return Decision("duplicate", "duplicate", "this alert episode was already handled"), state
    state = replace(
        state,
        recent_alerts=_remember(state.recent_alerts, alert_id, RECENT_ALERTS_KEPT),
        starts=[t for t in state.starts if now - t < policy.budget_window_s],
    )
    if _breaker_open(state, policy, now):
        detail = (
            f"{state.consecutive_failures} consecutive failed runs (breaker at {policy.breaker_failures})"
        )
        return _escalate_or_suppress(state, policy, now, "breaker", detail)
    if state.last_start is not None and now - state.last_start < policy.cooldown_s:
        left = policy.cooldown_s - (now - state.last_start)
        return Decision(
            "suppress",
            "cooldown",
            f"last run started {now - state.last_start:.0f}s ago, "
            f"cooldown {policy.cooldown_s:.0f}s ({left:.0f}s left)",
        ), state
    if len(state.starts) >= policy.budget_runs:
        window = f"{policy.budget_window_s:.0f}s"
        detail = f"{len(state.starts)} runs in the last {window} (budget {policy.budget_runs})"
        return _escalate_or_suppress(state, policy, now, "budget", detail)
    if state.consecutive_failures >= policy.breaker_failures:
        # Half-open: this run is the trial; until its outcome is known the breaker counts as open again.
        state = replace(state, breaker_opened_at=now)
    return Decision("run"), replace(state, starts=[*state.starts, now], last_start=now)


def release(state: GuardState, alert_id: str, started_at: float | None) -> GuardState:
    """Undo a decision whose Job could not be created, so Alertmanager's next resend can try again."""
    return replace(
        state,
        recent_alerts=[a for a in state.recent_alerts if a != alert_id],
        starts=[t for t in state.starts if t != started_at],
        last_start=None if state.last_start == started_at else state.last_start,
    )


def record_outcome(state: GuardState, job_name: str, succeeded: bool, now: float) -> GuardState | None:
    """Count one finished run once (replicas may both see it). None: already counted, nothing to store."""
    if job_name in state.counted_jobs:
        return None
    counted = _remember(state.counted_jobs, job_name, COUNTED_JOBS_KEPT)
    if succeeded:
        return replace(state, counted_jobs=counted, consecutive_failures=0, breaker_opened_at=None)
    failures = state.consecutive_failures + 1
    return replace(state, counted_jobs=counted, consecutive_failures=failures, breaker_opened_at=now)


class GuardStore(Protocol):
    """Keeps GuardState per key. `update` runs fn on the current state and stores its result atomically:
    fn returns (result, new state or None for "no change"); on a concurrent write fn runs again."""

    def update(self, key: str, fn: Callable[[GuardState], tuple[T, GuardState | None]]) -> T: ...


class InMemoryGuardStore:
    """One process only (unit tests, local `remediation serve --store memory`)."""

    def __init__(self) -> None:
        self._states: dict[str, GuardState] = {}
        self._lock = threading.Lock()

    def update(self, key: str, fn: Callable[[GuardState], tuple[T, GuardState | None]]) -> T:
        with self._lock:
            result, new = fn(self._states.get(key, GuardState()))
            if new is not None:
                self._states[key] = new
            return result

    def get(self, key: str) -> GuardState:
        with self._lock:
            return self._states.get(key, GuardState())
