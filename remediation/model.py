"""The loaded, checked form of a runbook: frozen dataclasses the executor, planner and docs read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from remediation.expressions import Node

# Transitions every `on:` may name besides a step id. `continue` goes on like `next` but the failure
# still counts: the run ends `failed` (used by check runbooks that report every failing check).
KEYWORD_TARGETS = ("next", "continue", "end", "escalate", "abort")
OUTCOMES = ("success", "failed", "escalated", "aborted", "refused")


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # string | integer | number | boolean | list | duration
    default: Any = None
    has_default: bool = False
    description: str = ""
    enum: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Retry:
    attempts: int = 1
    backoff: str = "fixed"  # fixed | exponential
    initial: float = 1.0  # seconds before the second attempt
    max: float = 60.0  # cap on any single delay
    jitter: float = 0.0  # fraction: each delay is scaled by a random factor in [1 - jitter, 1 + jitter]

    def delay(self, failed_attempt: int, random: float) -> float:
        """Seconds to wait after attempt number `failed_attempt` (1-based); `random` is uniform in [0, 1)."""
        base = self.initial if self.backoff == "fixed" else self.initial * 2 ** (failed_attempt - 1)
        base = min(base, self.max)
        return max(0.0, min(self.max, base * (1 + self.jitter * (2 * random - 1))))


@dataclass(frozen=True)
class Foreach:
    items: Any  # a template string resolving to a list, or a literal list (whose strings may be templates)
    concurrency: int = 5


@dataclass(frozen=True)
class Step:
    id: str
    action: str
    with_: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    when: Node | None = None
    when_text: str | None = None
    foreach: Foreach | None = None
    retry: Retry = Retry()
    timeout: float | None = None
    on_success: str = "next"
    on_failure: str = "abort"
    mutates: bool = False
    line: int | None = None


@dataclass(frozen=True)
class Guards:
    cooldown: float | None = None
    budget_runs: int | None = None
    budget_per: float | None = None
    lock: str | None = None  # template naming the target; None: the runbook itself is the target


@dataclass(frozen=True)
class Trigger:
    alert: str
    match: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    severity: str
    description: str
    file: str
    triggers: tuple[Trigger, ...] = ()
    params: Mapping[str, Param] = field(default_factory=dict)
    guards: Guards | None = None
    steps: tuple[Step, ...] = ()
    escalate: tuple[Step, ...] = ()
    timeout: float = 1800.0
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def mutates(self) -> bool:
        """True when a main step changes something; such runbooks need guards (escalation excluded)."""
        return any(step.mutates for step in self.steps)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def index(self, step_id: str) -> int:
        return [step.id for step in self.steps].index(step_id)
