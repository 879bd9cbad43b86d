"""The small shared helpers: duration schema, thresholds, redaction, JSON paths, defaults."""

from __future__ import annotations

import math

import pytest
from jsonschema import Draft202012Validator

from remediation.actions._display import safe_dsn, safe_url
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._httpclient import expected_statuses, is_temporary_status
from remediation.actions._params import with_defaults
from remediation.actions._thresholds import holds
from remediation.actions.http import CHECK_PARAMS, lookup


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("5s", 5), ("10m", 600), ("1h", 3600), ("30d", 2592000), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert Draft202012Validator(duration_schema("x")).is_valid(text)


@pytest.mark.parametrize("text", ["5", "5 s", "5sec", "-1s", "1w", "", "s"])
def test_duration_schema_refuses_what_the_parser_refuses(text: str) -> None:
    assert not Draft202012Validator(duration_schema("x")).is_valid(text)
    with pytest.raises(ValueError, match="100ms, 5s, 10m, 1h or 30d"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("observed", "op", "value", "expected"),
    [
        (0.75, "<", 0.8, True),
        (0.8, "<", 0.8, False),
        (0.8, "<=", 0.8, True),
        (1, ">", 0, True),
        (0, ">=", 1, False),
        (1, "==", 1, True),
        (1, "!=", 1, False),
        (math.nan, "!=", 1, False),
    ],
)
def test_thresholds(observed: float, op: str, value: float, expected: bool) -> None:
    assert holds(observed, {"op": op, "value": value}) is expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://user:pw@cache/1", "redis://user:***@cache/1"),
        ("http://api/health", "http://api/health"),
    ],
)
def test_urls_never_show_passwords(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_dsns_never_show_passwords() -> None:
    assert safe_dsn("host=db password=pw user=ops") == "host=db password=*** user=ops"
    assert safe_dsn("postgresql://ops:pw@db:5432/shorts") == "postgresql://ops:***@db:5432/shorts"


def test_json_paths() -> None:
    body = {"a": {"b": [{"c": 1}]}, "x.y": 2}
    assert lookup(body, "a.b.0.c") == 1
    assert lookup(body, "a.b.1.c") is not None and lookup(body, "a.b.1.c") != 1  # missing marker
    assert lookup(body, "a.z") is lookup(body, "a.b.1.c")


@pytest.mark.parametrize(
    ("status", "temporary"),
    [(500, True), (503, True), (409, True), (429, True), (404, False), (400, False), (403, False)],
)
def test_statuses_that_may_pass_by_themselves(status: int, temporary: bool) -> None:
    assert is_temporary_status(status) is temporary


def test_expected_statuses() -> None:
    assert expected_statuses(None, [200]) == [200]
    assert expected_statuses(204, [200]) == [204]
    assert expected_statuses([200, 204], None) == [200, 204]


def test_defaults_fill_only_what_is_missing() -> None:
    assert with_defaults(CHECK_PARAMS, {"url": "u", "method": "HEAD"}) == {
        "url": "u",
        "method": "HEAD",
        "timeout": "10s",
    }
