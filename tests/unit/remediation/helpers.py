"""Build runbooks for tests from plain dicts (dumped to YAML, loaded through the real loader)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from remediation.actions.registry import ActionRegistry
from remediation.executor import Executor, RunResult
from remediation.loader import load_text
from remediation.model import Runbook


def document(steps: list[dict[str, Any]], name: str = "test-book", **top: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "shorts.ops/v1",
        "kind": "Runbook",
        "metadata": {
            "name": name,
            "title": "A test runbook",
            "severity": "P2",
            "description": "Steps for a test; a human could follow them too.",
        },
        "steps": steps,
    }
    doc.update(top)
    return doc


def build(registry: ActionRegistry, steps: list[dict[str, Any]], **top: Any) -> Runbook:
    return load_text(yaml.safe_dump(document(steps, **top), allow_unicode=True), "inline", registry)


def write(directory: Path, steps: list[dict[str, Any]], name: str = "test-book", **top: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document(steps, name=name, **top), allow_unicode=True), encoding="utf-8")
    return path


class Recording:
    """A Reporter that keeps everything it was told (to check progress output and redaction)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def run_started(self, run_id: str, runbook: Runbook) -> None:
        self.lines.append(f"start {run_id}")

    def step_started(self, step: Any) -> None:
        self.lines.append(f"step {step.id}")

    def step_log(self, step_id: str, message: str) -> None:
        self.lines.append(f"log {step_id}: {message}")

    def step_finished(self, result: Any) -> None:
        self.lines.append(f"done {result.id} {result.outcome} {result.error or ''} {result.output}")

    def run_finished(self, result: RunResult) -> None:
        self.lines.append(f"end {result.outcome} {result.reason}")


def run(
    executor: Executor,
    runbook: Runbook,
    params: Mapping[str, Any] | None = None,
    profile: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    defaults = {name: p.default for name, p in runbook.params.items() if p.has_default}
    return asyncio.run(executor.run(runbook, {**defaults, **(params or {})}, profile or {}, **kwargs))
