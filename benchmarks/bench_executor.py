"""Executor overhead per no-op step, and the cold start of `remediation validate runbooks/`.

Baselines measured in the same run:
  * a bare loop awaiting the same no-op coroutine N times (what any asyncio program pays);
  * `python -c pass` (what any Python command pays to start).
Prints ratios; asserts nothing about time.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from remediation import records
from remediation.actions.registry import ActionRegistry, ActionSpec
from remediation.executor import Executor
from remediation.loader import load_text

REPO = Path(__file__).resolve().parents[1]
STEPS = 400


async def noop(ctx: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def registry() -> ActionRegistry:
    reg = ActionRegistry()
    reg.register(
        ActionSpec(
            "bench.noop", "does nothing", {"type": "object"}, False, noop, lambda p: "nothing", ("ok",)
        )
    )
    return reg


def runbook(reg: ActionRegistry, steps: int) -> Any:
    doc = {
        "apiVersion": "shorts.ops/v1",
        "kind": "Runbook",
        "metadata": {
            "name": "bench",
            "title": "No-op steps",
            "severity": "P3",
            "description": "Only no-op steps, to measure what the executor itself costs.",
        },
        "steps": [{"id": f"s{i}", "action": "bench.noop", "with": {"n": i}} for i in range(steps)],
    }
    return load_text(yaml.safe_dump(doc), "bench.yaml", reg)


async def bare_loop(steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        await noop(None, {})
    return time.perf_counter() - started


def executor_run(reg: ActionRegistry, book: Any, state: Path) -> float:
    executor = Executor(reg, state=state)
    started = time.perf_counter()
    result = asyncio.run(executor.run(book, {}, {}))
    elapsed = time.perf_counter() - started
    assert result.outcome == "success"
    return elapsed


def cold(command: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    reg = registry()
    book = runbook(reg, STEPS)
    with tempfile.TemporaryDirectory() as tmp:
        executor_run(reg, book, Path(tmp) / "warm")  # warm imports and caches
        runs = [executor_run(reg, book, Path(tmp) / f"s{i}") for i in range(3)]
        # the same without fsync: what the executor costs apart from the disk's durability guarantee
        real_fsync = records.os.fsync
        records.os.fsync = lambda fd: None
        try:
            unsynced = [executor_run(reg, book, Path(tmp) / f"u{i}") for i in range(3)]
        finally:
            records.os.fsync = real_fsync
    bare = min(asyncio.run(bare_loop(STEPS)) for _ in range(3))
    print(
        f"{STEPS} no-op steps: executor {min(runs) * 1000:.1f} ms "
        f"(without fsync {min(unsynced) * 1000:.1f} ms); "
        f"bare awaited loop {bare * 1000:.3f} ms"
    )
    for label, best in (
        ("with the fsync'd audit line per step", min(runs)),
        ("without fsync", min(unsynced)),
    ):
        per_step = (best - bare) / STEPS
        print(
            f"executor overhead per no-op step {label}: {per_step * 1e6:.0f} µs; "
            f"ratio to a bare awaited no-op: {best / max(bare, 1e-9):.0f}x"
        )

    python = cold([sys.executable, "-c", "pass"])
    validate = cold([sys.executable, "-m", "remediation.cli", "validate", "runbooks/"])
    print(
        f"cold start: `remediation validate runbooks/` {validate * 1000:.0f} ms vs `python -c pass` "
        f"{python * 1000:.0f} ms; ratio {validate / python:.1f}x"
    )


if __name__ == "__main__":
    main()
