"""What a user of the receiver notices: which Jobs start, which do not, and the record of why."""

from __future__ import annotations

import json
from collections.abc import Callable

from remediation.receiver.guards import GuardPolicy, InMemoryGuardStore
from remediation.receiver.jobs import job_name

from .builders import Harness, make_alert, make_payload


def test_a_firing_alert_starts_exactly_one_job_with_the_runbook_and_its_params(harness: Harness) -> None:
    harness.send(make_payload(make_alert(labels={"deployment": "api", "instance": "10.1.2.3:8080"})))
    assert len(harness.launcher.jobs) == 1
    job = next(iter(harness.launcher.jobs.values()))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "remediation", "run", "api-restart", "--runbooks-dir", "/runbooks",
        "--profile", "/etc/remediation/profile.yaml", "--yes", "--output", "json",
        "--param", "deployment=api", "--param", "namespace=shorts",
    ]  # fmt: skip
    assert job["metadata"]["labels"]["remediation.shorts.ops/runbook"] == "api-restart"
    assert job["metadata"]["labels"]["remediation.shorts.ops/target"] == "shorts.deployment.api"
    assert harness.receiver.metrics.jobs_created.value(mode="run") == 1
    assert [r["outcome"] for r in harness.records()] == ["started"]


def test_the_job_is_least_privilege_and_never_retried_by_kubernetes(harness: Harness) -> None:
    harness.send(make_payload(make_alert()))
    job = next(iter(harness.launcher.jobs.values()))
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 1800 and spec["ttlSecondsAfterFinished"] > 0
    assert pod["serviceAccountName"] == "remediation" and pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "remediation-secrets", "optional": True}}]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/runbooks"] == "runbooks" and mounts["/etc/remediation"] == "profile"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["runbooks"]["configMap"]["name"] == "runbooks"
    assert volumes["profile"]["configMap"]["name"] == "remediation-profile"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert len(job["metadata"]["name"]) <= 63


def test_the_trigger_carries_the_alert_but_no_secret_looking_values(harness: Harness) -> None:
    alert = make_alert(
        labels={"api_token": "s3cr3t-label"}, annotations={"webhook": "https://hooks/s3cr3t-annot"}
    )
    harness.send(make_payload(alert))
    container = next(iter(harness.launcher.jobs.values()))["spec"]["template"]["spec"]["containers"][0]
    trigger = json.loads(next(e["value"] for e in container["env"] if e["name"] == "REMEDIATION_TRIGGER"))
    assert trigger["labels"]["alertname"] == "APIHealthCheckFailed"
    assert trigger["labels"]["api_token"] == "[redacted]"
    assert trigger["annotations"] == {"summary": "APIHealthCheckFailed is firing"}
    everything = json.dumps(harness.launcher.jobs) + harness.log_path.read_text()
    assert "s3cr3t" not in everything


def test_resolved_alerts_start_nothing_but_are_recorded(harness: Harness) -> None:
    harness.send(make_payload(make_alert(status="resolved")))
    assert harness.launcher.jobs == {}
    assert [r["outcome"] for r in harness.records()] == ["resolved"]


def test_the_same_notification_twice_starts_nothing_more(harness: Harness) -> None:
    payload = make_payload(make_alert())
    harness.send(payload)
    harness.send(payload)
    assert len(harness.launcher.jobs) == 1
    assert harness.receiver.metrics.deduplicated.total() == 1
    assert [r["outcome"] for r in harness.records()] == ["started", "deduplicated"]


def test_two_replicas_sharing_the_guard_store_start_one_job(harness_factory: Callable[..., Harness]) -> None:
    store = InMemoryGuardStore()
    first, second = harness_factory(store=store), harness_factory(store=store)
    payload = make_payload(make_alert())
    first.send(payload)
    second.send(payload)  # the other Alertmanager replica's copy reaches the other receiver replica
    assert len(first.launcher.jobs) + len(second.launcher.jobs) == 1
    assert second.records()[0]["outcome"] == "deduplicated"


