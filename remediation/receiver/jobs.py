"""Remediation Jobs: the manifest template, a deterministic name, and the launchers that create them.

A Job runs `remediation run <runbook>` (or its escalation only) under the `remediation` ServiceAccount,
with the runbooks ConfigMap at /runbooks, the profile from a ConfigMap and secrets from a Secret.
Its run record is kept in the cluster (REMEDIATION_RECORDS=configmaps, see remediation/records_cluster.py).
backoffLimit is 0: the runbook owns retries, a failed run must count as one failure for the breaker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from remediation.resume import record_env

from .mapping import Target
from .payload import Alert

log = logging.getLogger(__name__)

MANAGED_BY = "remediation-receiver"
LABEL_PREFIX = "remediation.shorts.ops"
# Annotations that are safe and useful inside the run; anything else may hold secrets or noise.
TRIGGER_ANNOTATIONS = ("summary", "description", "runbook_url")
_SECRET_NAME = re.compile(r"(secret|token|password|passwd|credential|api[_-]?key|private)", re.IGNORECASE)


@dataclass(frozen=True)
class JobTemplate:
    namespace: str = "shorts"
    image: str = "shorts-platform/remediation:0.1.0"
    service_account: str = "remediation"
    runbooks_configmap: str = "runbooks"
    profile_configmap: str = "remediation-profile"
    profile_key: str = "profile.yaml"
    secret_name: str = "remediation-secrets"
    active_deadline_s: int = 1800
    ttl_after_finished_s: int = 86400
    # Extra Pod annotations (e.g. a mesh's sidecar opt-out); never used for the alert's data.
    pod_annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LaunchRequest:
    runbook: str
    target: Target
    alert: Alert
    params: dict[str, str]
    escalate_only: bool = False
    reason: str = ""  # why an escalation instead of a run (budget, breaker)

    @property
    def guard_key(self) -> str:
        return guard_key(self.runbook, self.target)

    @property
    def mode(self) -> str:
        return "escalate" if self.escalate_only else "run"


@dataclass(frozen=True)
class LaunchResult:
    job_name: str
    created: bool  # False: a Job of that name already existed (another replica, or a resend)


@dataclass(frozen=True)
class FinishedRun:
    job_name: str
    guard_key: str
    mode: str
    succeeded: bool


class JobLauncher(Protocol):
    def launch(self, request: LaunchRequest) -> LaunchResult: ...

    def finished(self) -> list[FinishedRun]:
        """Runs that finished since they were launched (may repeat: counting is idempotent per Job)."""
        ...


def guard_key(runbook: str, target: Target) -> str:
    return f"{runbook}|{target.key}"


def job_name(request: LaunchRequest) -> str:
    """Same (runbook, target, alert episode, mode) -> same name, so a second create is AlreadyExists."""
    identity = "|".join(
        (
            request.runbook,
            request.target.key,
            request.alert.fingerprint,
            request.alert.starts_at,
            request.mode,
        )
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    prefix = "rm-esc-" if request.escalate_only else "rm-"
    readable = (
        re.sub(r"[^a-z0-9-]+", "-", request.runbook.lower()).strip("-")[: 63 - len(prefix) - 11].strip("-")
    )
    return f"{prefix}{readable}-{digest}"


def redact_labels(values: dict[str, str]) -> dict[str, str]:
    return {k: ("[redacted]" if _SECRET_NAME.search(k) else v) for k, v in values.items()}


def trigger_json(alert: Alert) -> str:
    """The alert as the run's trigger: labels and a few known annotations, never secret-looking values."""
    annotations = {k: v for k, v in alert.annotations.items() if k in TRIGGER_ANNOTATIONS}
    return json.dumps(
        {
            "status": alert.status,
            "labels": redact_labels(alert.labels),
            "annotations": annotations,
            "startsAt": alert.starts_at,
            "fingerprint": alert.fingerprint,
            "generatorURL": alert.generator_url,
        },
        sort_keys=True,
    )


def command(request: LaunchRequest) -> list[str]:
    args = [
        "remediation", "run", request.runbook,
        "--runbooks-dir", "/runbooks",
        "--profile", "/etc/remediation/profile.yaml",
        "--yes", "--output", "json",
    ]  # fmt: skip
    if request.escalate_only:
        args.append("--escalate-only")
    for key, value in request.params.items():
        args += ["--param", f"{key}={value}"]
    return args


