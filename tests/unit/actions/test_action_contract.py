"""Every action of the contract exists with its parameters, outputs and mutating flag, and a strict schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from remediation.actions.registry import ActionSpec, load_all

# name: (mutates, required params, optional params, outputs) as the helpers' contract states them.
CONTRACT: dict[str, tuple[bool, set[str], set[str], set[str]]] = {
    "http.check": (
        False,
        {"url"},
        {"method", "headers", "timeout", "bearer_secret", "expect"},
        {"status", "latency_ms", "body"},
    ),
    "http.request": (
        True,
        {"url", "method"},
        {"headers", "json", "timeout", "bearer_secret", "expect"},
        {"status", "latency_ms", "body"},
    ),
    "tls.certificate": (
        False,
        {"host"},
        {"port", "server_name", "ca_file", "min_days"},
        {"days_left", "not_after", "subject", "issuer"},
    ),
    "postgres.check": (
        False,
        {"dsn"},
        {"max_active", "slow_query_ms", "max_slow_queries"},
        {"active_connections", "slow_queries"},
    ),
    "postgres.query": (False, {"dsn", "sql"}, {"expect"}, {"rows", "row_count"}),
    "postgres.terminate_idle": (True, {"dsn", "role"}, {"idle_for", "states"}, {"terminated", "pids"}),
    "postgres.maintain": (True, {"dsn"}, {"vacuum_analyze", "reindex"}, {"durations"}),
    "redis.info": (
        False,
        {"url"},
        {"min_hit_rate", "max_memory_ratio"},
        {"used_memory", "maxmemory", "memory_ratio", "hit_rate", "keys"},
    ),
    "redis.flush": (True, {"url"}, {"pattern", "all", "count"}, {"deleted"}),
    "cache.warm": (True, {"urls"}, {"batch_size", "pause", "timeout"}, {"success", "failed", "errors"}),
    "prometheus.query": (False, {"url", "query"}, {"threshold"}, {"value"}),
    "notify.slack": (True, {"channel", "text"}, {"webhook_secret"}, {"ok"}),
    "notify.webhook": (True, {"url", "json"}, {"bearer_secret"}, {"status"}),
    "manual.approve": (False, {"prompt"}, set(), {"approved"}),
    "wait": (False, {"duration"}, set(), set()),
    "kubernetes.restart": (True, {"kind", "name", "namespace"}, set(), set()),
    "kubernetes.scale": (True, {"kind", "name", "namespace", "by", "max"}, set(), {"from", "to"}),
    "kubernetes.wait_rollout": (False, {"kind", "name", "namespace"}, {"timeout"}, {"ready_replicas"}),
    "kubernetes.cronjob_last_success": (
        False,
        {"name", "namespace", "max_age"},
        set(),
        {"last_success", "age_seconds"},
    ),
    "kubernetes.rollout_promote": (True, {"name", "namespace"}, {"full"}, set()),
    "kubernetes.rollout_abort": (True, {"name", "namespace"}, set(), set()),
}

DEFAULTS = {
    ("http.check", "method"): "GET",
    ("http.check", "timeout"): "10s",
    ("tls.certificate", "port"): 443,
    ("tls.certificate", "min_days"): 30,
    ("postgres.check", "max_active"): 100,
    ("postgres.check", "slow_query_ms"): 1000,
    ("postgres.check", "max_slow_queries"): 0,
    ("postgres.terminate_idle", "idle_for"): "5m",
    ("postgres.terminate_idle", "states"): ["idle", "idle in transaction"],
    ("postgres.maintain", "vacuum_analyze"): True,
    ("postgres.maintain", "reindex"): False,
    ("redis.flush", "all"): False,
    ("redis.flush", "count"): 500,
    ("cache.warm", "batch_size"): 5,
    ("cache.warm", "pause"): "100ms",
    ("cache.warm", "timeout"): "10s",
    ("notify.slack", "webhook_secret"): "SLACK_WEBHOOK_URL",
    ("kubernetes.wait_rollout", "timeout"): "5m",
    ("kubernetes.rollout_promote", "full"): False,
}

SPECS = load_all().items()


def test_exactly_the_contracts_actions_are_registered() -> None:
    assert set(SPECS) == set(CONTRACT)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_action_matches_the_contract(name: str) -> None:
    spec: ActionSpec = SPECS[name]
    mutates, required, optional, outputs = CONTRACT[name]
    assert spec.mutates is mutates
    assert set(spec.params.get("required", [])) == required
    assert required | optional <= set(spec.params["properties"])
    assert outputs <= set(spec.outputs)
    assert spec.summary and spec.describe is not None


@pytest.mark.parametrize(("name", "param"), sorted(DEFAULTS))
def test_defaults_are_the_contracts(name: str, param: str) -> None:
    assert SPECS[name].params["properties"][param]["default"] == DEFAULTS[(name, param)]


def _objects(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(schema, dict):
        if "properties" in schema:
            yield path, schema
        for key, value in schema.items():
            yield from _objects(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            yield from _objects(value, f"{path}/{i}")


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_schema_is_strict_valid_2020_12_and_described(name: str) -> None:
    schema = SPECS[name].params
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    objects = list(_objects(schema, ""))
    assert objects
    for path, obj in objects:
        if path.endswith(("/if", "/then", "/else")):
            continue  # conditional sub-schemas only constrain; the object itself is strict
        assert obj.get("additionalProperties") is False, f"{name}{path} accepts unknown keys"
        for prop, sub in obj["properties"].items():
            assert sub.get("description"), f"{name}{path}/{prop} has no description"


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_secret_parameters_hold_names_not_values(name: str) -> None:
    validator = Draft202012Validator(SPECS[name].params)
    for prop, sub in SPECS[name].params["properties"].items():
        if prop.endswith("_secret"):
            assert "pattern" in sub
            assert not validator.is_valid({**_minimal(name), prop: "https://hooks.slack.com/services/x"})
            assert validator.is_valid({**_minimal(name), prop: "SOME_ENV_NAME"})


def test_unknown_parameters_are_refused_with_their_name() -> None:
    errors = list(
        Draft202012Validator(SPECS["http.check"].params).iter_errors({"url": "http://x", "timout": "5s"})
    )
    assert any("'timout' was unexpected" in e.message for e in errors)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("http.check", {"url": "http://x", "timeout": "10 seconds"}),
        ("http.check", {"url": "http://x", "expect": {"status": 99}}),
        ("http.check", {"url": "http://x", "method": "FETCH"}),
        ("tls.certificate", {"host": "x", "port": 70000}),
        ("postgres.terminate_idle", {"dsn": "x", "role": "app", "states": ["active"]}),
        ("redis.info", {"url": "redis://x", "min_hit_rate": 70}),
        ("redis.flush", {"url": "redis://x"}),
        ("redis.flush", {"url": "redis://x", "pattern": "a:*", "all": True}),
        ("redis.flush", {"url": "redis://x", "all": False}),
        ("cache.warm", {"urls": []}),
        ("cache.warm", {"urls": ["http://x"], "batch_size": 0}),
        ("prometheus.query", {"url": "http://x", "query": "up", "threshold": {"op": "=>", "value": 1}}),
        ("prometheus.query", {"url": "http://x", "query": "up", "threshold": {"op": "<"}}),
        ("notify.slack", {"channel": "#incident"}),
        ("wait", {"duration": "soon"}),
        ("manual.approve", {}),
    ],
)
def test_invalid_parameters_are_refused(name: str, params: dict[str, Any]) -> None:
    assert not Draft202012Validator(SPECS[name].params).is_valid(params)


@pytest.mark.parametrize(
    "params",
    [
        {"url": "redis://x", "pattern": "trending:*"},
        {"url": "redis://x", "all": True},
        {"url": "redis://x", "pattern": "a", "all": False},
    ],
)
def test_flush_takes_exactly_a_pattern_or_all(params: dict[str, Any]) -> None:
    assert Draft202012Validator(SPECS["redis.flush"].params).is_valid(params)


def _minimal(name: str) -> dict[str, Any]:
    samples = {
        "url": "http://x", "method": "GET", "host": "x", "dsn": "host=x", "sql": "SELECT 1", "role": "app",
        "urls": ["http://x"], "query": "up", "channel": "#incident", "text": "t", "json": {}, "prompt": "ok?",
        "duration": "1s", "kind": "Deployment", "name": "api", "namespace": "shorts", "by": 2, "max": 10,
        "max_age": "26h", "pattern": "a:*",
    }  # fmt: skip
    return {p: samples[p] for p in SPECS[name].params.get("required", [])} | (
        {"pattern": "a:*"} if name == "redis.flush" else {}
    )
