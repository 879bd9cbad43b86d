"""Executor semantics: transitions, conditions, retries, timeouts, fan-out, approvals, escalation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from remediation.errors import RunbookInvalid
from remediation.executor import Executor

from .conftest import Script
from .helpers import Recording, build, run


class Sleeps:
    """Stands in for asyncio.sleep between retries: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def executor(registry: Any, state: Path, **kwargs: Any) -> Executor:
    kwargs.setdefault("sleep", Sleeps())
    return Executor(registry, state=state, **kwargs)


def step(step_id: str, action: str = "t.step", **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "action": action, "with": fields.pop("with", {"key": step_id}), **fields}


def ran(script: Script) -> list[str]:
    return [key for key, _ in script.calls]


def test_steps_run_in_order_and_succeed(registry, script, state):
    book = build(registry, [step("a"), step("b"), step("c")])
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("success", 0)
    assert ran(script) == ["a", "b", "c"]


def test_success_end_stops_the_run(registry, script, state):
    book = build(registry, [step("a", on={"success": "end"}), step("b")])
    assert run(executor(registry, state), book).outcome == "success"
    assert ran(script) == ["a"]


def test_named_target_jumps_over_steps(registry, script, state):
    book = build(registry, [step("a", on={"success": "c"}), step("b"), step("c")])
    run(executor(registry, state), book)
    assert ran(script) == ["a", "c"]


def test_failure_aborts_by_default_and_the_run_fails(registry, script, state):
    script.failures["a"] = ["perm"]
    book = build(registry, [step("a"), step("b")])
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert "a: permanent trouble" in result.reason
    assert ran(script) == ["a"]


def test_failure_to_next_is_handled_and_the_run_succeeds(registry, script, state):
    script.failures["a"] = ["perm"]
    book = build(registry, [step("a", on={"failure": "next"}), step("b")])
    result = run(executor(registry, state), book)
    assert result.outcome == "success"
    assert ran(script) == ["a", "b"]


def test_continue_runs_the_rest_but_the_run_fails(registry, script, state):
    script.failures["a"] = ["perm"]
    book = build(
        registry,
        [
            step("a", on={"failure": "continue"}),
            step("b", on={"failure": "continue"}),
            step("report", when="run.failed", **{"with": {"key": "report", "value": "${run.failures}"}}),
        ],
    )
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    assert ran(script) == ["a", "b", "report"]
    assert script.calls[-1][1]["value"] == ["a"]
    assert "failed checks: a" in result.reason


def test_abort_after_success_is_aborted(registry, script, state):
    book = build(registry, [step("a", on={"success": "abort"}), step("b")])
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("aborted", 1)
    assert ran(script) == ["a"]


def test_escalate_runs_escalation_steps_in_order(registry, script, state):
    script.failures["check"] = ["perm"]
    script.failures["page-1"] = ["perm"]  # a failing escalation step does not stop the next one
    book = build(
        registry,
        [step("check", on={"failure": "escalate"}), step("never")],
        escalate=[
            {"action": "t.step", "with": {"key": "page-1"}},
            {"action": "t.step", "with": {"key": "page-2", "value": "${steps.check.error}"}},
        ],
    )
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("escalated", 3)
    assert ran(script) == ["check", "page-1", "page-2"]
    assert script.calls[-1][1]["value"] == "check: permanent trouble"
    assert [s.outcome for s in result.escalation] == ["failed", "success"]


