"""Run records kept in the cluster: `remediation run` writes a ConfigMap per run, `remediation runs` lists
them, `remediation resume RUN` creates the Job that continues a failed run, against the local control plane.

The executor runs as the `remediation` ServiceAccount, with its own token and the Role the Pulumi program
declares (infra.rbac.remediation_rules()). The engineer who resumes uses the admin kubeconfig: the
ServiceAccount may not create Jobs. Kwok runs no containers, so a resumed Job's pod never executes: the
tests assert the Job object, and run its command line locally, with the same environment the Job sets, to
prove that the resumed run reads the earlier outputs from the ConfigMap record and finishes from the
failed step.

The runbook restarts a Deployment, then checks that a CronJob succeeded within the hour (it has never run,
so the check fails and the run aborts), then announces the restart's own output.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from infra.rbac import remediation_rules
from remediation.receiver.jobs import JobTemplate, LaunchRequest, build_job
from remediation.receiver.mapping import Target
from remediation.receiver.payload import Alert
from tests.e2e.conftest import (
    PROJECT_DIR,
    Cluster,
    bound_service_account_token,
    write_token_kubeconfig,
)
from tests.e2e.test_cluster_actions import deployment

pytestmark = pytest.mark.e2e

CLI = PROJECT_DIR / ".venv" / "bin" / "remediation"
RECORD_SELECTOR = "remediation.shorts.ops/record=run"
RUNBOOK = """
apiVersion: shorts.ops/v1
kind: Runbook
metadata:
  name: records-demo
  title: Restart, then check the nightly CronJob
  severity: P3
  description: A restart whose follow-up check fails until the nightly CronJob has succeeded.
params:
  namespace: {type: string, description: where the objects are}
guards: {cooldown: 1s, budget: {runs: 50, per: 1h}}
steps:
  - id: restart
    action: kubernetes.restart
    with: {kind: Deployment, name: api, namespace: "${params.namespace}"}
  - id: check
    action: kubernetes.cronjob_last_success
    with: {name: nightly, namespace: "${params.namespace}", max_age: 1h}
  - id: announce
    action: manual.approve
    with: {prompt: "api restarted at ${steps.restart.output.restarted_at}"}
"""


@dataclass
class Site:
    """A namespace set up as the Pulumi program sets up `shorts`, seen from a shell."""

    namespace: str
    admin: client.ApiClient
    admin_kubeconfig: Path
    sa_kubeconfig: Path
    sa_token: str
    runbooks: Path
    profile: Path
    state: Path

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """`remediation ARGS` in a clean environment: no inherited kubeconfig or remediation settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "REMEDIATION_"))}
        base.update(KUBECONFIG=str(self.state / "no-kubeconfig"), REMEDIATION_STATE_DIR=str(self.state))
        return subprocess.run(
            [str(CLI), *args],
            env={**base, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def resume(self, run_id: str) -> subprocess.CompletedProcess[str]:
        """`remediation resume RUN` as the engineer (admin credentials), without a terminal: --yes."""
        return self.cli(
            "resume",
            run_id,
            "--namespace",
            self.namespace,
            "--kubeconfig",
            str(self.admin_kubeconfig),
            "--yes",
        )

    def records_env(self, job: str | None = None) -> dict[str, str]:
        """What a remediation Job's environment holds (the downward API's values, written out)."""
        env = {"REMEDIATION_RECORDS": "configmaps", "REMEDIATION_NAMESPACE": self.namespace}
        return {**env, "REMEDIATION_JOB_NAME": job} if job else env

    def run(self, *extra: str, job: str | None = None) -> tuple[int, dict[str, Any]]:
        done = self.cli(
            "run", "records-demo", "--runbooks-dir", str(self.runbooks), "--profile", str(self.profile),
            "--param", f"namespace={self.namespace}", "--yes", "--output", "json", *extra,
            env=self.records_env(job),
        )  # fmt: skip
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout)

    def record_configmaps(self) -> list[client.V1ConfigMap]:
        core = client.CoreV1Api(self.admin)
        return list(core.list_namespaced_config_map(self.namespace, label_selector=RECORD_SELECTOR).items)

    def record(self, run_id: str) -> dict[str, Any]:
        (found,) = [
            json.loads(cm.data["record.json"])
            for cm in self.record_configmaps()
            if cm.metadata.annotations["remediation.shorts.ops/run-id"] == run_id
        ]
        return dict(found)

    def jobs(self) -> dict[str, client.V1Job]:
        listed = client.BatchV1Api(self.admin).list_namespaced_job(self.namespace).items
        return {job.metadata.name: job for job in listed}

    def cronjob_succeeded_now(self) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        client.BatchV1Api(self.admin).patch_namespaced_cron_job_status(
            "nightly", self.namespace, {"status": {"lastSuccessfulTime": now}}
        )

    def restarted_at(self) -> str | None:
        template = (
            client.AppsV1Api(self.admin).read_namespaced_deployment("api", self.namespace).spec.template
        )
        return (template.metadata.annotations or {}).get("kubectl.kubernetes.io/restartedAt")


@pytest.fixture
def site(cluster: Cluster, k8s: client.ApiClient, namespace: str, tmp_path: Path) -> Site:
    token = bound_service_account_token(k8s, namespace, "remediation", remediation_rules())
    sa_kubeconfig = write_token_kubeconfig(k8s, token, tmp_path / "remediation.kubeconfig")
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "records-demo.yaml").write_text(RUNBOOK)
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump({"kubeconfig": str(sa_kubeconfig), "namespace": namespace}))
    client.AppsV1Api(k8s).create_namespaced_deployment(namespace, deployment("api", 1))
    client.BatchV1Api(k8s).create_namespaced_cron_job(namespace, {
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 1 1 *", "suspend": True,
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "backup", "image": "registry.invalid/backup:1.0"}],
            }}}},
        },
    })  # fmt: skip
    return Site(
        namespace, k8s, cluster.kubeconfig, sa_kubeconfig, token, runbooks, profile, tmp_path / "state"
    )


