"""`remediation resume RUN`: a new Job that continues a failed run from its failed step.

The new Job is the original Job's pod template (read from the cluster) with the container's arguments
changed to `run <runbook> ... --from <step> --resume-run <RUN>`: same image, runbooks, profile, secrets,
parameters and trigger. Inside it, `--resume-run` reads the earlier steps' outputs from the ConfigMap record.
Its name is derived from RUN alone, so resuming twice starts one Job (the second create is AlreadyExists).
It is created with the engineer's own credentials: the remediation ServiceAccount may not create Jobs.
It is labelled managed-by=remediation-cli, so the receiver's breaker does not count it as an automatic run.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, cast

from remediation.records import JOB_ENV, NAMESPACE_ENV, RECORDS_ENV

PREFIX = "remediation.shorts.ops"
MANAGED_BY = "remediation-cli"
# The Job controller stamps these on a Job's template and pods; a copy must not carry the old Job's.
CONTROLLER_LABELS = (
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
)
# Flags of `remediation run` that choose what runs; a resume sets its own.
_SELECTION_FLAGS = {"--from": 1, "--resume-run": 1, "--step": 1, "--escalate-only": 0}
_JOB_SPEC_KEYS = ("activeDeadlineSeconds", "ttlSecondsAfterFinished")


def resume_job_name(run_id: str, runbook: str) -> str:
    """rm-resume-<runbook>-<hash of the run id>: a DNS-1123 label (at most 63), the same for the same run."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:10]
    prefix = "rm-resume-"
    readable = re.sub(r"[^a-z0-9-]+", "-", runbook.lower()).strip("-")[: 63 - len(prefix) - 11].strip("-")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def resume_argv(argv: Sequence[str], step: str, run_id: str) -> list[str]:
    """`argv` without its step selection (--from/--step/--resume-run/--escalate-only), resuming instead."""
    kept: list[str] = []
    skip = 0
    for arg in argv:
        if skip:
            skip -= 1
            continue
        flag = arg.split("=", 1)[0]
        if flag in _SELECTION_FLAGS:
            skip = _SELECTION_FLAGS[flag] if "=" not in arg else 0
            continue
        kept.append(arg)
    return [*kept, "--from", step, "--resume-run", run_id]


def record_env() -> list[dict[str, Any]]:
    """What a remediation Job sets so its run is recorded in the cluster (and says which Job ran it)."""
    return [
        {"name": RECORDS_ENV, "value": "configmaps"},
        {"name": NAMESPACE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": JOB_ENV,
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        },
    ]


def _with_env(env: Sequence[Mapping[str, Any]], extra: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = {e["name"] for e in extra}
    return [dict(e) for e in env if e.get("name") not in names] + [dict(e) for e in extra]


def _relabel(labels: Mapping[str, str] | None) -> dict[str, str]:
    kept = {k: v for k, v in (labels or {}).items() if k not in CONTROLLER_LABELS}
    return {**kept, "app.kubernetes.io/managed-by": MANAGED_BY, f"{PREFIX}/mode": "resume"}


class NoRunContainer(ValueError):
    """The Job has no container running `remediation run`."""


def _run_container(pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    for container in pod_spec.get("containers", []):
        if "run" in [*container.get("command", []), *container.get("args", [])]:
            return cast(dict[str, Any], container)  # the template's own: edited in place
    raise NoRunContainer("it has no container that runs `remediation run`")


def build_resume_job(original: Mapping[str, Any], run_id: str, runbook: str, step: str) -> dict[str, Any]:
    """The resuming Job, from the original Job as a JSON-shaped dict (camelCase, as the API returns it)."""
    meta = original.get("metadata", {})
    spec = original.get("spec", {})
    template = copy.deepcopy(spec.get("template", {}))
    template.setdefault("metadata", {})
    template["metadata"]["labels"] = _relabel(template["metadata"].get("labels"))
    container = _run_container(template.get("spec", {}))
    if "run" in container.get("args", []):
        container["args"] = resume_argv(container["args"], step, run_id)
    else:
        container["command"] = resume_argv(container["command"], step, run_id)
    container["env"] = _with_env(container.get("env", []), record_env())
    annotations = {
        **{k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(f"{PREFIX}/")},
        f"{PREFIX}/resumes": run_id,
        f"{PREFIX}/resumes-job": str(meta.get("name", "")),
        f"{PREFIX}/from-step": step,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": resume_job_name(run_id, runbook),
            "namespace": meta.get("namespace"),
            "labels": _relabel(meta.get("labels")),
            "annotations": annotations,
        },
        "spec": {
            "backoffLimit": 0,  # as every remediation Job: the runbook owns retries
            **{k: spec[k] for k in _JOB_SPEC_KEYS if k in spec},
            "template": template,
        },
    }


def command_of(job: Mapping[str, Any]) -> list[str]:
    container = _run_container(job["spec"]["template"].get("spec", {}))
    return [*container.get("command", []), *container.get("args", [])]


def equivalent_command(record: Mapping[str, Any], step: str, namespace: str) -> str:
    """The `remediation run` command line that continues the run from here, for when no Job can."""
    env = [f"{RECORDS_ENV}=configmaps", f"{NAMESPACE_ENV}={namespace}"]
    trigger = record.get("trigger") or {}
    if isinstance(trigger, Mapping) and (trigger.get("labels") or trigger.get("annotations")):
        env.append(f"REMEDIATION_TRIGGER={json.dumps(trigger, sort_keys=True, ensure_ascii=False)}")
    argv = [
        "remediation",
        "run",
        str(record.get("runbook")),
        "--from",
        step,
        "--resume-run",
        str(record["id"]),
    ]
    for key, value in sorted((record.get("params") or {}).items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        argv += ["--param", f"{key}={text}"]
    argv += ["--profile", "PROFILE.yaml"]
    return " ".join(shlex.quote(part) for part in [*env, *argv])
