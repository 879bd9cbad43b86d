"""Append-only JSONL record of every alert received and what was decided for it.

One line per (alert, runbook) decision, written by the worker with the outcome. Labels only: annotations
may carry secrets or large text, and secret-looking label values are redacted as in the Job's trigger.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from .jobs import redact_labels
from .payload import Alert


class AlertLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO
        if path is None:
            self._file = sys.stdout
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def write(self, records: list[dict[str, Any]]) -> None:
        """Write one notification's records and make them durable before the next one is handled."""
        if not records:
            return
        text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
        with self._lock:
            self._file.write(text)
            self._file.flush()
            if self.path is not None:
                os.fsync(self._file.fileno())

    def close(self) -> None:
        if self.path is not None:
            self._file.close()


def record(alert: Alert, received_at: float, outcome: str, **extra: Any) -> dict[str, Any]:
    return {
        "received_at": round(received_at, 6),
        "alertname": alert.alertname,
        "status": alert.status,
        "fingerprint": alert.fingerprint,
        "startsAt": alert.starts_at,
        "labels": redact_labels(alert.labels),
        "outcome": outcome,
        **{k: v for k, v in extra.items() if v not in (None, "")},
    }