def receiver_job(site: Site) -> str:
    """A Job exactly as the receiver creates it (its template, its env), for an APIHealthCheckFailed alert."""
    alert = Alert(
        "firing", {"alertname": "NightlyStale", "service": "api"}, {}, "2026-11-26T08:00:00Z", "", "f00dfeed"
    )
    request = LaunchRequest(
        "records-demo", Target(site.namespace, "Deployment", "api"), alert, {"namespace": site.namespace}
    )
    manifest = build_job(request, JobTemplate(namespace=site.namespace))
    client.BatchV1Api(site.admin).create_namespaced_job(site.namespace, manifest)
    return str(manifest["metadata"]["name"])


def failed_run(site: Site, job: str | None = None) -> dict[str, Any]:
    code, result = site.run(job=job)
    assert (code, result["outcome"]) == (1, "failed"), result
    assert [(s["id"], s["outcome"]) for s in result["steps"]] == [("restart", "success"), ("check", "failed")]
    return result


# ---- (1) a failed run leaves its record in the cluster, and `runs` lists it ----------------------------


def test_a_failed_run_leaves_a_configmap_record_that_runs_lists(site: Site) -> None:
    job = receiver_job(site)
    result = failed_run(site, job=job)

    (configmap,) = site.record_configmaps()
    meta = configmap.metadata
    assert meta.name == f"run-{result['id'].lower()}"
    assert meta.labels == {
        "app.kubernetes.io/part-of": "shorts-remediation",
        "remediation.shorts.ops/record": "run",
        "remediation.shorts.ops/runbook": "records-demo",
        "remediation.shorts.ops/outcome": "failed",
    }
    assert meta.annotations["remediation.shorts.ops/job"] == job
    record = json.loads(configmap.data["record.json"])
    assert (record["id"], record["outcome"], record["job"]) == (result["id"], "failed", job)
    assert [(s["id"], s["outcome"]) for s in record["steps"]] == [("restart", "success"), ("check", "failed")]
    assert "never succeeded" in record["steps"][1]["error"]
    # the restart's output is in the record: what a resumed run needs
    assert record["steps"][0]["output"]["restarted_at"] == site.restarted_at()

    # listed with the ServiceAccount's own credentials: the Role's get/list suffice
    listed = site.cli("runs", "--namespace", site.namespace, "--kubeconfig", str(site.sa_kubeconfig))
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["RUN", "RUNBOOK", "OUTCOME", "STARTED", "DURATION", "FAILED", "STEP", "JOB"]
    cells = row.split()
    assert cells[:3] == [result["id"], "records-demo", "failed"]
    assert cells[-2:] == ["check", job]

    as_json = site.cli("runs", "--namespace", site.namespace, "--kubeconfig", str(site.sa_kubeconfig),
                       "--output", "json")  # fmt: skip
    (summary,) = json.loads(as_json.stdout)
    assert (summary["run"], summary["outcome"], summary["failed_step"], summary["job"]) == (
        result["id"], "failed", "check", job
    )  # fmt: skip