def test_a_second_firing_within_the_cooldown_is_suppressed_and_says_why(harness: Harness) -> None:
    harness.send(make_payload(make_alert(fingerprint="01", labels={"deployment": "api"})))
    harness.clock.advance(120)
    harness.send(
        make_payload(
            make_alert(fingerprint="01", starts_at="2026-11-26T06:02:00Z", labels={"deployment": "api"})
        )
    )
    assert len(harness.launcher.jobs) == 1
    assert harness.receiver.metrics.suppressed.value(reason="cooldown") == 1
    last = harness.records()[-1]
    assert (last["outcome"], last["reason"]) == ("suppressed", "cooldown")
    note = harness.events.notes[-1]
    assert (note.reason, note.target.kind, note.target.name) == ("RemediationSuppressed", "Deployment", "api")
    assert "cooldown" in note.message


def test_different_targets_have_separate_guards(harness: Harness) -> None:
    harness.send(make_payload(make_alert(fingerprint="01", labels={"deployment": "api"})))
    harness.send(make_payload(make_alert(fingerprint="02", labels={"deployment": "admin"})))
    assert len(harness.launcher.jobs) == 2


def _fire(harness: Harness, n: int) -> None:
    harness.send(make_payload(make_alert(fingerprint="0f", starts_at=f"2026-11-26T06:{n:02d}:00Z")))


def test_after_the_budget_is_spent_the_escalation_runs_instead(harness: Harness) -> None:
    for n in range(3):  # api-restart: cooldown 10m, budget 3 per hour
        _fire(harness, n)
        harness.clock.advance(11 * 60)
    _fire(harness, 40)
    requests = harness.launcher.requests
    assert [r.escalate_only for r in requests] == [False, False, False, True]
    command = harness.launcher.jobs[job_name(requests[-1])]["spec"]["template"]["spec"]["containers"][0][
        "command"
    ]
    assert command[:3] == ["remediation", "run", "api-restart"] and "--escalate-only" in command
    assert harness.records()[-1]["outcome"] == "escalated" and harness.records()[-1]["reason"] == "budget"
    assert harness.events.notes[-1].reason == "RemediationEscalated"
    # A human was told once: the next alert in the same window is suppressed, not escalated again.
    harness.clock.advance(11 * 60)
    _fire(harness, 51)
    assert len(harness.launcher.requests) == 4
    assert harness.receiver.metrics.suppressed.value(reason="budget") == 1


def test_after_repeated_failures_the_breaker_escalates(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(GuardPolicy(cooldown_s=60, budget_runs=10, breaker_failures=2))
    for n in range(2):
        _fire(harness, n)
        harness.finish_last(succeeded=False)
        harness.clock.advance(11 * 60)  # past api-restart's own 10m cooldown
    _fire(harness, 5)
    assert [r.escalate_only for r in harness.launcher.requests] == [False, False, True]
    assert harness.records()[-1]["reason"] == "breaker"
    # The escalation Job failing does not count as another remediation failure.
    harness.finish_last(succeeded=False)
    assert harness.store.get("api-restart|shorts/-/api-restart").consecutive_failures == 2


def test_successful_runs_keep_the_breaker_closed(harness_factory: Callable[..., Harness]) -> None:
    harness = harness_factory(GuardPolicy(cooldown_s=60, budget_runs=10, breaker_failures=2))
    for n in range(4):
        _fire(harness, n)
        harness.finish_last(succeeded=n % 2 == 0)
        harness.clock.advance(21 * 60)  # past the cooldown, and 4 runs fit the 3-per-hour budget
    assert not any(r.escalate_only for r in harness.launcher.requests)


def test_alerts_without_a_runbook_are_suppressed_and_recorded(harness: Harness) -> None:
    harness.send(make_payload(make_alert("DiskFull")))
    assert harness.launcher.jobs == {}
    assert harness.receiver.metrics.suppressed.value(reason="no-runbook") == 1
    assert harness.records()[0]["reason"] == "no-runbook"


def test_a_failed_launch_is_counted_and_the_resend_tries_again(harness: Harness) -> None:
    harness.launcher.fail_with = RuntimeError("API server unavailable")
    payload = make_payload(make_alert())
    harness.send(payload)
    assert harness.receiver.metrics.failures.value(stage="launch") == 1
    assert harness.records()[-1]["outcome"] == "failed"
    harness.launcher.fail_with = None
    harness.send(payload)  # Alertmanager resends the group: this time the Job starts
    assert len(harness.launcher.jobs) == 1
