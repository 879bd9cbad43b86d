"""Run records beyond the file: the RecordStore selection, ConfigMap naming and contents, which step a
failed run failed at, the `runs` table, and the Job `resume` builds (pure logic; the cluster side is
proven in tests/e2e/test_run_records.py against the real API server)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediation.cli import main
from remediation.errors import RunbookInvalid
from remediation.executor import Executor
from remediation.receiver.jobs import JobTemplate, LaunchRequest, build_job
from remediation.receiver.mapping import Target
from remediation.receiver.payload import Alert
from remediation.records import FileRecordStore, store_from_env
from remediation.records_cluster import ConfigMapRecordStore, configmap_body, configmap_name, fit, label_value
from remediation.resume import build_resume_job, command_of, equivalent_command, resume_argv, resume_job_name
from remediation.runs import NotResumable, failed_step, format_seconds, resume_step, summary, table

from .conftest import Script, make_registry
from .helpers import build, write

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
RUN_ID = "20261126T084335Z-api-restart-0a1b2c"


def step(id_: str, outcome: str, transition: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "outcome": outcome, **({"transition": transition} if transition else {}), **extra}


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": RUN_ID,
        "runbook": "api-restart",
        "mode": {"kind": "run"},
        "started_at": "2026-11-26T08:43:35.120Z",
        "params": {"namespace": "shorts", "rollout": "api"},
        "trigger": {"labels": {"alertname": "APIHealthCheckFailed"}, "annotations": {}},
        "steps": [],
    }
    return {**base, **fields}


# ---- naming ---------------------------------------------------------------------------------------


def test_a_run_id_becomes_a_valid_configmap_name() -> None:
    assert configmap_name(RUN_ID) == "run-20261126t084335z-api-restart-0a1b2c"
    odd = configmap_name("Run_ID with spaces/and slashes")
    assert DNS_SUBDOMAIN.match(odd) and odd != configmap_name("run_id with spaces/and slashes")
    long = configmap_name("x" * 400)
    assert len(long) <= 253 and DNS_SUBDOMAIN.match(long)


def test_label_values_stay_valid() -> None:
    assert label_value("api-restart") == "api-restart"
    assert LABEL_VALUE.match(label_value("-a b/c" + "x" * 80 + "-"))
    assert len(label_value("y" * 80)) == 63


def test_the_configmap_carries_the_contract_labels_and_the_record() -> None:
    body = configmap_body(record(outcome="failed", job="rm-api-restart-1234567890"), "shorts")
    assert body["metadata"]["labels"] == {
        "app.kubernetes.io/part-of": "shorts-remediation",
        "remediation.shorts.ops/record": "run",
        "remediation.shorts.ops/runbook": "api-restart",
        "remediation.shorts.ops/outcome": "failed",
    }
    assert body["metadata"]["annotations"] == {
        "remediation.shorts.ops/run-id": RUN_ID,
        "remediation.shorts.ops/job": "rm-api-restart-1234567890",
    }
    assert json.loads(body["data"]["record.json"])["id"] == RUN_ID
    unfinished = configmap_body(record(), "shorts")
    assert unfinished["metadata"]["labels"]["remediation.shorts.ops/outcome"] == "running"


def test_an_oversized_record_drops_step_outputs_to_fit_a_configmap() -> None:
    big = record(steps=[step("dump", "success", output={"body": "x" * 1_200_000})])
    text = fit(big)
    assert len(text.encode()) < 1_000_000
    slim = json.loads(text)
    assert slim["truncated"] is True and slim["steps"][0]["id"] == "dump"
    assert "too large" in slim["steps"][0]["output"]["omitted"]
    assert json.loads(fit(record()))["id"] == RUN_ID and "truncated" not in json.loads(fit(record()))


# ---- choosing the step to resume at -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([step("a", "success"), step("b", "failed", "abort")], "b"),
        ([step("a", "failed", "next"), step("b", "failed", "escalate")], "b"),  # a's failure was handled
        ([step("a", "failed", "c"), step("c", "success")], None),  # jumped to a fix-up step: handled
        ([step("a", "failed", "continue"), step("b", "success")], "a"),  # counted: the run failed there
        ([step("a", "success"), step("b", "failed")], "b"),  # cut short by the run's timeout
        ([step("a", "success"), step("b", "skipped")], None),
    ],
)
def test_the_failed_step_is_the_first_failure_that_counted(steps: list[Any], expected: str | None) -> None:
    assert failed_step(record(steps=steps)) == expected


def test_resume_refuses_what_it_cannot_continue() -> None:
    with pytest.raises(NotResumable, match="succeeded: there is nothing to resume"):
        resume_step(record(outcome="success"))
    with pytest.raises(NotResumable, match="refused by a guard"):
        resume_step(record(outcome="refused", reason="cooldown"))
    with pytest.raises(NotResumable, match=r"ran only step 'b' \(--step\)"):
        resume_step(record(outcome="failed", mode={"kind": "step", "step": "b"}, steps=[step("b", "failed")]))
    killed = record(steps=[step("restart", "success", "next")])  # no outcome: its pod was killed
    with pytest.raises(NotResumable, match=r"it stopped after step 'restart'; choose .* --from STEP"):
        resume_step(killed)
    assert resume_step(killed, "wait-ready") == "wait-ready"
    assert resume_step(record(outcome="escalated", steps=[step("verify", "failed", "escalate")])) == "verify"


# ---- the `runs` table ------------------------------------------------------------------------------


def test_the_table_has_one_aligned_row_per_run() -> None:
    rows = [
        summary(
            record(
                outcome="failed",
                finished_at="2026-11-26T08:45:05.620Z",
                steps=[step("restart", "failed", "escalate")],
                job="rm-api-restart-1234567890",
            )
        ),
        summary(record(id="20261126T080000Z-morning-check-ffffff", runbook="morning-check")),
    ]
    lines = table(rows).splitlines()
    column = lines[0].index("RUNBOOK")
    assert column == len(rows[1]["run"]) + 2  # the widest RUN, then two spaces
    assert (lines[1][column:].split()[0], lines[2][column:].split()[0]) == ("api-restart", "morning-check")
    assert lines[1].split() == [RUN_ID, "api-restart", "failed", "2026-11-26", "08:43:35", "1m30s", "restart",
                                "rm-api-restart-1234567890"]  # fmt: skip
    assert lines[2].split()[2:] == ["unfinished", "2026-11-26", "08:43:35", "-", "-", "-"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (0.25, "0.2s"), (59.94, "59.9s"), (90.5, "1m30s"), (3725, "1h02m")]
)
def test_durations_read_naturally(seconds: float | None, text: str) -> None:
    assert format_seconds(seconds) == text


# ---- the Job `resume` creates -----------------------------------------------------------------------


def receiver_job() -> dict[str, Any]:
    """A Job as the receiver creates it, as the API server hands it back (controller labels added)."""
    alert = Alert("firing", {"alertname": "APIHealthCheckFailed"}, {}, "2026-11-26T08:40:00Z", "", "abc123")
    request = LaunchRequest("api-restart", Target("shorts", "Rollout", "api"), alert, {"rollout": "api"})
    job = build_job(request, JobTemplate())
    stamped = {
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "x",
        "job-name": "x",
    }
    job["metadata"]["labels"].update(stamped)
    job["spec"]["template"]["metadata"]["labels"].update(stamped)
    job["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}}
    job["status"] = {"failed": 1}
    return job


def test_the_resume_job_is_the_original_with_the_run_continued_from_the_step() -> None:
    original = receiver_job()
    job = build_resume_job(original, RUN_ID, "api-restart", "wait-ready")
    assert job["metadata"]["name"] == resume_job_name(RUN_ID, "api-restart")
    assert DNS_LABEL.match(job["metadata"]["name"]) and len(job["metadata"]["name"]) <= 63
    assert command_of(job) == [*command_of(original), "--from", "wait-ready", "--resume-run", RUN_ID]
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert not {"job-name", "batch.kubernetes.io/job-name", "batch.kubernetes.io/controller-uid"} & set(
            labels
        )
        assert (
            labels["app.kubernetes.io/managed-by"] == "remediation-cli"
        )  # the receiver's breaker ignores it
        assert labels["remediation.shorts.ops/mode"] == "resume"
    assert "selector" not in job["spec"] and "status" not in job
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["activeDeadlineSeconds"] == 1800
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (was,) = original["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REMEDIATION_TRIGGER"] == {e["name"]: e for e in was["env"]}["REMEDIATION_TRIGGER"]
    assert env["REMEDIATION_RECORDS"] == {"name": "REMEDIATION_RECORDS", "value": "configmaps"}
    assert len(container["env"]) == len(was["env"])  # replaced, not doubled
    assert job["metadata"]["annotations"]["remediation.shorts.ops/resumes"] == RUN_ID
    assert original["spec"]["template"]["metadata"]["labels"]["job-name"] == "x"  # the original is untouched


def test_resuming_a_resumed_run_replaces_its_step_selection() -> None:
    argv = ["remediation", "run", "r", "--from", "a", "--resume-run", "R1", "--yes", "--param", "from=x"]
    assert resume_argv(argv, "b", "R2") == [
        "remediation", "run", "r", "--yes", "--param", "from=x", "--from", "b", "--resume-run", "R2",
    ]  # fmt: skip
    assert resume_argv(["run", "r", "--step=c", "--escalate-only"], "c", "R") == [
        "run", "r", "--from", "c", "--resume-run", "R",
    ]  # fmt: skip


def test_a_cronjobs_job_keeps_its_command_and_changes_its_args() -> None:
    container = {"name": "remediation", "command": ["remediation"], "args": ["run", "morning-check", "--yes"]}
    original = {"metadata": {"name": "morning-check-29123", "namespace": "shorts"},
                "spec": {"template": {"spec": {"containers": [container]}}}}  # fmt: skip
    job = build_resume_job(original, RUN_ID, "morning-check", "db")
    (resumed,) = job["spec"]["template"]["spec"]["containers"]
    assert resumed["command"] == ["remediation"]
    assert resumed["args"] == ["run", "morning-check", "--yes", "--from", "db", "--resume-run", RUN_ID]


def test_the_equivalent_command_can_be_pasted_into_a_shell() -> None:
    text = equivalent_command(record(params={"hosts": ["a", "b"], "note": "it's"}), "restart", "shorts")
    assert text.startswith(
        "REMEDIATION_RECORDS=configmaps REMEDIATION_NAMESPACE=shorts 'REMEDIATION_TRIGGER={"
    )
    assert f"remediation run api-restart --from restart --resume-run {RUN_ID}" in text
    assert '--param \'hosts=["a", "b"]\'' in text and "--param 'note=it'\"'\"'s'" in text


# ---- selecting the store, and the Recorder ---------------------------------------------------------


def test_the_store_is_chosen_explicitly() -> None:
    assert store_from_env(environ={}) is None  # files only: the default
    assert store_from_env(environ={"REMEDIATION_RECORDS": "files"}) is None
    store = store_from_env(
        {"kubeconfig": "/k"},
        environ={"REMEDIATION_RECORDS": "configmaps", "REMEDIATION_NAMESPACE": "ops"},
    )
    assert isinstance(store, ConfigMapRecordStore) and store.namespace == "ops"
    assert store.where() == "namespace ops (/k)"
    with pytest.raises(RunbookInvalid, match="use files or configmaps"):
        store_from_env(environ={"REMEDIATION_RECORDS": "etcd"})
    with pytest.raises(RunbookInvalid, match="needs the namespace"):
        store_from_env(environ={"REMEDIATION_RECORDS": "configmaps"})


class MemoryStore:
    """A RecordStore in a dict (for the Recorder's own logic; the ConfigMap store is proven in e2e)."""

    def __init__(self, broken: bool = False) -> None:
        self.saved: list[dict[str, Any]] = []
        self.broken = broken

    def save(self, record: Mapping[str, Any]) -> str:
        if self.broken:
            raise ConnectionError("API server unreachable")
        self.saved.append(json.loads(json.dumps(record)))
        return "memory"

    def where(self) -> str:
        return "memory"

    def get(self, run_id: str) -> dict[str, Any] | None:
        return next((r for r in reversed(self.saved) if r["id"] == run_id), None)

    def latest(self, runbook: str) -> dict[str, Any] | None:
        return self.saved[-1] if self.saved else None

    def recent(self, limit: int, runbook: str | None = None) -> list[dict[str, Any]]:
        return self.saved[-limit:]


def _run(registry: Any, state: Path, steps: list[dict[str, Any]], records: MemoryStore | None = None) -> Any:
    import asyncio

    book = build(registry, steps, guards={"cooldown": "1s"})
    return asyncio.run(Executor(registry, state=state, records=records).run(book, {}, {}))


def test_the_cluster_copy_is_saved_where_the_file_is_and_names_the_job(
    registry: Any, script: Script, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATION_JOB_NAME", "rm-test-book-0123456789")
    script.failures["b"] = ["perm"]
    store = MemoryStore()
    result = _run(
        registry,
        state,
        [
            {"id": "a", "action": "t.change", "with": {"key": "a"}},
            {"id": "b", "action": "t.step", "with": {"key": "b"}},
        ],
        records=store,
    )
    # started, after the mutating step, finished: as the file store
    assert [len(r["steps"]) for r in store.saved] == [0, 1, 2]
    assert [r.get("outcome") for r in store.saved] == [None, None, "failed"]
    on_disk = json.loads(result.record_path.read_text())
    assert on_disk == store.saved[-1] and on_disk["job"] == "rm-test-book-0123456789"


def test_an_unreachable_cluster_store_does_not_end_the_run(
    registry: Any, script: Script, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = [{"id": "a", "action": "t.change", "with": {"key": "a"}}]
    result = _run(registry, state, steps, records=MemoryStore(broken=True))
    assert result.outcome == "success" and json.loads(result.record_path.read_text())["outcome"] == "success"
    err = capsys.readouterr().err
    assert err.count("warning: run record not saved to the cluster: API server unreachable") == 1


def test_the_file_store_lists_newest_first(tmp_path: Path) -> None:
    store = FileRecordStore(tmp_path)
    for stamp, book in (("08:00", "a"), ("09:00", "b"), ("07:00", "a")):
        store.save(record(id=f"run-{stamp}", runbook=book, started_at=f"2026-11-26T{stamp}:00Z"))
    assert [r["id"] for r in store.recent(10)] == ["run-09:00", "run-08:00", "run-07:00"]
    assert [r["id"] for r in store.recent(1, "a")] == ["run-08:00"]
    assert store.latest("b")["id"] == "run-09:00"  # type: ignore[index]
    assert store.get("../../etc/passwd") is None and store.get("missing") is None


# ---- the commands ------------------------------------------------------------------------------------


def test_runs_lists_the_local_records_without_a_cluster_option(
    script: Script, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REMEDIATION_RECORDS", raising=False)
    books = tmp_path / "runbooks"
    write(books, [{"id": "look", "action": "t.step", "with": {"key": "look"}, "on": {"failure": "abort"}}])
    state = str(tmp_path / "state")
    script.failures["look"] = ["perm"]
    registry = make_registry(script)
    assert (
        main(["run", "test-book", "--runbooks-dir", str(books), "--state-dir", state], registry=registry) == 1
    )
    capsys.readouterr()
    assert main(["runs", "--state-dir", state], registry=registry) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["RUN", "RUNBOOK", "OUTCOME"]
    assert row.split()[1:3] == ["test-book", "failed"] and row.split()[-2:] == ["look", "-"]
    assert (
        main(["runs", "--state-dir", state, "--output", "json", "--runbook", "other"], registry=registry) == 0
    )
    assert json.loads(capsys.readouterr().out) == []
    assert main(["runs", "--state-dir", state, "--runbook", "other"], registry=registry) == 0
    assert "no runs of runbook other recorded in" in capsys.readouterr().err


def test_a_limit_below_one_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["runs", "--limit", "0"], registry=make_registry(Script()))
    assert exited.value.code == 2
    assert "expected a whole number of at least 1, not '0'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["resume", "R"], ["runs", "--namespace", "x"]])
def test_a_missing_kubeconfig_exits_2_naming_it(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command, "--kubeconfig", "/nonexistent/kubeconfig"]
    assert main(argv, registry=make_registry(Script())) == 2
    err = capsys.readouterr().err
    assert "--kubeconfig: /nonexistent/kubeconfig: no such file" in err and "Traceback" not in err


def test_run_rejects_an_unknown_record_store_before_running(
    script: Script, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMEDIATION_RECORDS", "etcd")
    books = tmp_path / "runbooks"
    write(books, [{"id": "look", "action": "t.step", "with": {"key": "look"}}])
    argv = ["run", "test-book", "--runbooks-dir", str(books), "--state-dir", str(tmp_path / "s")]
    assert main(argv, registry=make_registry(script)) == 2
    assert (
        "$REMEDIATION_RECORDS: etcd: unknown record store (use files or configmaps)"
        in capsys.readouterr().err
    )
    assert script.calls == []