def test_runs_says_where_it_looked_when_the_cluster_cannot_be_reached(site: Site) -> None:
    dead = site.state / "dead.kubeconfig"
    config = yaml.safe_load(site.sa_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"  # nothing listens there
    dead.parent.mkdir(parents=True, exist_ok=True)
    dead.write_text(yaml.safe_dump(config))
    done = site.cli("runs", "--namespace", site.namespace, "--kubeconfig", str(dead))
    assert done.returncode == 1
    assert "cannot reach the Kubernetes API" in done.stderr
    assert f"namespace {site.namespace}" in done.stderr and str(dead) in done.stderr
    assert "Traceback" not in done.stderr
    missing = site.cli("runs", "--namespace", site.namespace, "--kubeconfig", str(site.state / "nope"))
    assert missing.returncode == 2 and "--kubeconfig" in missing.stderr and "no such file" in missing.stderr


# ---- (2) resume creates one Job that continues from the failed step ----------------------------------


def test_resume_creates_one_job_from_the_failed_step_and_a_second_resume_none(site: Site) -> None:
    job = receiver_job(site)
    run_id = failed_run(site, job=job)["id"]
    before = set(site.jobs())

    first = site.resume(run_id)
    assert first.returncode == 0, first.stderr
    (created,) = set(site.jobs()) - before
    assert f"created Job {site.namespace}/{created}" in first.stdout
    assert f"kubectl -n {site.namespace} logs -f job/{created}" in first.stdout

    resumed = site.jobs()[created]
    original = site.jobs()[job]
    (container,) = resumed.spec.template.spec.containers
    (was,) = original.spec.template.spec.containers
    assert container.command == [*was.command, "--from", "check", "--resume-run", run_id]
    assert container.image == was.image and resumed.spec.template.spec.service_account_name == "remediation"
    env = {e.name: e for e in container.env}
    assert env["REMEDIATION_TRIGGER"].value == {e.name: e for e in was.env}["REMEDIATION_TRIGGER"].value
    assert env["REMEDIATION_RECORDS"].value == "configmaps"
    assert env["REMEDIATION_NAMESPACE"].value_from.field_ref.field_path == "metadata.namespace"
    assert resumed.metadata.labels["app.kubernetes.io/managed-by"] == "remediation-cli"  # not the breaker's
    assert resumed.metadata.annotations["remediation.shorts.ops/resumes"] == run_id
    assert resumed.spec.backoff_limit == 0

    second = site.resume(run_id)
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    assert set(site.jobs()) == before | {created}

    # What the Job's pod would do (kwok runs no containers): its own command line, with its environment,
    # after the failure was fixed. It reads the restart's output from the ConfigMap record.
    site.cronjob_succeeded_now()
    restarted = site.restarted_at()
    argv = [a.replace("/runbooks", str(site.runbooks)) for a in container.command[1:]]
    argv = [str(site.profile) if a == "/etc/remediation/profile.yaml" else a for a in argv]
    site.state.joinpath("fresh").mkdir(parents=True)  # a new pod: nothing on its disk from the first run
    done = site.cli(*argv, env={
        **site.records_env(job=created),
        "REMEDIATION_TRIGGER": env["REMEDIATION_TRIGGER"].value,
        "REMEDIATION_STATE_DIR": str(site.state / "fresh"),
    })  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [(s["id"], s["outcome"]) for s in result["steps"]] == [
        ("check", "success"),
        ("announce", "success"),
    ]
    assert site.restarted_at() == restarted  # the restart that had succeeded did not run again
    record = site.record(result["id"])
    assert (record["outcome"], record["job"], record["mode"]) == (
        "success",
        created,
        {"kind": "from", "step": "check"},
    )
    assert record["steps"][1]["params"]["prompt"] == f"api restarted at {restarted}"

    listed = site.cli("runs", "--namespace", site.namespace, "--kubeconfig", str(site.sa_kubeconfig))
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[2]) for r in rows] == [(result["id"], "success"), (run_id, "failed")]  # newest first