def build_job(request: LaunchRequest, template: JobTemplate) -> dict[str, Any]:
    """The Job manifest as a plain dict (what the API server receives; easy to assert in tests)."""
    labels = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "remediation",
        f"{LABEL_PREFIX}/runbook": request.runbook[:63],
        f"{LABEL_PREFIX}/target": request.target.label_value,
        f"{LABEL_PREFIX}/fingerprint": request.alert.fingerprint[:63],
        f"{LABEL_PREFIX}/mode": request.mode,
    }
    annotations = {
        f"{LABEL_PREFIX}/guard-key": request.guard_key,
        f"{LABEL_PREFIX}/starts-at": request.alert.starts_at,
        f"{LABEL_PREFIX}/alertname": request.alert.alertname,
    }
    if request.reason:
        annotations[f"{LABEL_PREFIX}/escalation-reason"] = request.reason
    env = [
        {"name": "REMEDIATION_TRIGGER", "value": trigger_json(request.alert)},
        # The root filesystem is read-only: the executor's local state goes to the writable /tmp volume.
        {"name": "REMEDIATION_STATE_DIR", "value": "/tmp/remediation"},
        {"name": "REMEDIATION_GUARD_KEY", "value": request.guard_key},
        # The run record goes to a ConfigMap in the Job's namespace (and names this Job), so that
        # `remediation runs` and `remediation resume` work after the pod and its /tmp are gone.
        *record_env(),
    ]
    if request.reason:
        env.append({"name": "REMEDIATION_ESCALATION_REASON", "value": request.reason})
    container = {
        "name": "remediation",
        "image": template.image,
        "command": command(request),
        "workingDir": "/tmp",
        "env": env,
        # optional: a namespace without secrets still runs the read-only checks.
        "envFrom": [{"secretRef": {"name": template.secret_name, "optional": True}}],
        "volumeMounts": [
            {"name": "runbooks", "mountPath": "/runbooks", "readOnly": True},
            {"name": "profile", "mountPath": "/etc/remediation", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(request),
            "namespace": template.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": template.active_deadline_s,
            "ttlSecondsAfterFinished": template.ttl_after_finished_s,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {**annotations, **dict(template.pod_annotations)},
                },
                "spec": {
                    "serviceAccountName": template.service_account,
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "runbooks", "configMap": {"name": template.runbooks_configmap}},
                        {
                            "name": "profile",
                            "configMap": {
                                "name": template.profile_configmap,
                                "items": [{"key": template.profile_key, "path": "profile.yaml"}],
                            },
                        },
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


@dataclass
class RecordingLauncher:
    """Keeps what would have been created; tests finish runs with `finish(name, succeeded)`."""

    template: JobTemplate = field(default_factory=JobTemplate)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[LaunchRequest] = field(default_factory=list)
    fail_with: Exception | None = None
    _finished: list[FinishedRun] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def launch(self, request: LaunchRequest) -> LaunchResult:
        if self.fail_with is not None:
            raise self.fail_with
        manifest = build_job(request, self.template)
        name = manifest["metadata"]["name"]
        with self._lock:
            if name in self.jobs:
                return LaunchResult(name, created=False)
            self.jobs[name] = manifest
            self.requests.append(request)
        return LaunchResult(name, created=True)

    def finish(self, name: str, succeeded: bool) -> None:
        request = next(r for r in self.requests if job_name(r) == name)
        with self._lock:
            self._finished.append(FinishedRun(name, request.guard_key, request.mode, succeeded))

    def finished(self) -> list[FinishedRun]:
        with self._lock:
            done, self._finished = self._finished, []
        return done


class DryRunLauncher:
    """`remediation serve --launcher log`: logs the Job it would create; nothing reaches a cluster."""

    def __init__(self, template: JobTemplate, keep: int = 10_000) -> None:
        self.template = template
        self._names: dict[str, None] = {}  # insertion-ordered, bounded: same-name launches are dedupes
        self._keep = keep
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> LaunchResult:
        manifest = build_job(request, self.template)
        name = manifest["metadata"]["name"]
        with self._lock:
            if name in self._names:
                return LaunchResult(name, created=False)
            self._names[name] = None
            if len(self._names) > self._keep:
                self._names.pop(next(iter(self._names)))
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        log.info(
            "dry run: would create Job %s/%s: %s",
            self.template.namespace,
            name,
            " ".join(container["command"]),
        )
        return LaunchResult(name, created=True)

    def finished(self) -> list[FinishedRun]:
        return []
