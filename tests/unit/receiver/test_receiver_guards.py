"""The guard decision: dedupe, cooldown, budget, breaker and escalation, as a pure function of state."""

from __future__ import annotations

from remediation.receiver.guards import GuardPolicy, GuardState, decide, record_outcome, release

POLICY = GuardPolicy(
    cooldown_s=600,
    budget_runs=3,
    budget_window_s=3600,
    breaker_failures=2,
    breaker_reset_s=3600,
    escalation_cooldown_s=1800,
)


def test_first_alert_runs_and_the_same_episode_is_a_duplicate() -> None:
    decision, state = decide(GuardState(), POLICY, "fp@t0", 1000.0)
    assert decision.action == "run"
    assert decide(state, POLICY, "fp@t0", 1001.0)[0].action == "duplicate"


def test_cooldown_suppresses_until_it_has_passed() -> None:
    _, state = decide(GuardState(), POLICY, "a", 0.0)
    decision, _ = decide(state, POLICY, "b", 599.0)
    assert (decision.action, decision.reason) == ("suppress", "cooldown")
    assert "cooldown 600s" in decision.detail
    assert decide(state, POLICY, "b", 600.0)[0].action == "run"


def test_budget_spent_escalates_once_then_suppresses() -> None:
    state = GuardState()
    for i in range(3):
        decision, state = decide(state, POLICY, f"a{i}", i * 700.0)
        assert decision.action == "run"
    decision, state = decide(state, POLICY, "a3", 2100.0)
    assert (decision.action, decision.reason) == ("escalate", "budget")
    decision, state = decide(state, POLICY, "a4", 2900.0)
    assert (decision.action, decision.reason) == ("suppress", "budget")
    # The window slides: the first run (t=0) is more than an hour old at t=3700.
    assert decide(state, POLICY, "a5", 3700.0)[0].action == "run"


def test_breaker_opens_after_consecutive_failures_and_escalates() -> None:
    state = GuardState()
    for i in range(2):
        _, state = decide(state, POLICY, f"a{i}", i * 700.0)
        state = record_outcome(state, f"job-{i}", succeeded=False, now=i * 700.0 + 60) or state
    decision, state = decide(state, POLICY, "a2", 1500.0)
    assert (decision.action, decision.reason) == ("escalate", "breaker")
    assert "2 consecutive failed runs" in decision.detail
    assert decide(state, POLICY, "a3", 1600.0)[0].action == "suppress"


def test_open_breaker_allows_one_trial_after_reset_and_a_success_closes_it() -> None:
    state = GuardState(consecutive_failures=2, breaker_opened_at=0.0)
    decision, state = decide(state, POLICY, "trial", 3600.0)
    assert decision.action == "run"
    # While the trial runs, the breaker counts as open again.
    assert decide(state, POLICY, "other", 4300.0)[0].reason == "breaker"
    state = record_outcome(state, "trial-job", succeeded=True, now=4400.0) or state
    assert state.consecutive_failures == 0
    assert decide(state, POLICY, "later", 5000.0)[0].action == "run"


def test_an_outcome_is_counted_once_even_when_two_replicas_report_it() -> None:
    state = record_outcome(GuardState(), "job-1", succeeded=False, now=1.0)
    assert state is not None and state.consecutive_failures == 1
    assert record_outcome(state, "job-1", succeeded=False, now=2.0) is None


def test_release_undoes_a_run_that_could_not_be_launched() -> None:
    _, state = decide(GuardState(), POLICY, "a", 100.0)
    state = release(state, "a", 100.0)
    assert decide(state, POLICY, "a", 101.0)[0].action == "run"


def test_a_runbook_guards_override_the_defaults() -> None:
    policy = GuardPolicy().with_runbook_guards(
        {"cooldown": "5m", "budget": {"runs": 1, "per": "30m"}, "breaker": {"failures": 5, "reset": "2h"}}
    )
    assert (policy.cooldown_s, policy.budget_runs, policy.budget_window_s) == (300, 1, 1800)
    assert (policy.breaker_failures, policy.breaker_reset_s) == (5, 7200)
