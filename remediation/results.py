"""What a run produces (step and run results) and who hears about it while it happens (a Reporter)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from remediation.model import Runbook, Step

# Exit codes of `remediation run` by outcome (an approval denial is `aborted` with exit code 4).
EXIT_CODES = {"success": 0, "failed": 1, "aborted": 1, "escalated": 3, "refused": 4}
EXIT_DENIED = 4


@dataclass
class StepResult:
    id: str
    action: str
    outcome: str  # success | failed | skipped
    started_at: str
    duration_ms: float = 0.0
    attempts: int = 0
    output: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None  # temporary | permanent | input | condition | approval | timeout
    transition: str | None = None
    params: Any = None
    mutates: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class RunResult:
    id: str
    runbook: str
    outcome: str
    exit_code: int
    started_at: str
    finished_at: str
    reason: str = ""
    steps: list[StepResult] = field(default_factory=list)
    escalation: list[StepResult] = field(default_factory=list)
    record_path: Path | None = None


class Reporter(Protocol):
    def run_started(self, run_id: str, runbook: Runbook) -> None: ...
    def step_started(self, step: Step) -> None: ...
    def step_log(self, step_id: str, message: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...


class NullReporter:
    def run_started(self, run_id: str, runbook: Runbook) -> None: ...
    def step_started(self, step: Step) -> None: ...
    def step_log(self, step_id: str, message: str) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def run_finished(self, result: RunResult) -> None: ...
