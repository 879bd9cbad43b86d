"""Guards (cooldown, budget, lock), run records, the audit log, and secret redaction everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.errors import GuardRefused
from remediation.executor import Executor
from remediation.guards import FileGuardStore
from remediation.model import Guards
from remediation.records import latest_record

from .helpers import Recording, build, run

SECRET = "tok-9f8e7d6c5b4a"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def guarded(registry: Any, **guards: Any):
    return build(
        registry,
        [{"id": "change", "action": "t.change", "with": {"key": "change"}}],
        params={"rollout": {"type": "string", "default": "api"}},
        guards={"lock": "rollout/${params.rollout}", **guards},
    )


def test_cooldown_refuses_a_second_run_and_nothing_runs(registry, script, state):
    clock = Clock()
    book = guarded(registry, cooldown="10m")
    first = run(Executor(registry, state=state, clock=clock), book)
    clock.now += 300
    second = run(Executor(registry, state=state, clock=clock), book)
    assert first.outcome == "success"
    assert (second.outcome, second.exit_code) == ("refused", 4)
    assert (
        "cooldown" in second.reason and "rollout/api" in second.reason and "try again in 5m" in second.reason
    )
    assert len(script.calls) == 1
    clock.now += 301
    assert run(Executor(registry, state=state, clock=clock), book).outcome == "success"


def test_budget_counts_runs_per_runbook_and_target(registry, script, state):
    clock = Clock()
    book = guarded(registry, budget={"runs": 2, "per": "1h"})
    outcomes = []
    for _ in range(3):
        outcomes.append(run(Executor(registry, state=state, clock=clock), book).outcome)
        clock.now += 60
    assert outcomes == ["success", "success", "refused"]
    # another target has its own budget
    other = run(Executor(registry, state=state, clock=clock), book, params={"rollout": "app"})
    assert other.outcome == "success"
    clock.now += 3600
    assert run(Executor(registry, state=state, clock=clock), book).outcome == "success"


def test_a_held_lock_refuses_and_is_released_after_the_run(registry, script, state):
    store = FileGuardStore(state / "guards.json")
    lease = store.acquire("other-runbook", "rollout/api", Guards(), "run-1", 0.0)
    book = guarded(registry)
    refused = run(Executor(registry, state=state), book)
    assert refused.outcome == "refused" and "locked by run run-1 of other-runbook" in refused.reason
    store.release(lease, 0.0)
    assert run(Executor(registry, state=state), book).outcome == "success"
    assert json.loads((state / "guards.json").read_text())["locks"] == {}


def test_a_stale_lock_of_a_dead_process_is_taken_over(state):
    store = FileGuardStore(state / "guards.json")
    store.acquire("rb", "t", Guards(), "run-1", 0.0)
    data = json.loads((state / "guards.json").read_text())
    data["locks"]["t"]["pid"] = 2**22 + 12345  # no such process
    (state / "guards.json").write_text(json.dumps(data))
    assert store.acquire("rb", "t", Guards(), "run-2", 1.0).run_id == "run-2"


def test_unreadable_guard_state_refuses_rather_than_guessing(state):
    state.mkdir(parents=True)
    (state / "guards.json").write_text("{not json")
    with pytest.raises(GuardRefused, match="unreadable"):
        FileGuardStore(state / "guards.json").acquire("rb", "t", Guards(cooldown=60), "r", 0.0)


def test_read_only_steps_run_unguarded(registry, script, state):
    clock = Clock()
    book = build(
        registry,
        [
            {"id": "look", "action": "t.step", "with": {"key": "look"}},
            {"id": "change", "action": "t.change", "with": {"key": "change"}},
        ],
        guards={"cooldown": "1h"},
    )
    assert run(Executor(registry, state=state, clock=clock), book).outcome == "success"
    # within the cooldown, the read-only step alone still runs; the mutating one is refused
    assert run(Executor(registry, state=state, clock=clock), book, only_step="look").outcome == "success"
    assert run(Executor(registry, state=state, clock=clock), book, only_step="change").outcome == "refused"


def test_the_record_and_the_audit_log_describe_the_run(registry, script, state):
    script.failures["b"] = ["perm"]
    book = build(
        registry,
        [
            {"id": "a", "action": "t.step", "with": {"key": "a"}},
            {"id": "b", "action": "t.step", "with": {"key": "b"}},
        ],
        params={"p": {"type": "integer", "default": 3}},
    )
    result = run(Executor(registry, state=state), book)
    record = json.loads(result.record_path.read_text())
    assert record["outcome"] == "failed" and record["exit_code"] == 1
    assert record["params"] == {"p": 3}
    assert [(s["id"], s["outcome"]) for s in record["steps"]] == [("a", "success"), ("b", "failed")]
    assert record["steps"][1]["error"] == "b: permanent trouble"
    events = [json.loads(line)["event"] for line in (state / "audit.jsonl").read_text().splitlines()]
    assert events == ["run.started", "step.finished", "step.finished", "run.finished"]
    # a second run appends, never rewrites
    run(Executor(registry, state=state), book)
    assert len((state / "audit.jsonl").read_text().splitlines()) == 8
    assert latest_record(state, "test-book")["id"] != result.id


def test_refusals_are_audited(registry, script, state):
    book = guarded(registry, cooldown="1h")
    run(Executor(registry, state=state), book)
    run(Executor(registry, state=state), book)
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    refused = [e for e in events if e["event"] == "guard.refused"]
    assert refused and refused[0]["reason"] == "cooldown" and refused[0]["target"] == "rollout/api"


def _everything_written(state: Path) -> str:
    return "\n".join(p.read_text() for p in state.rglob("*") if p.is_file())


def test_secrets_never_reach_records_audit_or_progress(registry, script, state):
    reporter = Recording()
    book = build(
        registry,
        [
            {"id": "use", "action": "t.secret", "with": {"token_secret": "API_TOKEN"}},
            {"id": "echo", "action": "t.step", "with": {"key": "echo", "value": "${steps.use.output.echo}"}},
            {"id": "fail", "action": "t.secret", "with": {"token_secret": "API_TOKEN", "fail": True}},
        ],
    )
    result = run(Executor(registry, state=state, reporter=reporter, environ={"API_TOKEN": SECRET}), book)
    assert script.secrets_seen == [SECRET, SECRET]  # the action itself got the real value
    assert result.steps[0].output == {"echo": "Bearer ***"}
    assert result.steps[2].error == "server rejected token ***"
    assert SECRET not in _everything_written(state)
    assert SECRET not in "\n".join(reporter.lines)
    assert SECRET not in result.reason
    assert "***" in _everything_written(state)


def test_a_missing_secret_names_the_variable_to_set(registry, script, state):
    book = build(registry, [{"id": "use", "action": "t.secret", "with": {"token_secret": "API_TOKEN"}}])
    result = run(Executor(registry, state=state, environ={}), book)
    assert result.outcome == "failed"
    assert "secret API_TOKEN is not set: export API_TOKEN=" in result.reason


def test_secrets_from_a_mounted_directory(registry, script, state, tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "API_TOKEN").write_text(SECRET + "\n")
    book = build(registry, [{"id": "use", "action": "t.secret", "with": {"token_secret": "API_TOKEN"}}])
    environ = {"REMEDIATION_SECRETS_DIR": str(tmp_path / "secrets")}
    result = run(Executor(registry, state=state, environ=environ), book)
    assert result.outcome == "success" and script.secrets_seen == [SECRET]
    assert SECRET not in _everything_written(state)