def test_resume_without_the_original_job_prints_the_command_instead(site: Site) -> None:
    run_id = failed_run(site, job="rm-records-demo-gone")["id"]  # its Job was removed after its TTL
    before = set(site.jobs())
    done = site.resume(run_id)
    assert done.returncode == 1
    assert f"Job {site.namespace}/rm-records-demo-gone, which ran {run_id}, is gone" in done.stderr
    assert f"remediation run records-demo --from check --resume-run {run_id}" in done.stderr
    assert set(site.jobs()) == before


# ---- (3) nothing to resume ----------------------------------------------------------------------------


def test_resume_refuses_a_run_that_succeeded_and_a_run_it_does_not_know(site: Site) -> None:
    site.cronjob_succeeded_now()
    code, result = site.run()
    assert (code, result["outcome"]) == (0, "success")
    before = set(site.jobs())

    done = site.resume(result["id"])
    assert done.returncode == 2
    assert f"run {result['id']} succeeded: there is nothing to resume" in done.stderr
    unknown = site.cli("resume", "20261126T000000Z-records-demo-abcdef", "--namespace", site.namespace,
                       "--kubeconfig", str(site.admin_kubeconfig), "--yes")  # fmt: skip
    assert unknown.returncode == 2
    assert "no run '20261126T000000Z-records-demo-abcdef' is recorded" in unknown.stderr
    assert set(site.jobs()) == before


# ---- (4) the Role's update on ConfigMaps cannot rewrite what Jobs run --------------------------------


def test_the_remediation_token_cannot_rewrite_the_immutable_runbooks(site: Site, cluster: Cluster) -> None:
    core = client.CoreV1Api(site.admin)
    core.create_namespaced_config_map(site.namespace, {
        "metadata": {"name": "runbooks"}, "immutable": True, "data": {"records-demo.yaml": RUNBOOK},
    })  # fmt: skip
    as_sa = client.CoreV1Api(cluster.token_client(site.sa_token))
    current = as_sa.read_namespaced_config_map("runbooks", site.namespace)  # get: allowed
    current.data["records-demo.yaml"] = "steps: [{id: x, action: redis.flush, with: {all: true}}]\n"
    with pytest.raises(ApiException) as refused:
        as_sa.replace_namespaced_config_map("runbooks", site.namespace, current)
    assert refused.value.status == 422
    assert "field is immutable when `immutable` is set" in refused.value.body
    with pytest.raises(ApiException) as forbidden:  # and it cannot delete and re-create it either
        as_sa.delete_namespaced_config_map("runbooks", site.namespace)
    assert forbidden.value.status == 403
    assert core.read_namespaced_config_map("runbooks", site.namespace).data == {"records-demo.yaml": RUNBOOK}
    # while a mutable ConfigMap (a run record) is its to update
    record = as_sa.create_namespaced_config_map(
        site.namespace, {"metadata": {"name": "run-x"}, "data": {"a": "1"}}
    )
    record.data = {"a": "2"}
    assert as_sa.replace_namespaced_config_map("run-x", site.namespace, record).data == {"a": "2"}


def test_a_record_written_by_someone_else_meanwhile_is_read_again_and_overwritten(site: Site) -> None:
    """Create, then update with the resourceVersion last seen; a conflict (409) reads the record again."""
    from remediation.records_cluster import ConfigMapRecordStore

    mine = ConfigMapRecordStore(site.namespace, {"kubeconfig": str(site.sa_kubeconfig)})
    other = ConfigMapRecordStore(site.namespace, {"kubeconfig": str(site.sa_kubeconfig)})
    run = {"id": "20261126T090000Z-records-demo-c0ffee", "runbook": "records-demo", "steps": []}
    mine.save({**run, "started_at": "1"})  # created
    other.save({**run, "started_at": "2"})  # AlreadyExists: it reads the version, then replaces
    mine.save({**run, "started_at": "3", "outcome": "failed"})  # its version is stale now: 409, read, replace
    assert site.record(run["id"])["started_at"] == "3"
    (configmap,) = site.record_configmaps()
    assert configmap.metadata.labels["remediation.shorts.ops/outcome"] == "failed"
    assert mine.get(run["id"]) == {**run, "started_at": "3", "outcome": "failed"}
    assert mine.get("20261126T090000Z-records-demo-000000") is None
