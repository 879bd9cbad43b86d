"""Which runbook an alert starts, and on which target.

Reads runbooks/*.yaml directly (only metadata.name, triggers[].alert, params keys and guards), so the
receiver does not depend on the executor's loader. The executor validates runbooks fully; a file that
does not even have these fields is skipped here with a warning naming it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .payload import Alert

log = logging.getLogger(__name__)

# Label names that identify the object an alert is about, most specific first, with the Kubernetes kind.
_KIND_LABELS = (
    ("rollout", "Rollout"),
    ("deployment", "Deployment"),
    ("horizontalpodautoscaler", "HorizontalPodAutoscaler"),
    ("cronjob", "CronJob"),
    ("statefulset", "StatefulSet"),
    ("service", "Service"),
)
_KINDS_BY_LOWER = {kind.lower(): kind for _, kind in _KIND_LABELS}
_DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")  # as schemas/runbook.schema.json
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """ "10m" -> 600.0. Durations in YAML are strings by project contract."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 100ms, 5s, 10m, 1h or 30d")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Target:
    """The object a remediation acts on. kind is "" when the alert names no object (a service-wide alert)."""

    namespace: str
    kind: str
    name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.kind.lower() or '-'}/{self.name}"

    @property
    def label_value(self) -> str:
        """A valid label value (<= 63 chars of [A-Za-z0-9._-]) that still reads like the target."""
        text = re.sub(r"[^A-Za-z0-9._-]", ".", self.key.replace("/-/", "/"))
        text = text.replace("/", ".")
        if len(text) > 63:
            text = text[:52] + "." + hashlib.sha256(self.key.encode()).hexdigest()[:10]
        return text.strip("._-") or "none"


def target_of(alert: Alert, default_namespace: str, runbook: str) -> Target:
    """The alert's `target` label (`kind/name` or `name`), else an object label, else the runbook itself."""
    labels = alert.labels
    namespace = labels.get("namespace") or default_namespace
    explicit = labels.get("target", "").strip()
    if explicit:
        kind, _, name = explicit.rpartition("/")
        return Target(namespace, _KINDS_BY_LOWER.get(kind.lower(), kind), name)
    for label, kind in _KIND_LABELS:
        if labels.get(label):
            return Target(namespace, kind, labels[label])
    # A service-wide alert (quota, certificate): one guard for the runbook in this namespace.
    return Target(namespace, "", runbook)


@dataclass(frozen=True)
class RunbookInfo:
    name: str
    file: str
    alerts: frozenset[str]
    params: frozenset[str]
    guards: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class RunbookIndex:
    runbooks: dict[str, RunbookInfo]
    by_alert: dict[str, list[str]]
    warnings: list[str]

    def runbooks_for(self, alert: Alert) -> tuple[list[str], str | None]:
        """(runbook names, problem). A `runbook` label wins over triggers; an unknown name is a problem."""
        wanted = alert.labels.get("runbook", "").strip()
        if wanted:
            if wanted in self.runbooks:
                return [wanted], None
            return [], f"runbook label {wanted!r} names no runbook in the runbooks directory"
        names = self.by_alert.get(alert.alertname, [])
        if not names:
            return [], f"no runbook has a trigger for alert {alert.alertname!r} and it has no runbook label"
        return list(names), None


def _read_one(path: Path) -> RunbookInfo:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
        raise ValueError("metadata: missing (expected a mapping with name)")
    name = doc["metadata"].get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("metadata.name: missing or not a string")
    triggers = doc.get("triggers") or []
    if not isinstance(triggers, list):
        raise ValueError("triggers: expected a list of {alert: NAME}")
    alerts = frozenset(
        t["alert"] for t in triggers if isinstance(t, dict) and isinstance(t.get("alert"), str)
    )
    params = doc.get("params") or {}
    guards = doc.get("guards") or {}
    return RunbookInfo(
        name=name,
        file=str(path),
        alerts=alerts,
        params=frozenset(params) if isinstance(params, dict) else frozenset(),
        guards=guards if isinstance(guards, dict) else {},
    )


def load_index(directory: Path) -> RunbookIndex:
    runbooks: dict[str, RunbookInfo] = {}
    warnings: list[str] = []
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for path in files:
        try:
            info = _read_one(path)
        except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as exc:
            warnings.append(f"{path}: skipped: {exc}")
            continue
        kept = runbooks.get(info.name)
        if kept is not None:
            # Two files claim one name: the file named after the runbook wins, the other is reported.
            loser = kept if path.stem == info.name else info
            winner = info if loser is kept else kept
            runbooks[info.name] = winner
            warnings.append(f"{loser.file}: metadata.name {info.name!r} already used by {winner.file}")
            continue
        runbooks[info.name] = info
    by_alert: dict[str, list[str]] = {}
    for info in runbooks.values():
        for alert in sorted(info.alerts):
            by_alert.setdefault(alert, []).append(info.name)
    for warning in warnings:
        log.warning("runbook index: %s", warning)
    return RunbookIndex(runbooks, by_alert, warnings)


def runbook_params(info: RunbookInfo, alert: Alert) -> dict[str, str]:
    """The alert's labels that the runbook declares as params: passed as --param k=v, nothing else."""
    return {k: v for k, v in sorted(alert.labels.items()) if k in info.params}
