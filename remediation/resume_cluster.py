"""`remediation resume RUN` against the cluster: read the record and the original Job, create the new Job.

The messages are the user interface here: each says what happened and what to do next.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from remediation.records_cluster import TRANSPORT_ERRORS, ConfigMapRecordStore, k8s, request
from remediation.resume import NoRunContainer, build_resume_job, command_of, equivalent_command
from remediation.runs import NotResumable, resume_step

EXIT_OK, EXIT_FAILED = 0, 1


def _say(text: str) -> None:
    print(text, flush=True)


def resume(
    store: ConfigMapRecordStore, run_id: str, from_step: str | None, confirm: Callable[[str], bool]
) -> int:
    record = store.get(run_id)
    if record is None:
        raise NotResumable(
            f"no run {run_id!r} is recorded in {store.where()}; "
            f"`remediation runs --namespace {store.namespace}` lists the recorded runs"
        )
    step = resume_step(record, from_step)
    ns, runbook = store.namespace, str(record.get("runbook"))
    original_name = record.get("job")
    if not original_name:
        return _by_hand(
            f"run {run_id} did not run in a Job (it ran on {record.get('host', '?')})", record, step, ns
        )
    original = _read_job(store, str(original_name))
    if original is None:
        return _by_hand(
            f"Job {ns}/{original_name}, which ran {run_id}, is gone (deleted, or removed by its "
            "ttlSecondsAfterFinished), so there is no pod template to copy",
            record,
            step,
            ns,
        )
    try:
        job = build_resume_job(original, run_id, runbook, step)
    except NoRunContainer as err:
        return _by_hand(f"Job {ns}/{original_name} cannot be copied: {err}", record, step, ns)
    name = job["metadata"]["name"]
    command = " ".join(command_of(job))
    if not confirm(f"Create Job {ns}/{name} to continue run {run_id} from step {step!r}?\n  {command}\n"):
        _say("not created")
        return EXIT_FAILED
    created = _create_job(store, job)
    if created:
        _say(f"created Job {ns}/{name}: continues run {run_id} from step {step!r}")
        _say(f"  {command}")
    else:
        _say(f"Job {ns}/{name} already exists: run {run_id} was resumed before; no new Job was created")
    _say(f"follow it:  kubectl -n {ns} logs -f job/{name}")
    _say(f"its record: remediation runs --namespace {ns} --runbook {runbook}")
    return EXIT_OK


def _by_hand(why: str, record: dict[str, Any], step: str, namespace: str) -> int:
    print(f"cannot create a Job: {why}.", file=sys.stderr)
    print("Continue it from a shell with the same runbooks and a profile for this cluster:", file=sys.stderr)
    print(f"  {equivalent_command(record, step, namespace)}", file=sys.stderr)
    return EXIT_FAILED


def _jobs_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    return f"{path}/{name}" if name else path


def _read_job(store: ConfigMapRecordStore, name: str) -> dict[str, Any] | None:
    try:
        return request(store.api(), "GET", _jobs_path(store.namespace, name))
    except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
        if isinstance(exc, k8s.ApiException) and exc.status == 404:
            return None
        raise store.error_for(f"reading Job {name}", exc) from None


def _create_job(store: ConfigMapRecordStore, job: dict[str, Any]) -> bool:
    """True: created; False: a Job of that name exists already."""
    try:
        request(store.api(), "POST", _jobs_path(store.namespace), body=job)
    except (k8s.ApiException, *TRANSPORT_ERRORS) as exc:
        if isinstance(exc, k8s.ApiException) and exc.status == 409:
            return False
        raise store.error_for(f"creating Job {job['metadata']['name']}", exc) from None
    return True
