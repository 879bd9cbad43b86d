"""notify.slack and notify.webhook against the Slack / status-page stand-in."""

from __future__ import annotations

import pytest

from remediation.errors import PermanentError, TemporaryError
from tests.servers.context import RecordingContext, run_action
from tests.servers.net import Blackhole
from tests.servers.slack import SlackStub

pytestmark = pytest.mark.integration

INCIDENT = "[P0] api 장애 - 2026-11-26T05:00:00Z"  # the manual's incident title, filled in


def _ctx(slack: SlackStub) -> RecordingContext:
    return RecordingContext(secrets={"SLACK_WEBHOOK_URL": slack.webhook_url})


def test_slack_posts_channel_and_text_to_the_webhook_from_the_secret(slack: SlackStub) -> None:
    ctx = _ctx(slack)
    assert run_action("notify.slack", {"channel": "#incident", "text": INCIDENT}, ctx) == {"ok": True}
    assert [(p.path, p.json) for p in slack.posts] == [
        (SlackStub.WEBHOOK_PATH, {"channel": "#incident", "text": INCIDENT})
    ]
    assert ctx.secrets_read == ["SLACK_WEBHOOK_URL"]  # the default secret name


def test_slack_failures_are_classified_and_never_show_the_webhook(slack: SlackStub) -> None:
    slack.answer_status = 500
    with pytest.raises(TemporaryError) as temporary:
        run_action("notify.slack", {"channel": "#incident", "text": "x"}, _ctx(slack))
    slack.answer_status = 404  # Slack's answer for a revoked webhook
    with pytest.raises(PermanentError) as permanent:
        run_action("notify.slack", {"channel": "#incident", "text": "x"}, _ctx(slack))
    for err in (temporary.value, permanent.value):
        assert "the Slack webhook" in str(err)
        assert "secret-token-part" not in str(err) + repr(err.output)


def test_slack_unreachable_is_temporary_and_hides_the_url(refused_port: int) -> None:
    ctx = RecordingContext(secrets={"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{refused_port}/services/T/B/tok"})
    with pytest.raises(TemporaryError, match="the Slack webhook") as err:
        run_action("notify.slack", {"channel": "#incident", "text": "x"}, ctx)
    assert "tok" not in str(err.value) + repr(err.value.output)


def test_slack_without_the_secret_is_permanent(slack: SlackStub) -> None:
    with pytest.raises(PermanentError, match="SLACK_WEBHOOK_URL is not set"):
        run_action("notify.slack", {"channel": "#incident", "text": "x"})
    assert slack.posts == []


def test_webhook_posts_json_with_a_bearer_token(slack: SlackStub) -> None:
    ctx = RecordingContext(secrets={"STATUS_TOKEN": "tok-123"})
    body = {"status": "investigating", "title": INCIDENT}
    out = run_action(
        "notify.webhook",
        {"url": f"{slack.url}/api/incidents", "json": body, "bearer_secret": "STATUS_TOKEN"},
        ctx,
    )
    assert out == {"status": 200}
    assert [(p.path, p.json, p.authorization) for p in slack.posts] == [
        ("/api/incidents", body, "Bearer tok-123")
    ]


def test_webhook_statuses(slack: SlackStub) -> None:
    slack.answer_status = 429
    with pytest.raises(TemporaryError):
        run_action("notify.webhook", {"url": f"{slack.url}/x", "json": {}})
    slack.answer_status = 401
    with pytest.raises(PermanentError):
        run_action("notify.webhook", {"url": f"{slack.url}/x", "json": {}})


def test_slack_timeout_is_temporary(blackhole: Blackhole) -> None:
    ctx = RecordingContext(
        secrets={"SLACK_WEBHOOK_URL": f"http://127.0.0.1:{blackhole.port}/services/T/B/tok"}
    )
    with pytest.raises(TemporaryError, match="POST the Slack webhook timed out"):
        run_action("notify.slack", {"channel": "#incident", "text": "x", "timeout": "300ms"}, ctx)
