"""Operations: the namespace, the remediation identity (ServiceAccount, Role, RoleBinding), the runbooks and
the executor profile as ConfigMaps, and the scheduled checks of the manual's daily and weekly routine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra import meta
from infra.meta import Obj
from infra.rbac import REMEDIATION, remediation_rules
from infra.settings import Schedules

RUNBOOKS_DIR = Path(__file__).resolve().parent.parent / "runbooks"
RUNBOOKS_MOUNT = "/etc/shorts/runbooks"
PROFILE_MOUNT = "/etc/shorts/profile"
SECRETS_NAME = "remediation-secrets"  # created by operators, never by Pulumi: secrets stay out of the state


@dataclass(frozen=True)
class ScheduledRunbook:
    runbook: str
    schedule: str
    deadline_seconds: int


@dataclass(frozen=True)
class OperationsArgs:
    namespace: str
    schedules: Schedules
    remediation_image: str
    profile: dict[str, str]
    runbooks_dir: Path = RUNBOOKS_DIR


def scheduled_runbooks(s: Schedules) -> list[ScheduledRunbook]:
    return [
        ScheduledRunbook("morning-check", s.morning_check, 3600),  # 09:00 - 10:00
        ScheduledRunbook("afternoon-check", s.afternoon_check, 3600),
        ScheduledRunbook("evening-check", s.evening_check, 3600),
        ScheduledRunbook("weekly-db-maintenance", s.weekly_db_maintenance, 7200),  # Monday 02:00 - 04:00
    ]


def files_digest(files: dict[str, str]) -> str:
    """sha256 of a ConfigMap's data: a pod template that carries it rolls when the data changes."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def runbook_files(directory: Path) -> dict[str, str]:
    """Every runbooks/*.yaml by file name, in name order; read at run time, as the set changes."""
    if not directory.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.yaml"))}


def run_record_env() -> list[Obj]:
    """REMEDIATION_RECORDS=configmaps, its namespace and the Job's name, from the downward API.

    The remediation executor reads these (see remediation/records.py); infra and remediation share no code,
    so the names are the contract, asserted on both sides.
    """
    return [
        {"name": "REMEDIATION_RECORDS", "value": "configmaps"},
        {"name": "REMEDIATION_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {
            "name": "REMEDIATION_JOB_NAME",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}},
        },
    ]


def job_pod_spec(job: ScheduledRunbook, image: str) -> Obj:
    tmp_volume, tmp_mount = meta.tmp_volume()
    return {
        "serviceAccountName": REMEDIATION,
        "restartPolicy": "Never",
        "securityContext": meta.pod_security(),
        "containers": [
            {
                "name": "remediation",
                "image": image,
                "command": ["remediation"],
                "args": [
                    "run",
                    job.runbook,
                    "--runbooks-dir",
                    RUNBOOKS_MOUNT,
                    "--profile",
                    f"{PROFILE_MOUNT}/profile.yaml",
                    "--output",
                    "json",
                    # the root filesystem is read-only: run records go to the writable /tmp
                    "--state-dir",
                    f"{meta.TMP}/remediation-state",
                ],
                # The run record is also kept in a ConfigMap of this namespace (`remediation runs`).
                "env": run_record_env(),
                # Secrets (Slack webhook, PGPASSWORD, ...) come from the environment only.
                "envFrom": [{"secretRef": {"name": SECRETS_NAME, "optional": True}}],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "securityContext": meta.container_security(),
                "volumeMounts": [
                    tmp_mount,
                    {"name": "runbooks", "mountPath": RUNBOOKS_MOUNT, "readOnly": True},
                    {"name": "profile", "mountPath": PROFILE_MOUNT, "readOnly": True},
                ],
            }
        ],
        "volumes": [
            tmp_volume,
            {"name": "runbooks", "configMap": {"name": "runbooks"}},
            {"name": "profile", "configMap": {"name": "remediation-profile"}},
        ],
    }


def cron_job_spec(job: ScheduledRunbook, s: Schedules, image: str) -> Obj:
    return {
        "schedule": job.schedule,
        "timeZone": s.time_zone,
        "concurrencyPolicy": "Forbid",  # a check still running is never doubled
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 3,
        "jobTemplate": {
            "spec": {
                "backoffLimit": 0,  # the runbook owns its retries
                "activeDeadlineSeconds": job.deadline_seconds,
                "ttlSecondsAfterFinished": 86400,
                "template": {
                    "metadata": {"labels": meta.labels(job.runbook, "operations")},
                    "spec": job_pod_spec(job, image),
                },
            }
        },
    }


class Operations(pulumi.ComponentResource):
    def __init__(self, name: str, args: OperationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shorts:operations:Operations", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.namespace = k8s.core.v1.Namespace(
            "namespace", metadata=meta.metadata(args.namespace, None, "operations"), opts=child
        )
        self.namespace_name: pulumi.Output[str] = self.namespace.metadata.name
        ns = self.namespace_name
        self.service_account = k8s.core.v1.ServiceAccount(
            "remediation-sa", metadata=meta.metadata(REMEDIATION, ns, "operations"), opts=child
        )
        self.role = k8s.rbac.v1.Role(
            "remediation-role",
            metadata=meta.metadata(REMEDIATION, ns, "operations"),
            rules=meta.spec(remediation_rules()),
            opts=child,
        )
        self.role_binding = k8s.rbac.v1.RoleBinding(
            "remediation-rolebinding",
            metadata=meta.metadata(REMEDIATION, ns, "operations"),
            role_ref=meta.spec(
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": REMEDIATION}
            ),
            subjects=meta.spec(
                [{"kind": "ServiceAccount", "name": REMEDIATION, "namespace": args.namespace}]
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role, self.service_account]),
        )
        files = runbook_files(args.runbooks_dir)
        # The receiver reads the runbooks only at start-up: its pods carry this digest, to roll on a change.
        self.runbooks_digest = files_digest(files)
        # Immutable: the remediation Role may update ConfigMaps (its run records), never these two. A change
        # replaces the ConfigMap; its name is fixed, so the old one is deleted first.
        fixed_name = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        self.runbooks = k8s.core.v1.ConfigMap(
            "runbooks",
            metadata=meta.metadata("runbooks", ns, "operations"),
            data=files,
            immutable=True,
            opts=fixed_name,
        )
        profile = {**args.profile, "namespace": args.namespace}
        self.profile = k8s.core.v1.ConfigMap(
            "remediation-profile",
            metadata=meta.metadata("remediation-profile", ns, "operations"),
            data={"profile.yaml": yaml.safe_dump(profile, sort_keys=True)},
            immutable=True,
            opts=fixed_name,
        )
        self.cron_jobs = []
        for job in scheduled_runbooks(args.schedules):
            if f"{job.runbook}.yaml" not in files:
                pulumi.log.warn(
                    f"runbooks/{job.runbook}.yaml is missing: CronJob {job.runbook} will fail until it exists"
                )
            self.cron_jobs.append(
                k8s.batch.v1.CronJob(
                    job.runbook,
                    metadata=meta.metadata(job.runbook, ns, "operations"),
                    spec=meta.spec(cron_job_spec(job, args.schedules, args.remediation_image)),
                    opts=pulumi.ResourceOptions(
                        parent=self, depends_on=[self.role_binding, self.runbooks, self.profile]
                    ),
                )
            )
        self.register_outputs(
            {
                "namespace": ns,
                "serviceAccount": self.service_account.metadata.name,
                "role": self.role.metadata.name,
                "runbooks": sorted(files),
                "cronJobs": [c.metadata.name for c in self.cron_jobs],
            }
        )
