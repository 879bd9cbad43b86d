"""The webhook body: valid version-4 payloads parse; every mistake is named by its field."""

from __future__ import annotations

import json

import pytest

from remediation.receiver.payload import PayloadError, parse_notification

from .builders import body, make_alert, make_payload


def test_a_valid_payload_parses_into_alerts() -> None:
    payload = make_payload(make_alert(), make_alert("APIResponseTimeHigh", fingerprint="00ff"))
    notification = parse_notification(body(payload))
    assert notification.status == "firing"
    assert [a.alertname for a in notification.alerts] == ["APIHealthCheckFailed", "APIResponseTimeHigh"]
    assert notification.alerts[0].dedupe_id == "a1b2c3d4e5f60718@2026-11-26T06:00:00Z"


def test_fields_added_by_newer_alertmanagers_are_accepted() -> None:
    payload = make_payload(make_alert())
    payload["alerts"][0]["silenceURL"] = "http://am/silence"
    payload["orgId"] = 1
    assert len(parse_notification(body(payload)).alerts) == 1


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p.pop("groupKey"), "groupKey: required field is missing"),
        (lambda p: p.update(version="3"), 'version: expected "4"'),
        (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status: 'pending' is not one of"),
        (
            lambda p: p["alerts"][0].update(startsAt="yesterday"),
            "alerts[0].startsAt: 'yesterday' is not an RFC 3339",
        ),
        (lambda p: p["alerts"][0]["labels"].pop("alertname"), "alerts[0].labels.alertname: required field"),
        (lambda p: p["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint: required field is missing"),
        (
            lambda p: p["alerts"][0]["labels"].update(severity=3),
            "alerts[0].labels.severity: 3 is not of type",
        ),
        (lambda p: p.update(alerts={}), "alerts: {} is not of type 'array'"),
    ],
)
def test_schema_violations_name_the_field(mutate: object, expected: str) -> None:
    payload = make_payload(make_alert())
    mutate(payload)  # type: ignore[operator]
    with pytest.raises(PayloadError) as caught:
        parse_notification(body(payload))
    assert expected in str(caught.value)


def test_malformed_json_says_where() -> None:
    with pytest.raises(PayloadError, match=r"body: not valid JSON \(Expecting .* at line 1 column"):
        parse_notification(b'{"version": "4",')


def test_a_json_array_is_not_a_payload() -> None:
    with pytest.raises(PayloadError, match=r"\(body\): \[\] is not of type 'object'"):
        parse_notification(json.dumps([]).encode())
