"""Guards for mutating runbooks: a cooldown and a run budget per (runbook, target), a lock per target.

The target is the runbook's `guards.lock` (rendered, e.g. "rollout/api"), or the runbook's name when
it declares none. Two runbooks that name the same target exclude each other.

`GuardStore` is the interface; `FileGuardStore` keeps the state in one JSON file guarded by an fcntl
lock, for CLI use on one machine. A cluster-backed store (Kubernetes Leases) implements the same
Protocol later.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from remediation.durations import format_duration
from remediation.errors import GuardRefused
from remediation.model import Guards
from remediation.records import write_atomic


@dataclass(frozen=True)
class Lease:
    runbook: str
    target: str
    run_id: str


class GuardStore(Protocol):
    def acquire(
        self, runbook: str, target: str, guards: Guards, run_id: str, now: float, *, resuming: bool = False
    ) -> Lease:
        """Check cooldown, budget and lock; on success count the run and hold the lock.

        A resumed run (`--from`) continues one that already counted: it needs the lock only, so the
        cooldown its own first attempt started cannot refuse the fix of that attempt.
        Raises GuardRefused (naming the guard and when to try again) otherwise.
        """
        ...

    def release(self, lease: Lease, now: float) -> None:
        """Free the lock (the run is over, whatever its outcome)."""
        ...


class FileGuardStore:
    """State: {"runs": {"<runbook>|<target>": [start, ...]}, "locks": {"<target>": {...}}}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self._read()
                yield state
                write_atomic(self.path, json.dumps(state, indent=2, sort_keys=True) + "\n")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Any]:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        except (OSError, json.JSONDecodeError) as err:
            raise GuardRefused(
                "state",
                f"guard state {self.path} is unreadable ({err}); "
                "inspect it, then move it aside to reset the guards",
            ) from None
        state.setdefault("runs", {})
        state.setdefault("locks", {})
        return state

    def acquire(
        self, runbook: str, target: str, guards: Guards, run_id: str, now: float, *, resuming: bool = False
    ) -> Lease:
        key = f"{runbook}|{target}"
        with self._locked() as state:
            holder = state["locks"].get(target)
            if holder is not None and _alive(holder):
                raise GuardRefused(
                    "lock",
                    f"{target} is locked by run {holder['run_id']} of {holder['runbook']} "
                    f"(pid {holder['pid']} on {holder['host']}); wait for it to finish",
                )
            window = max(guards.cooldown or 0, guards.budget_per or 0)
            starts = [t for t in state["runs"].get(key, []) if now - t < window]
            if not resuming:
                _check_rate(runbook, target, guards, starts, now)
                state["runs"][key] = [*starts, now]
            state["locks"][target] = {
                "run_id": run_id,
                "runbook": runbook,
                "since": now,
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
        return Lease(runbook, target, run_id)

    def release(self, lease: Lease, now: float) -> None:
        with self._locked() as state:
            holder = state["locks"].get(lease.target)
            if holder is not None and holder.get("run_id") == lease.run_id:
                del state["locks"][lease.target]


def _check_rate(runbook: str, target: str, guards: Guards, starts: list[float], now: float) -> None:
    """Refuse a new start within the cooldown of the last one, or beyond the budget of its window."""
    if guards.cooldown and starts and now - max(starts) < guards.cooldown:
        wait = guards.cooldown - (now - max(starts))
        raise GuardRefused(
            "cooldown",
            f"{runbook} ran on {target} {format_duration(now - max(starts))} ago; "
            f"cooldown is {format_duration(guards.cooldown)}, "
            f"try again in {format_duration(round(wait))}",
        )
    if guards.budget_runs and guards.budget_per:
        recent = [t for t in starts if now - t < guards.budget_per]
        if len(recent) >= guards.budget_runs:
            raise GuardRefused(
                "budget",
                f"{runbook} already ran {len(recent)} times on {target} in the last "
                f"{format_duration(guards.budget_per)} (budget "
                f"{guards.budget_runs}); a human should look first",
            )


def _alive(holder: dict[str, Any]) -> bool:
    """A lock whose process is gone (same host, pid dead) is stale and may be taken over."""
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder.get("pid", 0)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def wall_clock() -> float:
    return time.time()
