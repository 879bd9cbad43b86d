"""A registry of small test actions (the real ones live in remediation/actions and have their own tests).

Contract-shaped stand-ins (`http.check`, `kubernetes.restart`, `notify.slack`) keep the invalid-runbook
corpus independent of the real actions' schemas; `t.*` actions let executor tests script behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediation.actions.registry import ActionContext, ActionRegistry, ActionSpec
from remediation.errors import ApprovalDenied, PermanentError, TemporaryError

DURATION = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"}


class Script:
    """What the scripted actions do, and what they saw."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failures: dict[str, list[str]] = {}  # key -> queue of "temp" | "perm" | "ok"
        self.active = 0
        self.peak = 0
        self.delays: dict[str, float] = {}
        self.secrets_seen: list[str] = []

    def next_result(self, key: str) -> str:
        queue = self.failures.get(key, [])
        return queue.pop(0) if queue else "ok"


def _spec(
    name: str, run: Any, params: Mapping[str, Any], mutates: bool = False, outputs: tuple[str, ...] = ()
) -> ActionSpec:
    def describe(p: Mapping[str, Any]) -> str:
        return f"would {name} with {dict(sorted(p.items()))}"

    return ActionSpec(
        name, f"test action {name}", params, mutates, run, describe, outputs, defined_at="conftest"
    )


def _object(properties: Mapping[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": dict(properties),
        "required": list(required),
    }


def make_registry(script: Script) -> ActionRegistry:
    registry = ActionRegistry()

    async def step(ctx: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
        key = str(params.get("key", "default"))
        script.calls.append((key, dict(params)))
        script.active += 1
        script.peak = max(script.peak, script.active)
        try:
            await asyncio.sleep(float(params.get("delay", script.delays.get(key, 0))))
            outcome = script.next_result(key)
        finally:
            script.active -= 1
        if outcome == "temp":
            raise TemporaryError(f"{key}: temporary trouble", {"seen": key})
        if outcome == "perm":
            raise PermanentError(f"{key}: permanent trouble")
        if outcome == "crash":
            raise RuntimeError("bug inside the action")
        if "log" in params:
            ctx.log(str(params["log"]))
        return {"key": key, "value": params.get("value"), "count": len(script.calls)}

    step_params = _object(
        {"key": {"type": "string"}, "value": {}, "delay": {"type": "number"}, "log": {"type": "string"}}
    )
    registry.register(_spec("t.step", step, step_params, outputs=("key", "value", "count")))
    registry.register(_spec("t.change", step, step_params, mutates=True, outputs=("key", "value", "count")))

    async def secret(ctx: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
        value = ctx.secret(params["token_secret"])
        script.secrets_seen.append(value)
        ctx.log(f"using token {value}")
        if params.get("fail"):
            raise PermanentError(f"server rejected token {value}", {"echo": value})
        return {"echo": f"Bearer {value}"}

    registry.register(
        _spec(
            "t.secret",
            secret,
            _object({"token_secret": {"type": "string"}, "fail": {"type": "boolean"}}, ("token_secret",)),
            outputs=("echo",),
        )
    )

    async def approve(ctx: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
        if not await ctx.approve(params["prompt"]):
            raise ApprovalDenied(f"not approved: {params['prompt']}")
        return {"approved": True}

    registry.register(
        _spec(
            "manual.approve",
            approve,
            _object({"prompt": {"type": "string"}}, ("prompt",)),
            outputs=("approved",),
        )
    )

    async def noop(ctx: ActionContext, params: Mapping[str, Any]) -> dict[str, Any]:
        script.calls.append((params.get("url", params.get("name", "")), dict(params)))
        return {"status": 200, "latency_ms": 1.0, "body": {}}

    status = {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]}
    registry.register(
        _spec(
            "http.check",
            noop,
            _object(
                {
                    "url": {"type": "string", "minLength": 1},
                    "method": {"enum": ["GET", "HEAD"]},
                    "timeout": DURATION,
                    "bearer_secret": {"type": "string"},
                    "expect": _object({"status": status, "max_latency_ms": {"type": "number"}}),
                },
                ("url",),
            ),
            outputs=("status", "latency_ms", "body"),
        )
    )
    registry.register(
        _spec(
            "kubernetes.restart",
            noop,
            _object(
                {
                    "kind": {"enum": ["Deployment", "Rollout"]},
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                },
                ("kind", "name", "namespace"),
            ),
            mutates=True,
            outputs=("restarted_at",),
        )
    )
    registry.register(
        _spec(
            "kubernetes.scale",
            noop,
            _object(
                {
                    "kind": {"enum": ["Deployment", "Rollout", "HorizontalPodAutoscaler"]},
                    "name": {"type": "string"},
                    "namespace": {"type": "string"},
                    "by": {"type": "integer", "minimum": 1},
                    "max": {"type": "integer"},
                },
                ("kind", "name", "namespace", "by", "max"),
            ),
            mutates=True,
            outputs=("from", "to"),
        )
    )
    registry.register(
        _spec(
            "notify.slack",
            noop,
            _object(
                {
                    "channel": {"type": "string"},
                    "text": {"type": "string"},
                    "webhook_secret": {"type": "string"},
                },
                ("channel", "text"),
            ),
            mutates=True,
            outputs=("ok",),
        )
    )
    return registry


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def registry(script: Script) -> ActionRegistry:
    return make_registry(script)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"