def test_escalation_text_survives_outputs_that_never_came(registry, script, state):
    script.failures["a"] = ["perm"]
    book = build(
        registry,
        [step("a", on={"failure": "escalate"}), step("b")],
        escalate=[{"action": "t.step", "with": {"key": "e", "value": "b said ${steps.b.output.key}"}}],
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "escalated"
    assert script.calls[-1][1]["value"] == "b said (unavailable: steps.b.output.key)"


def test_when_false_skips_and_when_reads_earlier_outputs(registry, script, state):
    book = build(
        registry,
        [
            step("a", **{"with": {"key": "a", "value": 150}}),
            step("big", when="steps.a.output.value >= 100"),
            step("small", when="steps.a.output.value < 100"),
            step("flag", when="params.force"),
        ],
        params={"force": {"type": "boolean", "default": False}},
    )
    result = run(executor(registry, state), book)
    assert ran(script) == ["a", "big"]
    assert [r.outcome for r in result.steps] == ["success", "success", "skipped", "skipped"]


def test_a_condition_comparing_different_kinds_fails_the_step(registry, script, state):
    book = build(
        registry,
        [step("a", **{"with": {"key": "a", "value": "text"}}), step("b", when="steps.a.output.value > 3")],
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert "cannot compare text 'text' > number 3" in result.reason


def test_outputs_flow_into_later_templates_keeping_their_type(registry, script, state):
    book = build(
        registry,
        [
            step("a", **{"with": {"key": "a", "value": [1, 2]}}),
            step("b", **{"with": {"key": "b", "value": "${steps.a.output.value}"}}),
            step("c", **{"with": {"key": "c", "value": "got ${steps.a.output.value} at ${run.runbook}"}}),
        ],
    )
    run(executor(registry, state), book)
    assert script.calls[1][1]["value"] == [1, 2]
    assert script.calls[2][1]["value"] == "got 1, 2 at test-book"


def test_temporary_errors_are_retried_with_exponential_backoff(registry, script, state):
    script.failures["a"] = ["temp", "temp", "temp"]
    sleeps = Sleeps()
    book = build(
        registry, [step("a", retry={"attempts": 4, "backoff": "exponential", "initial": "1s", "max": "3s"})]
    )
    result = run(executor(registry, state, sleep=sleeps), book)
    assert result.outcome == "success"
    assert result.steps[0].attempts == 4
    assert sleeps.delays == [1.0, 2.0, 3.0]  # 1, 2, then 4 capped at 3


def test_fixed_backoff_with_jitter_stays_within_its_band(registry, script, state):
    script.failures["a"] = ["temp", "temp"]
    low, high = Sleeps(), Sleeps()
    for sleeps, rand in ((low, 0.0), (high, 0.999999)):
        script.failures["a"] = ["temp", "temp"]
        book = build(registry, [step("a", retry={"attempts": 3, "initial": "10s", "jitter": 0.5})])
        run(executor(registry, state, sleep=sleeps, rand=lambda r=rand: r), book)
    assert low.delays == [5.0, 5.0]
    assert all(14.99 < d <= 15.0 for d in high.delays)


def test_permanent_errors_are_not_retried(registry, script, state):
    script.failures["a"] = ["perm", "ok"]
    sleeps = Sleeps()
    book = build(registry, [step("a", retry={"attempts": 5, "initial": "1s"})])
    result = run(executor(registry, state, sleep=sleeps), book)
    assert result.outcome == "failed"
    assert result.steps[0].attempts == 1 and sleeps.delays == []
    assert result.steps[0].error_kind == "permanent"


def test_retries_give_up_after_the_last_attempt(registry, script, state):
    script.failures["a"] = ["temp"] * 5
    book = build(registry, [step("a", retry={"attempts": 3, "initial": "1s"})])
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert result.steps[0].attempts == 3
    assert result.steps[0].output == {"seen": "a"}  # what the action observed is kept


def test_a_step_timeout_is_temporary_and_retried(registry, script, state):
    script.delays["slow"] = 5
    book = build(registry, [step("slow", timeout="50ms", retry={"attempts": 2, "initial": "1s"})])
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert result.steps[0].attempts == 2
    assert result.steps[0].error == "timed out after 50ms"


def test_the_run_timeout_stops_a_hanging_step_and_escalates(registry, script, state):
    script.delays["hang"] = 30
    book = build(
        registry,
        [step("hang"), step("after")],
        timeout="100ms",
        escalate=[{"action": "t.step", "with": {"key": "page"}}],
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "escalated"
    assert "exceeded its timeout of 100ms" in result.reason
    assert ran(script) == ["hang", "page"]
    assert result.steps[0].error == "run timed out after 100ms"


def test_the_run_timeout_without_escalation_fails(registry, script, state):
    script.delays["hang"] = 30
    result = run(executor(registry, state), build(registry, [step("hang")], timeout="100ms"))
    assert (result.outcome, result.exit_code) == ("failed", 1)


def test_foreach_respects_its_concurrency_bound(registry, script, state):
    book = build(
        registry,
        [
            step(
                "fan",
                foreach={"items": [f"i{n}" for n in range(12)], "concurrency": 3},
                **{"with": {"key": "${item}", "delay": 0.02}},
            )
        ],
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "success"
    assert script.peak == 3
    assert sorted(ran(script)) == sorted(f"i{n}" for n in range(12))
    assert result.steps[0].output["succeeded"] == 12


def test_foreach_runs_all_items_at_once_when_allowed(registry, script, state):
    book = build(
        registry,
        [
            step(
                "fan",
                foreach={"items": "${params.hosts}", "concurrency": 20},
                **{"with": {"key": "${item}", "delay": 0.05}},
            )
        ],
        params={"hosts": {"type": "list", "default": [f"h{n}" for n in range(20)]}},
    )
    run(executor(registry, state), book)
    assert script.peak == 20  # 20 checks overlap: the step costs about the slowest, not the sum


def test_foreach_fails_when_an_item_fails_and_reports_each(registry, script, state):
    script.failures["b"] = ["perm"]
    book = build(registry, [step("fan", foreach={"items": ["a", "b", "c"]}, **{"with": {"key": "${item}"}})])
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert result.steps[0].error == "1 of 3 items failed; first: b: permanent trouble"
    outcomes = {r["item"]: r["outcome"] for r in result.steps[0].output["results"]}
    assert outcomes == {"a": "success", "b": "failed", "c": "success"}


def test_foreach_items_that_are_not_a_list_fail_the_step(registry, script, state):
    book = build(
        registry,
        [step("fan", foreach={"items": "${params.one}"}, **{"with": {"key": "${item}"}})],
        params={"one": {"type": "string", "default": "x"}},
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert "must resolve to a list" in result.reason


def test_with_values_are_checked_against_the_action_after_templates(registry, script, state):
    book = build(
        registry,
        [
            {
                "id": "s",
                "action": "kubernetes.scale",
                "with": {
                    "kind": "Rollout",
                    "name": "api",
                    "namespace": "shorts",
                    "by": "${params.by}",
                    "max": 10,
                },
            }
        ],
        params={"by": {"type": "string", "default": "two"}},
        guards={"budget": {"runs": 5, "per": "1h"}},
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert "by: 'two' is not of type 'integer'" in result.reason
    assert script.calls == []


def test_an_action_that_crashes_fails_its_step_not_the_executor(registry, script, state):
    script.failures["a"] = ["crash"]
    result = run(executor(registry, state), build(registry, [step("a")]))
    assert result.outcome == "failed"
    assert "crashed: RuntimeError: bug inside the action" in result.reason
    assert result.record_path is not None and result.record_path.exists()


def test_a_loop_of_transitions_ends_the_run(registry, script, state):
    script.failures["a"] = ["temp"] * 1000
    book = build(registry, [step("a", on={"failure": "a"})])
    result = run(executor(registry, state), book)
    assert result.outcome == "failed"
    assert "loop" in result.reason


def test_approval_with_yes(registry, script, state):
    book = build(
        registry, [{"id": "ok", "action": "manual.approve", "with": {"prompt": "go?"}}, step("after")]
    )
    result = run(executor(registry, state, assume_yes=True), book)
    assert result.outcome == "success" and ran(script) == ["after"]
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    approvals = [e for e in audit if e["event"] == "approval"]
    assert approvals[0]["approved"] is True and approvals[0]["how"] == "--yes"


def test_approval_without_a_human_is_denied_and_stops_the_run(registry, script, state):
    book = build(
        registry,
        [
            {"id": "ok", "action": "manual.approve", "with": {"prompt": "go?"}, "on": {"failure": "next"}},
            step("after"),
        ],
    )
    result = run(executor(registry, state), book)
    assert (result.outcome, result.exit_code) == ("aborted", 4)
    assert ran(script) == []
    assert "approval denied at step 'ok'" in result.reason


def test_interactive_approval_asks_the_prompt(registry, script, state):
    asked: list[str] = []

    def prompt(question: str) -> bool:
        asked.append(question)
        return True

    book = build(
        registry,
        [{"id": "ok", "action": "manual.approve", "with": {"prompt": "restart ${params.x}?"}}],
        params={"x": {"type": "string", "default": "api"}},
    )
    result = run(executor(registry, state, prompt=prompt), book)
    assert result.outcome == "success" and asked == ["restart api?"]


def test_only_one_step_runs_with_step(registry, script, state):
    book = build(registry, [step("a"), step("b", on={"success": "a"}), step("c")])
    result = run(executor(registry, state), book, only_step="b")
    assert ran(script) == ["b"] and result.outcome == "success"


def test_resume_from_a_step_uses_earlier_outputs(registry, script, state):
    book = build(
        registry,
        [step("a"), step("b"), step("c", **{"with": {"key": "c", "value": "${steps.a.output.key}"}})],
    )
    previous = {"a": {"output": {"key": "from-before"}, "outcome": "success", "error": None}}
    result = run(executor(registry, state), book, start_at="b", previous=previous)
    assert ran(script) == ["b", "c"]
    assert script.calls[-1][1]["value"] == "from-before"
    assert result.outcome == "success"


def test_unknown_step_for_step_or_from_is_invalid_input(registry, state):
    book = build(registry, [step("check")])
    with pytest.raises(RunbookInvalid, match=r"no step 'chek'.*did you mean 'check'"):
        run(executor(registry, state), book, only_step="chek")


def test_missing_profile_keys_are_reported_before_anything_runs(registry, script, state):
    book = build(
        registry, [step("a"), {"id": "h", "action": "http.check", "with": {"url": "${profile.api_url}/x"}}]
    )
    with pytest.raises(RunbookInvalid, match="api_url is not set, but step 'h' needs it"):
        run(executor(registry, state), book)
    assert script.calls == []


def test_progress_lines_and_logs_reach_the_reporter(registry, script, state):
    reporter = Recording()
    book = build(registry, [step("a", **{"with": {"key": "a", "log": "half way"}})])
    run(executor(registry, state, reporter=reporter), book)
    assert "log a: half way" in reporter.lines
    assert reporter.lines[0].startswith("start ") and reporter.lines[-1].startswith("end success")


def test_an_escalation_is_not_cut_short_or_repeated_by_the_run_timeout(registry, script, state):
    script.failures["check"] = ["perm"]
    script.delays["page"] = 0.3  # longer than what is left of the run's 200 ms
    book = build(
        registry,
        [step("check", on={"failure": "escalate"})],
        timeout="200ms",
        escalate=[{"action": "t.step", "with": {"key": "page"}}],
    )
    result = run(executor(registry, state), book)
    assert result.outcome == "escalated"
    assert ran(script) == ["check", "page"]
    assert [s.outcome for s in result.escalation] == ["success"]
