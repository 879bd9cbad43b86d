"""The HTTP front: authentication, limits, validation, health and metrics, over a real socket."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from remediation.receiver.server import ReceiverServer, TokenSource

from .builders import Harness, body, make_alert, make_payload

TOKEN = "correct-horse-battery-staple-7f3a"


@pytest.fixture
def served(harness: Harness, tmp_path: Path) -> Iterator[tuple[ReceiverServer, Harness, httpx.Client]]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    server = ReceiverServer(harness.receiver, TokenSource(token_file), max_body=64 * 1024, workers=2)
    server.start()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield server, harness, client
    server.stop()


def _post(client: httpx.Client, content: bytes, token: str | None = TOKEN) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/alerts", content=content, headers=headers)


def test_an_authenticated_firing_alert_starts_a_job(
    served: tuple[ReceiverServer, Harness, httpx.Client],
) -> None:
    server, harness, client = served
    response = _post(client, body(make_payload(make_alert())))
    assert response.status_code == 200 and response.json() == {"accepted": 1}
    assert server.drain()
    assert len(harness.launcher.jobs) == 1


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer", f"Token {TOKEN}"],
)
def test_missing_or_wrong_token_is_401_and_creates_nothing(
    served: tuple[ReceiverServer, Harness, httpx.Client], authorization: str | None
) -> None:
    server, harness, client = served
    headers = {"Authorization": authorization} if authorization else {}
    response = client.post("/alerts", content=body(make_payload(make_alert())), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    server.drain()
    assert harness.launcher.jobs == {} and harness.log_path.read_text() == ""


def test_basic_auth_with_the_token_is_not_accepted(
    served: tuple[ReceiverServer, Harness, httpx.Client],
) -> None:
    _, _, client = served
    response = client.post("/alerts", content=b"{}", auth=("user", TOKEN))
    assert response.status_code == 401


def test_an_oversized_body_is_413_and_creates_nothing(
    served: tuple[ReceiverServer, Harness, httpx.Client],
) -> None:
    server, harness, client = served
    alert = make_alert(annotations={"description": "x" * 70_000})
    response = _post(client, body(make_payload(alert)))
    assert response.status_code == 413
    assert "over the limit of 65536 bytes" in response.json()["error"]
    server.drain()
    assert harness.launcher.jobs == {}


def test_malformed_json_is_400_and_creates_nothing(
    served: tuple[ReceiverServer, Harness, httpx.Client],
) -> None:
    server, harness, client = served
    response = _post(client, b'{"version": "4", "alerts": [')
    assert response.status_code == 400
    assert response.json()["error"].startswith("body: not valid JSON")
    server.drain()
    assert harness.launcher.jobs == {}


def test_a_schema_violation_is_400_naming_the_field(
    served: tuple[ReceiverServer, Harness, httpx.Client],
) -> None:
    server, harness, client = served
    payload = make_payload(make_alert())
    del payload["alerts"][0]["startsAt"]
    response = _post(client, body(payload))
    assert response.status_code == 400
    assert response.json()["error"] == "alerts[0].startsAt: required field is missing"
    server.drain()
    assert harness.launcher.jobs == {}


def test_healthz_and_metrics(served: tuple[ReceiverServer, Harness, httpx.Client]) -> None:
    server, _, client = served
    assert client.get("/healthz").json() == {"status": "ok"}
    _post(client, body(make_payload(make_alert())))
    _post(client, body(make_payload(make_alert())))
    _post(client, b"nope", token="bad")
    server.drain()
    metrics = client.get("/metrics")
    assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = set(metrics.text.splitlines())
    assert 'remediation_receiver_alerts_received_total{status="firing"} 2' in lines
    assert "remediation_receiver_alerts_deduplicated_total 1" in lines
    assert 'remediation_receiver_jobs_created_total{mode="run"} 1' in lines
    assert 'remediation_receiver_requests_total{code="401"} 1' in lines
    assert "# TYPE remediation_receiver_alert_to_launch_seconds histogram" in lines
    assert "remediation_receiver_alert_to_launch_seconds_count 1" in lines
    assert 'remediation_receiver_alert_to_launch_seconds_bucket{le="+Inf"} 1' in lines


def test_the_token_never_reaches_the_logs(
    served: tuple[ReceiverServer, Harness, httpx.Client], caplog: pytest.LogCaptureFixture
) -> None:
    server, harness, client = served
    caplog.set_level(logging.DEBUG)
    _post(client, body(make_payload(make_alert())))
    _post(client, body(make_payload(make_alert())), token=TOKEN[:-1])
    server.drain()
    assert TOKEN not in caplog.text and TOKEN[:-1] not in caplog.text
    assert TOKEN[:10] not in harness.log_path.read_text()


def test_a_rotated_token_file_takes_effect(
    served: tuple[ReceiverServer, Harness, httpx.Client], tmp_path: Path
) -> None:
    _, _, client = served
    token_file = tmp_path / "token"
    token_file.write_text("rotated-token-2", encoding="utf-8")
    os.utime(token_file, (1, 1))  # a different mtime, as a Secret update swaps the file
    assert _post(client, body(make_payload(make_alert())), token=TOKEN).status_code == 401
    assert _post(client, body(make_payload(make_alert())), token="rotated-token-2").status_code == 200


def test_a_full_queue_answers_503_so_alertmanager_retries(harness: Harness, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    server = ReceiverServer(harness.receiver, TokenSource(token_file), queue_size=1, workers=1)
    # Only the HTTP thread runs, no worker: the first notification fills the queue, the second finds it full.
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert _post(client, body(make_payload(make_alert()))).status_code == 200
            response = _post(client, body(make_payload(make_alert())))
            assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
