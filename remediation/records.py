"""Run records (one JSON file per run) and the append-only JSONL audit log, both written durably.

Layout under the state directory (default .state/, or $REMEDIATION_STATE_DIR):
    runs/<run id>.json    the whole run: inputs, every step's outcome, output and error, the result
    audit.jsonl           one line per event (run started/finished, step finished, approval, guard refusal)

Records are rewritten atomically (temp file, fsync, rename); audit lines are appended under an
exclusive lock and fsync'd. Everything passes through the Redactor first.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

STATE_ENV = "REMEDIATION_STATE_DIR"


def state_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get(STATE_ENV) or ".state")


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Recorder:
    """Writes one run's record and its audit events."""

    def __init__(self, directory: Path, redact: Callable[[Any], Any]) -> None:
        self.directory = directory
        self.redact = redact
        self.audit_path = directory / "audit.jsonl"
        self._made = False

    def record_path(self, run_id: str) -> Path:
        return self.directory / "runs" / f"{run_id}.json"

    def save(self, record: Mapping[str, Any]) -> Path:
        path = self.record_path(str(record["id"]))
        write_atomic(
            path,
            json.dumps(self.redact(dict(record)), ensure_ascii=False, indent=2, sort_keys=True, default=str)
            + "\n",
        )
        return path

    def audit(self, event: str, **fields: Any) -> None:
        line = _dumps(self.redact({"time": now_iso(), "event": event, **fields})) + "\n"
        if not self._made:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._made = True
        with open(self.audit_path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def latest_record(directory: Path, runbook: str, run_id: str | None = None) -> dict[str, Any] | None:
    """The record of `run_id`, or the newest record of `runbook` (for `run --from` resuming)."""
    runs = directory / "runs"
    if run_id is not None:
        path = runs / f"{run_id}.json"
        return _read(path) if path.exists() else None
    if not runs.is_dir():
        return None
    candidates = []
    for path in runs.glob("*.json"):
        record = _read(path)
        if record is not None and record.get("runbook") == runbook:
            candidates.append((str(record.get("started_at", "")), record))
    return max(candidates, key=lambda pair: pair[0])[1] if candidates else None


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
