"""A small, real ActionContext for action tests, and a helper that runs one action as the executor would.

Independent of the executor's own context on purpose: action tests must not break when the executor
changes, and the executor's tests use their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from remediation.actions.registry import REGISTRY, load_all
from remediation.errors import PermanentError


@dataclass
class RecordingContext:
    """Answers approvals from `answers` (then refuses), serves `secrets`, and records prompts and logs."""

    profile: Mapping[str, Any] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    answers: list[bool] = field(default_factory=list)
    dry_run: bool = False
    prompts: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    secrets_read: list[str] = field(default_factory=list)

    def secret(self, name: str) -> str:
        self.secrets_read.append(name)
        if name not in self.secrets:
            raise PermanentError(f"the secret {name} is not set; export {name} before running")
        return self.secrets[name]

    async def approve(self, prompt: str) -> bool:
        self.prompts.append(prompt)
        return self.answers.pop(0) if self.answers else False

    def log(self, message: str) -> None:
        self.logs.append(message)


def run_action(name: str, params: Mapping[str, Any], ctx: RecordingContext | None = None) -> dict[str, Any]:
    """Validate `params` against the action's schema (as the loader does), then run it to completion."""
    spec = load_all().get(name)
    errors = [e.message for e in Draft202012Validator(spec.params).iter_errors(params)]
    assert not errors, f"{name}: test params do not match the schema: {errors}"

    async def run() -> dict[str, Any]:
        return await spec.run(ctx or RecordingContext(), params)

    return asyncio.run(run())


__all__ = ["REGISTRY", "RecordingContext", "run_action"]
