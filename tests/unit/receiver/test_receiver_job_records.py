"""The receiver's Jobs keep their run record in the cluster, so `remediation runs` sees them."""

from __future__ import annotations

from remediation.records import store_from_env

from .builders import Harness, make_alert, make_payload


def test_the_job_records_its_run_in_a_configmap_of_its_own_namespace(harness: Harness) -> None:
    harness.send(make_payload(make_alert()))
    job = next(iter(harness.launcher.jobs.values()))
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["REMEDIATION_RECORDS"] == {"name": "REMEDIATION_RECORDS", "value": "configmaps"}
    # from the downward API: the pod's namespace, and the Job controller's label naming the Job
    assert env["REMEDIATION_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["REMEDIATION_JOB_NAME"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }
    # the executor, given what the pod would see, selects the ConfigMap store in that namespace
    store = store_from_env(
        environ={"REMEDIATION_RECORDS": "configmaps", "REMEDIATION_NAMESPACE": "shorts"},
    )
    assert store is not None and store.where().startswith("namespace shorts")
