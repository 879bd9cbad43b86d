"""The remediation ServiceAccount's namespaced Role: exactly what the runbooks' actions need, nothing more.

This is the contract between infra/ and remediation/ (the executor's Kubernetes actions must need nothing
beyond it): no wildcards, no Secrets, nothing cluster-wide.
"""

from __future__ import annotations

from infra.meta import Obj

REMEDIATION = "remediation"

_RULES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("apps", "deployments", ("get", "list", "watch", "patch")),
    ("apps", "replicasets", ("get", "list", "watch")),
    ("argoproj.io", "rollouts", ("get", "list", "watch", "patch")),
    ("argoproj.io", "rollouts/status", ("patch",)),
    ("autoscaling", "horizontalpodautoscalers", ("get", "list", "patch")),
    ("", "pods", ("get", "list", "watch")),
    ("batch", "cronjobs", ("get", "list")),
    ("batch", "jobs", ("get", "list")),
    ("coordination.k8s.io", "leases", ("get", "create", "update")),
    ("", "events", ("create", "patch")),
    ("events.k8s.io", "events", ("create", "patch")),
    # Run records: one ConfigMap per run (create, then update as the run goes on; get/list to read them back
    # for `run --resume-run`). Update reaches every ConfigMap in the namespace, which is why the runbooks and
    # profile ConfigMaps are immutable (operations.py): a runbook Job can never rewrite what Jobs run.
    ("", "configmaps", ("get", "list", "create", "update")),
)


def remediation_rules() -> list[Obj]:
    return [
        {"apiGroups": [group], "resources": [resource], "verbs": list(verbs)}
        for group, resource, verbs in _RULES
    ]
