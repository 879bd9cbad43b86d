"""http.check and http.request against the Shorts stand-in: success, and each failure's error class."""

from __future__ import annotations

import pytest

from remediation.errors import PermanentError, TemporaryError
from tests.servers.context import RecordingContext, run_action
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub

pytestmark = pytest.mark.integration


def test_check_passes_on_a_healthy_service_and_reports_what_it_saw(shorts: ShortsStub) -> None:
    out = run_action(
        "http.check",
        {
            "url": f"{shorts.url}/health",
            "expect": {"status": 200, "max_latency_ms": 5000, "json": {"status": "ok"}},
        },
    )
    assert out["status"] == 200
    assert out["body"] == {"status": "ok", "database": "ok", "redis": "ok"}
    assert out["latency_ms"] > 0


def test_check_reads_nested_json_fields(shorts: ShortsStub) -> None:
    out = run_action(
        "http.check",
        {"url": f"{shorts.url}/api/trending?region=US", "expect": {"json": {"videos.0": "US-0"}}},
    )
    assert out["body"]["key"] == "US"


def test_wrong_json_field_is_permanent_and_names_the_field(shorts: ShortsStub) -> None:
    with pytest.raises(PermanentError, match=r"redis is 'ok', expected 'down'") as err:
        run_action("http.check", {"url": f"{shorts.url}/health", "expect": {"json": {"redis": "down"}}})
    assert err.value.output["status"] == 200


def test_missing_json_field_is_permanent(shorts: ShortsStub) -> None:
    with pytest.raises(PermanentError, match=r"no.such is missing"):
        run_action("http.check", {"url": f"{shorts.url}/health", "expect": {"json": {"no.such": 1}}})


@pytest.mark.parametrize("status", [404, 401, 403, 400])
def test_client_error_statuses_are_permanent(shorts: ShortsStub, status: int) -> None:
    with pytest.raises(PermanentError, match=f"answered {status} \\(expected 200\\)") as err:
        run_action("http.check", {"url": f"{shorts.url}/status/{status}"})
    assert err.value.output["status"] == status


@pytest.mark.parametrize("status", [500, 502, 503, 409, 429])
def test_server_errors_conflicts_and_throttling_are_temporary(shorts: ShortsStub, status: int) -> None:
    with pytest.raises(TemporaryError, match=f"answered {status}") as err:
        run_action("http.check", {"url": f"{shorts.url}/status/{status}"})
    assert err.value.output["status"] == status


def test_failing_health_endpoint_is_temporary(shorts: ShortsStub) -> None:
    shorts.behave("/health", status=503)
    with pytest.raises(TemporaryError, match="503"):
        run_action("http.check", {"url": f"{shorts.url}/health"})


def test_a_list_of_accepted_statuses(shorts: ShortsStub) -> None:
    assert (
        run_action("http.check", {"url": f"{shorts.url}/status/204", "expect": {"status": [200, 204]}})[
            "status"
        ]
        == 204
    )


def test_timeout_is_temporary(shorts: ShortsStub) -> None:
    shorts.behave("/health", delay=2.0)
    with pytest.raises(TemporaryError, match=r"timed out after 0.2s") as err:
        run_action("http.check", {"url": f"{shorts.url}/health", "timeout": "200ms"})
    assert err.value.output["error"] == "timeout"


def test_hung_server_is_a_temporary_timeout(blackhole) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TemporaryError, match="timed out"):
        run_action("http.check", {"url": f"http://127.0.0.1:{blackhole.port}/health", "timeout": "300ms"})


def test_refused_connection_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError, match="could not connect") as err:
        run_action("http.check", {"url": f"http://127.0.0.1:{refused_port}/health"})
    assert err.value.output["error"] == "connection failed"


def test_latency_budget_crossed_is_permanent(shorts: ShortsStub) -> None:
    shorts.behave("/health", delay=0.3)  # the answer cannot take less than 300 ms
    with pytest.raises(PermanentError, match="over the 100 ms budget") as err:
        run_action("http.check", {"url": f"{shorts.url}/health", "expect": {"max_latency_ms": 100}})
    assert err.value.output["latency_ms"] >= 300


def test_bearer_secret_is_sent_but_never_in_the_output(shorts: ShortsStub) -> None:
    ctx = RecordingContext(secrets={"ADMIN_TOKEN": "s3cr3t-token"})
    out = run_action(
        "http.check", {"url": f"{shorts.url}/admin/youtube-quota", "bearer_secret": "ADMIN_TOKEN"}, ctx
    )
    assert shorts.traffic.authorizations == ["Bearer s3cr3t-token"]
    assert out["body"] == {"used": 5200, "limit": 8000}
    assert "s3cr3t-token" not in repr(out)


def test_missing_secret_is_permanent_and_names_the_variable(shorts: ShortsStub) -> None:
    with pytest.raises(PermanentError, match="ADMIN_TOKEN is not set"):
        run_action("http.check", {"url": f"{shorts.url}/admin/youtube-quota", "bearer_secret": "ADMIN_TOKEN"})
    assert shorts.traffic.authorizations == []


def test_invalid_certificate_on_https_is_permanent(tls_servers) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="certificate is not valid"):
        run_action("http.check", {"url": f"{tls_servers[90].url}/health"})


def test_request_posts_json_and_accepts_any_2xx(slack: SlackStub) -> None:
    out = run_action("http.request", {"url": f"{slack.url}/hooks/x", "method": "POST", "json": {"a": 1}})
    assert out["status"] == 200
    assert [p.json for p in slack.posts] == [{"a": 1}]


def test_request_with_an_unexpected_status_is_permanent(shorts: ShortsStub) -> None:
    with pytest.raises(PermanentError, match="expected 202"):
        run_action(
            "http.request", {"url": f"{shorts.url}/health", "method": "GET", "expect": {"status": 202}}
        )
