"""Run records (one JSON document per run) and the append-only JSONL audit log, both written durably.

Layout under the state directory (default .state/, or $REMEDIATION_STATE_DIR):
    runs/<run id>.json    the whole run: inputs, every step's outcome, output and error, the result
    audit.jsonl           one line per event (run started/finished, step finished, approval, guard refusal)

Records are rewritten atomically (temp file, fsync, rename); audit lines are appended under an
exclusive lock and fsync'd. Everything passes through the Redactor first.

Where records are kept is a RecordStore. The file store above is the default and always written (it is the
run's own copy, and `run` prints its path). With REMEDIATION_RECORDS=configmaps (what a remediation Job
sets) each record is also kept in the cluster, one ConfigMap per run (records_cluster.py), so that
`remediation runs` and `remediation resume` work after the Job's pod is gone. The audit log stays a file.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from remediation.errors import Problem, RunbookInvalid

STATE_ENV = "REMEDIATION_STATE_DIR"
RECORDS_ENV = "REMEDIATION_RECORDS"  # files (default) | configmaps
NAMESPACE_ENV = "REMEDIATION_NAMESPACE"  # where the ConfigMap records live (a Job: its own namespace)
JOB_ENV = "REMEDIATION_JOB_NAME"  # the Job that runs this run, written into its record
RECORD_KINDS = ("files", "configmaps")

Record = dict[str, Any]


class RecordStore(Protocol):
    """Where run records are kept. `save` takes an already redacted record and says where it went."""

    def save(self, record: Mapping[str, Any]) -> str: ...

    def where(self) -> str:
        """Where the records are, for messages."""
        ...

    def get(self, run_id: str) -> Record | None: ...

    def latest(self, runbook: str) -> Record | None: ...

    def recent(self, limit: int, runbook: str | None = None) -> list[Record]:
        """Newest first (by started_at)."""
        ...


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


def newest_first(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (str(r.get("started_at", "")), str(r.get("id", ""))), reverse=True)


class FileRecordStore:
    """runs/<run id>.json under the state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, run_id: str) -> Path:
        return self.directory / "runs" / f"{run_id}.json"

    def where(self) -> str:
        return f"{self.directory}/runs/"

    def save(self, record: Mapping[str, Any]) -> str:
        path = self.path(str(record["id"]))
        write_atomic(
            path, json.dumps(record, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"
        )
        return str(path)

    def get(self, run_id: str) -> Record | None:
        if "/" in run_id or run_id.startswith("."):
            return None  # a run id never names another file
        path = self.path(run_id)
        return _read(path) if path.exists() else None

    def latest(self, runbook: str) -> Record | None:
        found = self._all(runbook)
        return found[0] if found else None

    def recent(self, limit: int, runbook: str | None = None) -> list[Record]:
        return self._all(runbook)[:limit]

    def _all(self, runbook: str | None) -> list[Record]:
        runs = self.directory / "runs"
        if not runs.is_dir():
            return []
        records = (_read(path) for path in runs.glob("*.json"))
        return newest_first(
            [r for r in records if r is not None and (runbook is None or r.get("runbook") == runbook)]
        )


def store_from_env(
    connection: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> RecordStore | None:
    """The extra store $REMEDIATION_RECORDS selects (None: files only). Bad values are a RunbookInvalid."""
    env = os.environ if environ is None else environ
    kind = env.get(RECORDS_ENV, "").strip() or "files"
    if kind == "files":
        return None
    if kind != "configmaps":
        raise RunbookInvalid(
            [Problem(f"${RECORDS_ENV}", kind, "unknown record store", None, "use files or configmaps")]
        )
    namespace = env.get(NAMESPACE_ENV, "").strip()
    if not namespace:
        raise RunbookInvalid(
            [
                Problem(
                    f"${NAMESPACE_ENV}",
                    "(not set)",
                    f"${RECORDS_ENV}=configmaps needs the namespace that keeps the records",
                    None,
                    f"set {NAMESPACE_ENV} (a remediation Job sets it from its own namespace)",
                )
            ]
        )
    from remediation.records_cluster import ConfigMapRecordStore  # the kubernetes client only when asked

    return ConfigMapRecordStore(namespace, connection)


class Recorder:
    """Writes one run's record (the file store, plus the selected cluster store) and its audit events."""

    def __init__(
        self, directory: Path, redact: Callable[[Any], Any], store: RecordStore | None = None
    ) -> None:
        self.directory = directory
        self.redact = redact
        self.audit_path = directory / "audit.jsonl"
        self.files = FileRecordStore(directory)
        self.store = store
        self._made = False
        self._warned = False

    def record_path(self, run_id: str) -> Path:
        return self.files.path(run_id)

    def save(self, record: Mapping[str, Any]) -> Path:
        document = self.redact(dict(record))
        job = os.environ.get(JOB_ENV)
        if job:
            document["job"] = job
        path = Path(self.files.save(document))
        if self.store is not None:
            self._save_elsewhere(self.store, document)
        return path

    def _save_elsewhere(self, store: RecordStore, document: Mapping[str, Any]) -> None:
        # The file copy is already safe: a cluster that is unreachable for a moment must not end the run.
        # Each save writes the whole record, so the next successful one repairs a missed one.
        try:
            store.save(document)
        except Exception as err:  # any failure of the remote store is reported, never fatal
            if not self._warned:
                print(f"warning: run record not saved to the cluster: {err}", file=sys.stderr)
                self._warned = True
        else:
            self._warned = False

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
    store = FileRecordStore(directory)
    return store.get(run_id) if run_id is not None else store.latest(runbook)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
