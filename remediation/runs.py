"""`remediation runs`: recent run records as a table or JSON, and which step a failed run failed at.

Pure logic on record dictionaries (the RecordStore hands them over); no client, no I/O.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from typing import Any

from remediation.errors import RemediationError

COLUMNS = ("RUN", "RUNBOOK", "OUTCOME", "STARTED", "DURATION", "FAILED STEP", "JOB")
UNFINISHED = "unfinished"  # no outcome in the record: still running, or its process was killed
# A failed step whose transition is one of these decided the run's outcome; `next` or a step id handled it.
_COUNTED = (None, "continue", "abort", "escalate", "end")


class NotResumable(RemediationError):
    """`resume` cannot continue this run: it succeeded, nothing ran, or where it stopped is unknown."""


def parse_time(value: Any) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_seconds(record: Mapping[str, Any]) -> float | None:
    started, finished = parse_time(record.get("started_at")), parse_time(record.get("finished_at"))
    if started is None or finished is None:
        return None
    return max(0.0, (finished - started).total_seconds())


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def outcome(record: Mapping[str, Any]) -> str:
    return str(record.get("outcome") or UNFINISHED)


def failed_step(record: Mapping[str, Any]) -> str | None:
    """The step whose failure decided the run: the first failed step whose failure was not handled.

    A failure taken to `next` or to another step id was handled (the run went on past it); one taken to
    `continue`, `abort`, `escalate` or `end`, or cut short by a timeout (no transition), counts.
    """
    for step in record.get("steps", []):
        if (
            isinstance(step, Mapping)
            and step.get("outcome") == "failed"
            and step.get("transition") in _COUNTED
        ):
            return str(step.get("id"))
    return None


def summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """One row of `remediation runs`, as JSON keys."""
    return {
        "run": record.get("id"),
        "runbook": record.get("runbook"),
        "outcome": outcome(record),
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "duration_s": duration_seconds(record),
        "failed_step": failed_step(record),
        "job": record.get("job"),
        "reason": record.get("reason") or "",
    }


def _started(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "-"


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The summaries as aligned text columns (times in UTC, as the records keep them)."""
    cells = [
        [
            str(row["run"] or "-"),
            str(row["runbook"] or "-"),
            str(row["outcome"]),
            _started(row["started_at"]),
            format_seconds(row["duration_s"]),
            str(row["failed_step"] or "-"),
            str(row["job"] or "-"),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [list(COLUMNS), *cells]) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in [list(COLUMNS), *cells]]  # fmt: skip
    return "\n".join(lines) + "\n"


def as_json(rows: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(rows), ensure_ascii=False, indent=2, default=str)


def resume_step(record: Mapping[str, Any], explicit: str | None = None) -> str:
    """Where `resume` continues: `explicit` (--from), else the failed step; NotResumable otherwise."""
    run_id, state = record.get("id"), outcome(record)
    mode: Mapping[str, Any] = record["mode"] if isinstance(record.get("mode"), Mapping) else {}
    if state == "success":
        raise NotResumable(f"run {run_id} succeeded: there is nothing to resume")
    if state == "refused":
        raise NotResumable(
            f"run {run_id} was refused by a guard before any step ran ({record.get('reason', '')}); "
            "start a new run instead"
        )
    if mode.get("kind") == "step":
        raise NotResumable(
            f"run {run_id} ran only step {mode.get('step')!r} (--step); run it again with "
            f"`remediation run {record.get('runbook')} --step {mode.get('step')}`"
        )
    if explicit:
        return explicit
    step = failed_step(record)
    if step is not None:
        return step
    done = [str(s.get("id")) for s in record.get("steps", []) if isinstance(s, Mapping)]
    after = f" after step {done[-1]!r}" if done else " before its first step"
    raise NotResumable(
        f"run {run_id} ({state}) has no failed step: it stopped{after}; "
        "choose where to continue with --from STEP"
    )
