"""JobLauncher that creates the Jobs in Kubernetes and reports how they ended."""

from __future__ import annotations

import threading
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .jobs import LABEL_PREFIX, MANAGED_BY, FinishedRun, JobTemplate, LaunchRequest, LaunchResult, build_job


class LaunchError(RuntimeError):
    """The API server refused or could not take the Job (not AlreadyExists, which is a dedupe)."""


class KubernetesJobLauncher:
    def __init__(self, api: client.ApiClient, template: JobTemplate) -> None:
        self._batch = client.BatchV1Api(api)
        self.template = template
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def launch(self, request: LaunchRequest) -> LaunchResult:
        manifest = build_job(request, self.template)
        name = manifest["metadata"]["name"]
        try:
            self._batch.create_namespaced_job(self.template.namespace, cast(Any, manifest))
        except ApiException as exc:
            if exc.status == 409:
                return LaunchResult(name, created=False)
            raise LaunchError(
                f"creating Job {self.template.namespace}/{name}: {exc.status} {exc.reason}"
            ) from None
        return LaunchResult(name, created=True)

    def finished(self) -> list[FinishedRun]:
        jobs = self._batch.list_namespaced_job(
            self.template.namespace, label_selector=f"app.kubernetes.io/managed-by={MANAGED_BY}"
        )
        done: list[FinishedRun] = []
        for job in jobs.items:
            outcome = _outcome(job)
            meta = job.metadata or client.V1ObjectMeta()
            name = str(meta.name)
            if outcome is None:
                continue
            with self._lock:
                if name in self._reported:
                    continue
                self._reported.add(name)
            annotations = meta.annotations or {}
            labels = meta.labels or {}
            done.append(
                FinishedRun(
                    job_name=name,
                    guard_key=annotations.get(f"{LABEL_PREFIX}/guard-key", ""),
                    mode=labels.get(f"{LABEL_PREFIX}/mode", "run"),
                    succeeded=outcome,
                )
            )
        return done


def _outcome(job: client.V1Job) -> bool | None:
    """True: Complete, False: Failed (including the deadline), None: still running."""
    for condition in (job.status.conditions or []) if job.status else []:
        if condition.status == "True" and condition.type == "Complete":
            return True
        if condition.status == "True" and condition.type == "Failed":
            return False
    return None
