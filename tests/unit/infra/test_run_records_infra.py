"""Run records in the cluster, the infra side: what the remediation Role may do with ConfigMaps, the two
ConfigMaps it must not be able to rewrite, and the CronJobs' Jobs recording their runs there."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from infra import evaluate as evaluate_module
from infra.evaluate import Evaluation, evaluate
from infra.operations import RUNBOOKS_DIR, files_digest, runbook_files
from infra.receiver import RUNBOOKS_DIGEST_ANNOTATION

# The names the executor reads (remediation/records.py); infra and remediation share no code.
RECORD_ENV = [
    {"name": "REMEDIATION_RECORDS", "value": "configmaps"},
    {"name": "REMEDIATION_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {
        "name": "REMEDIATION_JOB_NAME",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
    },
]


def test_the_role_may_keep_records_in_configmaps_but_not_delete_them(evaluation: Evaluation) -> None:
    role = evaluation.named("Role", "remediation").inputs
    configmaps = [r for r in role["rules"] if "configmaps" in r["resources"]]
    assert configmaps == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update"]}
    ]
    assert not any("secrets" in r["resources"] for r in role["rules"])


def test_every_configmap_the_program_declares_is_immutable(evaluation: Evaluation) -> None:
    """The Role's `update` on configmaps must reach only run records: never the runbooks, the profile or the
    service's own policy. The API server refuses every change to the data of an immutable ConfigMap
    (tests/e2e/test_run_records.py sends one)."""
    declared = {c.name: c.inputs.get("immutable") for c in evaluation.of_kind("ConfigMap")}
    assert {"runbooks", "remediation-profile", "app-policy"} <= set(declared)
    assert declared == dict.fromkeys(declared, True)


def test_scheduled_jobs_record_their_runs_in_the_cluster(evaluation: Evaluation) -> None:
    for cron in evaluation.of_kind("CronJob"):
        pod = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["env"] == RECORD_ENV, cron.name


class _OptionsMonitor(evaluate_module._CapturingMonitor):
    """Also keeps each registration's deleteBeforeReplace option (the captured inputs do not hold it)."""

    seen: ClassVar[dict[str, bool]] = {}

    def RegisterResource(self, request: Any) -> Any:
        _OptionsMonitor.seen[f"{request.type}::{request.name}"] = bool(request.deleteBeforeReplace)
        return super().RegisterResource(request)


def test_changed_runbooks_replace_the_configmap_deleting_the_old_one_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Immutable data changes by replacement; the names are fixed, so the old object must go first."""
    monkeypatch.setattr(evaluate_module, "_CapturingMonitor", _OptionsMonitor)
    _OptionsMonitor.seen = {}
    evaluate("local")
    assert _OptionsMonitor.seen["kubernetes:core/v1:ConfigMap::runbooks"] is True
    assert _OptionsMonitor.seen["kubernetes:core/v1:ConfigMap::remediation-profile"] is True
    assert _OptionsMonitor.seen["kubernetes:core/v1:ConfigMap::app-policy"] is True
    # an option the monitor really reads: a resource that is not replaced this way says False
    assert _OptionsMonitor.seen["kubernetes:rbac.authorization.k8s.io/v1:Role::remediation-role"] is False


def test_the_receiver_rolls_when_the_runbooks_change(evaluation: Evaluation) -> None:
    """A changed runbook set replaces the immutable ConfigMap under the same name; the receiver reads runbooks
    only at start-up, so its pod template carries their digest, and a new digest is a new rollout."""
    receiver = next(d for d in evaluation.of_kind("Deployment") if "receiver" in d.name)
    annotations = receiver.inputs["spec"]["template"]["metadata"]["annotations"]
    runbooks = evaluation.named("ConfigMap", "runbooks").inputs["data"]
    assert annotations[RUNBOOKS_DIGEST_ANNOTATION] == files_digest(runbooks)
    assert files_digest(runbooks) == files_digest(runbook_files(RUNBOOKS_DIR))
    changed = {**runbooks, "api-restart.yaml": runbooks["api-restart.yaml"] + "\n# changed\n"}
    assert files_digest(changed) != files_digest(runbooks)
