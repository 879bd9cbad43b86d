"""describe(): the one-line dry-run plan of each action says exactly what would happen, and no secret."""

from __future__ import annotations

import asyncio

import pytest

from remediation.actions.registry import load_all
from remediation.errors import ApprovalDenied
from tests.servers.context import RecordingContext, run_action

SPECS = load_all().items()


@pytest.mark.parametrize(
    ("name", "params", "plan"),
    [
        (
            "redis.flush",
            {"url": "redis://127.0.0.1:6390/0", "pattern": "trending:*"},
            "would UNLINK keys matching 'trending:*' in redis://127.0.0.1:6390/0",
        ),
        (
            "redis.flush",
            {"url": "redis://:hunter2@cache:6379/0", "all": True},
            "would ask for approval, then UNLINK every key in redis://:***@cache:6379/0",
        ),
        (
            "postgres.terminate_idle",
            {"dsn": "host=db port=5432 dbname=shorts user=ops", "role": "app"},
            "would terminate sessions of role 'app' in state 'idle' or 'idle in transaction' "
            "for more than 5m on host=db port=5432 dbname=shorts user=ops",
        ),
        (
            "postgres.maintain",
            {"dsn": "postgresql://ops:pw@db/shorts", "reindex": True},
            "would run VACUUM (ANALYZE) and REINDEX DATABASE on postgresql://ops:***@db/shorts",
        ),
        (
            "postgres.check",
            {"dsn": "host=db password=pw"},
            "would check host=db password=***: fewer than 100 active sessions, at most 0 statements slower "
            "than 1000 ms on average",
        ),
        (
            "postgres.query",
            {"dsn": "host=db", "sql": "SELECT  1\n FROM x"},
            "would run read-only on host=db: SELECT 1 FROM x",
        ),
        (
            "cache.warm",
            {"urls": [f"http://api/{i}" for i in range(12)]},
            "would GET 12 URLs to warm the cache, 5 at a time (3 batches, 100ms apart): "
            "http://api/0, http://api/1, http://api/2 and 9 more",
        ),
        (
            "http.check",
            {
                "url": "https://api.yourservice.com/health",
                "expect": {"max_latency_ms": 500, "json": {"status": "ok"}},
            },
            "would check that GET https://api.yourservice.com/health answers 200 within 500 ms "
            "with status as expected",
        ),
        (
            "http.request",
            {"url": "http://a/b", "method": "POST", "json": {"x": 1}},
            "would send POST http://a/b with JSON body {'x': 1}",
        ),
        (
            "tls.certificate",
            {"host": "api.yourservice.com"},
            "would check that the certificate of api.yourservice.com:443 has at least 30 days left",
        ),
        (
            "prometheus.query",
            {"url": "http://prom:9090", "query": "up", "threshold": {"op": "==", "value": 1}},
            "would query http://prom:9090: up and check that it is == 1",
        ),
        (
            "redis.info",
            {"url": "redis://c:6379/0", "min_hit_rate": 0.7},
            "would read INFO of redis://c:6379/0 and check hit rate >= 0.7",
        ),
        (
            "notify.slack",
            {"channel": "#incident", "text": "[P0] api 장애 - now"},
            "would post to Slack #incident: '[P0] api 장애 - now'",
        ),
        (
            "notify.webhook",
            {"url": "http://status/api", "json": {"s": "down"}},
            "would POST {'s': 'down'} to http://status/api",
        ),
        ("manual.approve", {"prompt": "Restart the API?"}, "would ask for approval: 'Restart the API?'"),
        ("wait", {"duration": "30s"}, "would wait 30s"),
        (
            "kubernetes.restart",
            {"kind": "Rollout", "name": "api", "namespace": "shorts"},
            "would restart Rollout shorts/api (set spec.restartAt to now)",
        ),
        (
            "kubernetes.restart",
            {"kind": "Deployment", "name": "receiver", "namespace": "shorts"},
            "would restart Deployment shorts/receiver "
            "(set the pod template's kubectl.kubernetes.io/restartedAt to now)",
        ),
        (
            "kubernetes.scale",
            {"kind": "HorizontalPodAutoscaler", "name": "api", "namespace": "shorts", "by": 2, "max": 10},
            "would raise spec.minReplicas of HorizontalPodAutoscaler shorts/api by 2, to at most 10",
        ),
        (
            "kubernetes.scale",
            {"kind": "Rollout", "name": "api", "namespace": "shorts", "by": 2, "max": 10},
            "would raise spec.replicas of Rollout shorts/api by 2, to at most 10",
        ),
        (
            "kubernetes.wait_rollout",
            {"kind": "Rollout", "name": "api", "namespace": "shorts"},
            "would wait up to 5m for Rollout shorts/api to finish rolling out",
        ),
        (
            "kubernetes.cronjob_last_success",
            {"name": "db-backup", "namespace": "shorts", "max_age": "26h"},
            "would check that CronJob shorts/db-backup last succeeded less than 26h ago",
        ),
        (
            "kubernetes.rollout_promote",
            {"name": "api", "namespace": "shorts"},
            "would promote Rollout shorts/api to its next step",
        ),
        (
            "kubernetes.rollout_promote",
            {"name": "api", "namespace": "shorts", "full": True},
            "would promote Rollout shorts/api fully (skipping remaining steps, pauses and analysis)",
        ),
        (
            "kubernetes.rollout_abort",
            {"name": "api", "namespace": "shorts"},
            "would abort the update of Rollout shorts/api (traffic back to stable)",
        ),
    ],
)
def test_plan(name: str, params: dict[str, object], plan: str) -> None:
    assert SPECS[name].describe(params) == plan


def test_every_action_has_a_one_line_plan_starting_with_would() -> None:
    from tests.unit.actions.test_action_contract import _minimal

    for name, spec in SPECS.items():
        plan = spec.describe(_minimal(name))
        assert plan.startswith("would ") and "\n" not in plan, (name, plan)


def test_slack_plan_never_shows_the_webhook() -> None:
    plan = SPECS["notify.slack"].describe(
        {"channel": "#incident", "text": "t", "webhook_secret": "SLACK_WEBHOOK_URL"}
    )
    assert "hooks" not in plan and "SLACK_WEBHOOK_URL" not in plan


def test_manual_approval_granted() -> None:
    ctx = RecordingContext(answers=[True])
    assert run_action("manual.approve", {"prompt": "Flush the cache?"}, ctx) == {"approved": True}
    assert ctx.prompts == ["Flush the cache?"]


def test_manual_approval_refused_stops_the_run() -> None:
    with pytest.raises(ApprovalDenied, match="not approved: 'Flush the cache\\?'"):
        run_action("manual.approve", {"prompt": "Flush the cache?"}, RecordingContext(answers=[False]))


def test_wait_waits_and_reports_seconds() -> None:
    async def timed() -> tuple[dict[str, object], bool]:
        task = asyncio.ensure_future(SPECS["wait"].run(RecordingContext(), {"duration": "50ms"}))
        await asyncio.sleep(0)
        pending = not task.done()  # it really waits rather than returning at once
        return await task, pending

    out, was_pending = asyncio.run(timed())
    assert out == {"seconds": 0.05}
    assert was_pending
