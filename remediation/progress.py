"""Live progress of a run: one line per step, updated in place on a terminal."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from remediation.model import Runbook, Step
from remediation.results import RunResult, StepResult

_MARKS = {"success": "✔", "failed": "✘", "skipped": "–"}


def _summary(result: StepResult) -> str:
    text = f"{_MARKS.get(result.outcome, '?')} {result.id:<22} {result.action:<28} {result.outcome}"
    text += f" in {result.duration_ms:.0f} ms"
    if result.attempts > 1:
        text += f" after {result.attempts} attempts"
    if result.transition and result.transition not in ("next",):
        text += f" → {result.transition}"
    if result.error:
        text += f"\n      {result.error}"
    return text


class TextReporter:
    """Human-readable progress. On a TTY the running step shows as `… id` and is replaced when done."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self._pending = False

    def _clear(self) -> None:
        if self._pending:
            self.stream.write("\r\x1b[K")
            self._pending = False

    def run_started(self, run_id: str, runbook: Runbook) -> None:
        self.stream.write(f"run {run_id}: {runbook.title} ({runbook.severity})\n")
        self.stream.flush()

    def step_started(self, step: Step) -> None:
        if self.tty:
            self._clear()
            self.stream.write(f"… {step.id:<22} {step.action}")
            self.stream.flush()
            self._pending = True

    def step_log(self, step_id: str, message: str) -> None:
        self._clear()
        self.stream.write(f"      {step_id}: {message}\n")
        self.stream.flush()

    def step_finished(self, result: StepResult) -> None:
        self._clear()
        self.stream.write(_summary(result) + "\n")
        self.stream.flush()

    def run_finished(self, result: RunResult) -> None:
        self._clear()
        line = f"{result.outcome.upper()} (exit {result.exit_code})"
        if result.reason:
            line += f": {result.reason}"
        self.stream.write(line + "\n")
        if result.record_path is not None:
            self.stream.write(f"record: {result.record_path}\n")
        self.stream.flush()


def result_json(result: RunResult) -> str:
    payload: dict[str, Any] = {
        "id": result.id,
        "runbook": result.runbook,
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "reason": result.reason,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "record": str(result.record_path) if result.record_path else None,
        "steps": [s.as_dict() for s in result.steps],
        "escalation": [s.as_dict() for s in result.escalation],
    }
    return json.dumps(payload, ensure_ascii=False, indent=2, default=str)
