"""Stack settings: the manual's numbers in production, and a clear message for each kind of mistake."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.evaluate import evaluate, raw_settings, stack_config
from infra.manual import MANUAL_VALUES
from infra.settings import SettingsError, parse_settings, path_expr, raw_from_pulumi_config

ROOT = Path(__file__).resolve().parents[3]


def lookup(raw: dict[str, Any], dotted: str) -> Any:
    value: Any = raw
    for part in dotted.split("."):
        value = value[part]
    return value


def test_every_stack_parses(production_raw: dict[str, Any]) -> None:
    for stack in ("local", "staging", "production"):
        settings = parse_settings(raw_settings(stack_config(stack)), stack)
        assert [s.name for s in settings.services] == ["api", "app", "admin"]
        assert settings.canary.weights == (5, 25, 50, 100)


def test_production_carries_every_number_of_the_manual(production_raw: dict[str, Any]) -> None:
    differences = {
        k: (lookup(production_raw, k), v) for k, v in MANUAL_VALUES.items() if lookup(production_raw, k) != v
    }
    assert differences == {}


def test_settings_are_frozen(production_raw: dict[str, Any]) -> None:
    settings = parse_settings(production_raw, "production")
    with pytest.raises(AttributeError):
        settings.canary.pause = "1m"  # type: ignore[misc]


Mutation = Callable[[dict[str, Any]], None]


def _set(dotted: str, value: Any) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        target = raw
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def _delete(dotted: str) -> Mutation:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        target = raw
        for part in parents:
            target = target[part]
        del target[last]

    return mutate


# (case id, mutation, fragments the message must contain: key, bad value, what is allowed, the fix)
BAD_SETTINGS: list[tuple[str, Mutation, list[str]]] = [
    (
        "hpa-cpu-150",
        _set("autoscaling.cpuTargetPercent", 150),
        [
            "shorts-platform:autoscaling.cpuTargetPercent is 150; allowed: an integer from 50 to 90",
            "fix: pulumi config set --path 'autoscaling.cpuTargetPercent' 70 --stack production",
        ],
    ),
    (
        "hpa-memory-40",
        _set("autoscaling.memoryTargetPercent", 40),
        [
            "shorts-platform:autoscaling.memoryTargetPercent is 40; allowed: an integer from 50 to 90",
            "pulumi config set --path 'autoscaling.memoryTargetPercent' 80 --stack production",
        ],
    ),
    (
        "hpa-cpu-wrong-type",
        _set("autoscaling.cpuTargetPercent", "seventy"),
        ['autoscaling.cpuTargetPercent is "seventy"; allowed: an integer from 50 to 90'],
    ),
    (
        "weights-not-increasing",
        _set("canary.weights", [5, 50, 25, 100]),
        [
            "shorts-platform:canary.weights is [5, 50, 25, 100]; "
            "allowed: weights strictly increasing and ending at 100",
            "pulumi config rm --path 'canary.weights' --stack production && "
            "pulumi config set --path 'canary.weights[0]' 5 --stack production && "
            "pulumi config set --path 'canary.weights[1]' 25 --stack production",
        ],
    ),
    (
        "weights-not-ending-at-100",
        _set("canary.weights", [5, 25, 50]),
        ["canary.weights is [5, 25, 50]; allowed: weights strictly increasing and ending at 100"],
    ),
    (
        "weights-wrong-type",
        _set("canary.weights", "5,25,50,100"),
        [
            'canary.weights is "5,25,50,100"; '
            "allowed: a list of at least 1 item(s), each an integer from 1 to 100"
        ],
    ),
    (
        "weight-above-100",
        _set("canary.weights", [5, 25, 50, 150]),
        ["shorts-platform:canary.weights[3] is 150; allowed: an integer from 1 to 100"],
    ),
    (
        "rate-limit-zero",
        _set("rateLimits.anonymous", 0),
        [
            "shorts-platform:rateLimits.anonymous is 0; allowed: an integer of at least 1",
            "pulumi config set --path 'rateLimits.anonymous' 100 --stack production",
        ],
    ),
    (
        "rate-limit-period-prose",
        _set("rateLimits.period", "15 minutes"),
        [
            'rateLimits.period is "15 minutes"; allowed: a duration such as "100ms", "5s", "10m" or "1h"',
            "pulumi config set --path 'rateLimits.period' '15m' --stack production",
        ],
    ),
    (
        "unknown-top-level-key",
        _set("replicas", 3),
        [
            "shorts-platform:replicas is an unknown key; "
            "allowed: one of the keys alerts, autoscaling, caching",
            "fix: pulumi config rm --path 'replicas' --stack production",
        ],
    ),
    (
        "unknown-nested-key",
        _set("services.api.replicas", 3),
        [
            "shorts-platform:services.api.replicas is an unknown key; "
            "allowed: one of the keys healthPath, image",
            "pulumi config rm --path 'services.api.replicas' --stack production",
        ],
    ),
    (
        "missing-key",
        _delete("rateLimits.period"),
        [
            "shorts-platform:rateLimits.period is missing; allowed: a duration such as",
            "pulumi config set --path 'rateLimits.period' '15m' --stack production",
        ],
    ),
    (
        "missing-group",
        _delete("alerts"),
        [
            "shorts-platform:alerts is missing; allowed: a map with the keys cacheMaxMemoryRatio",
            "pulumi config set --path 'alerts.youtubeDailyQuotaUnits' 8000 --stack production",
            "pulumi config set --path 'alerts.errorRatio' 0.001 --type float --stack production",
        ],
    ),
    (
        "error-ratio-out-of-range",
        _set("canary.maxErrorRatio", 1.5),
        [
            "canary.maxErrorRatio is 1.5; allowed: a number greater than 0 and less than 1",
            "pulumi config set --path 'canary.maxErrorRatio' 0.001 --type float --stack production",
        ],
    ),
    (
        "latest-image",
        _set("services.api.image", "ghcr.io/shorts-curation/api:latest"),
        [
            'services.api.image is "ghcr.io/shorts-curation/api:latest"; '
            "allowed: an image with a fixed tag or digest",
            "pulumi config set --path 'services.api.image' 'ghcr.io/shorts-curation/api:<version>'",
        ],
    ),
    (
        "untagged-image",
        _set("remediation.image", "ghcr.io/shorts-curation/remediation"),
        [
            'remediation.image is "ghcr.io/shorts-curation/remediation"; '
            "allowed: an image reference with an explicit tag"
        ],
    ),
    (
        "min-above-max-replicas",
        _set("services.api.minReplicas", 30),
        ["services.api.maxReplicas is 20; allowed: an integer of at least minReplicas (30)"],
    ),
    (
        "namespace-not-a-dns-label",
        _set("namespace", "Shorts_NS"),
        [
            'shorts-platform:namespace is "Shorts_NS"; allowed: a Kubernetes name',
            "pulumi config set --path 'namespace' 'shorts' --stack production",
        ],
    ),
    (
        "gzip-level-10",
        _set("compression.gzipLevel", 10),
        [
            "compression.gzipLevel is 10; allowed: an integer from 1 to 9",
            "pulumi config set --path 'compression.gzipLevel' 6 --stack production",
        ],
    ),
    (
        "password-in-dsn",
        _set("remediation.profile.postgres_dsn", "postgresql://remediation:hunter2@db:5432/shorts"),
        ["remediation.profile.postgres_dsn is", "allowed: a libpq URL without a password"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "fragments"), [c[1:] for c in BAD_SETTINGS], ids=[c[0] for c in BAD_SETTINGS]
)
def test_bad_setting_fails_with_its_own_message(
    production_raw: dict[str, Any], mutate: Mutation, fragments: list[str]
) -> None:
    mutate(production_raw)
    with pytest.raises(SettingsError) as caught:
        parse_settings(production_raw, "production")
    message = str(caught.value)
    assert message.startswith("stacks/Pulumi.production.yaml: ")
    for fragment in fragments:
        assert fragment in message


def test_the_table_has_distinct_messages(production_raw: dict[str, Any]) -> None:
    messages = set()
    for _, mutate, _ in BAD_SETTINGS:
        raw = json.loads(json.dumps(production_raw))
        mutate(raw)
        with pytest.raises(SettingsError) as caught:
            parse_settings(raw, "production")
        messages.add(str(caught.value))
    assert len(messages) == len(BAD_SETTINGS) >= 10


def test_every_problem_is_reported_at_once(production_raw: dict[str, Any]) -> None:
    production_raw["autoscaling"]["cpuTargetPercent"] = 150
    production_raw["rateLimits"]["premium"] = 0
    production_raw["bogus"] = True
    with pytest.raises(SettingsError) as caught:
        parse_settings(production_raw, "staging")
    error = caught.value
    assert [path_expr(p.path) for p in error.problems] == [
        "autoscaling.cpuTargetPercent",
        "bogus",
        "rateLimits.premium",
    ]
    assert "3 invalid stack setting(s)" in str(error)
    assert "--stack staging" in str(error)


def test_settings_error_is_a_run_error_so_pulumi_prints_no_stack_trace() -> None:
    # The language host catches pulumi.RunError and logs only its message.
    assert issubclass(SettingsError, pulumi.RunError)


def test_settings_come_from_pulumi_config(production_raw: dict[str, Any]) -> None:
    config = {
        f"shorts-platform:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in production_raw.items()
    }
    config["kubernetes:context"] = "elsewhere"  # other namespaces are not ours to check
    pulumi.runtime.set_all_config(config)
    try:
        assert raw_from_pulumi_config() == production_raw
    finally:
        pulumi.runtime.set_all_config({})


def test_program_refuses_a_bad_stack_before_declaring_anything(production_raw: dict[str, Any]) -> None:
    production_raw["canary"]["weights"] = [25, 5, 100]
    config = {f"shorts-platform:{k}": v for k, v in production_raw.items()}
    with pytest.raises(SettingsError, match=r"canary\.weights is \[25, 5, 100\]"):
        evaluate("production", config=config)


def test_the_program_reads_pulumi_config_and_fails_cleanly(production_raw: dict[str, Any]) -> None:
    """What `pulumi up` runs: main() reads the stack's config itself. The language host prints a RunError's
    message alone (no stack trace), so the message is the whole user experience."""
    from infra.evaluate import run_under_mocks
    from infra.program import main

    production_raw["rateLimits"]["authenticated"] = 0

    def program() -> dict[str, Any]:
        main()
        return {}

    with pytest.raises(SettingsError) as caught:
        run_under_mocks("production", program, {f"shorts-platform:{k}": v for k, v in production_raw.items()})
    assert str(caught.value).splitlines() == [
        "stacks/Pulumi.production.yaml: 1 invalid stack setting(s):",
        "  - shorts-platform:rateLimits.authenticated is 0; allowed: an integer of at least 1",
        "    fix: pulumi config set --path 'rateLimits.authenticated' 1000 --stack production",
    ]
