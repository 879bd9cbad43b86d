"""Kubernetes Events that explain on the target object what the receiver did and why.

An alert storm must not become an Event storm: Events are aggregated per (target, runbook, reason) and
minute, created once and their count patched by `flush()` (called periodically), like the kubelet does.
The alert log and the metrics keep the exact per-alert record.
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .mapping import Target

log = logging.getLogger(__name__)

_API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Rollout": "argoproj.io/v1alpha1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "CronJob": "batch/v1",
    "Service": "v1",
}


@dataclass(frozen=True)
class Note:
    target: Target
    runbook: str
    reason: str  # Event reason: RemediationStarted, RemediationEscalated, RemediationSuppressed
    message: str
    warning: bool = False


class EventRecorder(Protocol):
    def record(self, note: Note) -> None: ...

    def flush(self) -> None: ...


@dataclass
class RecordingEvents:
    notes: list[Note] = field(default_factory=list)

    def record(self, note: Note) -> None:
        self.notes.append(note)

    def flush(self) -> None:
        return None


@dataclass
class _Aggregate:
    note: Note
    first: datetime
    count: int = 1
    created: bool = False
    dirty: bool = True


class KubernetesEvents:
    """core/v1 Events on the target (only targets with a known kind: a service-wide alert has no object)."""

    def __init__(self, api: client.ApiClient, component: str = "remediation-receiver") -> None:
        self._core = client.CoreV1Api(api)
        self._component = component
        self._instance = socket.gethostname()
        self._pending: dict[str, _Aggregate] = {}
        self._lock = threading.Lock()

    def record(self, note: Note) -> None:
        if note.target.kind not in _API_VERSIONS:
            return
        now = datetime.now(UTC)
        name = self._name(note, now)
        with self._lock:
            aggregate = self._pending.get(name)
            if aggregate is None:
                self._pending[name] = _Aggregate(note, now)
            else:
                aggregate.count += 1
                aggregate.dirty = True
                aggregate.note = note  # the latest detail is the most useful one

    def flush(self) -> None:
        now = datetime.now(UTC)
        with self._lock:
            dirty = [(n, a) for n, a in self._pending.items() if a.dirty]
            for _, a in dirty:
                a.dirty = False
            # An aggregate older than two minutes will never be written again.
            for name in [n for n, a in self._pending.items() if (now - a.first).total_seconds() > 120]:
                self._pending.pop(name)
        for name, aggregate in dirty:
            try:
                self._write(name, aggregate, now)
            except ApiException as exc:
                log.warning(
                    "event %s on %s: %s %s",
                    aggregate.note.reason,
                    aggregate.note.target.key,
                    exc.status,
                    exc.reason,
                )

    def _name(self, note: Note, now: datetime) -> str:
        minute = now.strftime("%Y%m%d%H%M")
        digest = hashlib.sha256(
            f"{note.target.key}|{note.runbook}|{note.reason}|{minute}|{self._instance}".encode()
        )
        readable = re.sub(r"[^a-z0-9-]+", "-", note.target.name.lower()).strip("-")[:40] or "target"
        return f"{readable}.{digest.hexdigest()[:16]}"

    def _write(self, name: str, aggregate: _Aggregate, now: datetime) -> None:
        note = aggregate.note
        message = f"runbook {note.runbook}: {note.message}"[:1000]
        if aggregate.created:
            patch = {"count": aggregate.count, "lastTimestamp": now.isoformat(), "message": message}
            self._core.patch_namespaced_event(name, note.target.namespace, patch)
            return
        body = {
            "metadata": {"name": name, "namespace": note.target.namespace},
            "involvedObject": {
                "apiVersion": _API_VERSIONS[note.target.kind],
                "kind": note.target.kind,
                "name": note.target.name,
                "namespace": note.target.namespace,
            },
            "reason": note.reason,
            "message": message,
            "type": "Warning" if note.warning else "Normal",
            "count": aggregate.count,
            "firstTimestamp": aggregate.first.isoformat(),
            "lastTimestamp": now.isoformat(),
            "source": {"component": self._component},
            "reportingComponent": self._component,
            "reportingInstance": self._instance,
        }
        self._core.create_namespaced_event(note.target.namespace, cast(Any, body))
        aggregate.created = True
