"""The repository's runbooks: valid against the real actions, documented, plannable, and runnable end to end
with the real actions' schemas but stubbed effects (the real effects are tested in tests/integration)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from remediation.actions.registry import ActionRegistry, load_all
from remediation.cli import main
from remediation.docs import render_index, render_runbook
from remediation.errors import PermanentError
from remediation.executor import Executor, RunResult
from remediation.inputs import load_profile
from remediation.loader import load_many
from remediation.model import Runbook

REPO = Path(__file__).resolve().parents[3]
RUNBOOKS = REPO / "runbooks"
PROFILE = REPO / "examples" / "profile.local.yaml"
NAMES = sorted(p.stem for p in RUNBOOKS.glob("*.yaml"))
MANUAL = [
    "morning-check",
    "afternoon-check",
    "evening-check",
    "api-restart",
    "db-pool-reset",
    "cache-flush-warm",
    "scale-out",
    "p0-incident",
    "traffic-overload",
    "canary-promote",
    "canary-abort",
    "weekly-db-maintenance",
]


class Stubs:
    """Replaces every real action's effect; keeps its schema, outputs and mutates flag."""

    def __init__(self, fail: Mapping[str, int] | None = None) -> None:
        self.fail = dict(fail or {})  # action name -> how many calls fail first
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def registry(self) -> ActionRegistry:
        registry = ActionRegistry()
        for name, spec in load_all().items().items():
            registry.register(dataclasses.replace(spec, run=self._runner(name, spec.outputs)))
        return registry

    def _runner(self, name: str, outputs: tuple[str, ...]) -> Any:
        async def run(ctx: Any, params: Mapping[str, Any]) -> dict[str, Any]:
            self.calls.append((name, dict(params)))
            if name == "manual.approve":
                assert await ctx.approve(params["prompt"])
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise PermanentError(f"{name} stub failure")
            return {key: 1 for key in outputs}

        return run

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def runbooks() -> dict[str, Runbook]:
    return {r.name: r for r in load_many([RUNBOOKS])}


async def _nosleep(_: float) -> None:
    return None


def run_stubbed(name: str, stubs: Stubs, tmp_path: Path, **params: Any) -> RunResult:
    registry = stubs.registry()
    book = load_many([RUNBOOKS / f"{name}.yaml"], registry)[0]
    values = {**{k: p.default for k, p in book.params.items() if p.has_default}, **params}
    executor = Executor(
        registry,
        state=tmp_path / "state",
        assume_yes=True,
        sleep=_nosleep,
        environ={"SLACK_WEBHOOK_URL": "https://hooks.example/T0/B0/x"},
    )
    return asyncio.run(executor.run(book, values, load_profile(PROFILE)))


def test_every_manual_playbook_has_a_runbook():
    assert sorted(MANUAL) == NAMES


def test_validate_runbooks_passes(capsys):
    assert main(["validate", str(RUNBOOKS)]) == 0
    assert "12 runbook(s) valid" in capsys.readouterr().out


def test_every_runbook_has_a_title_severity_and_prose():
    for book in runbooks().values():
        assert book.title and book.severity in ("P0", "P1", "P2", "P3")
        assert len(book.description.split()) >= 40, f"{book.name}: the description must be followable prose"


def test_generated_docs_are_current_and_deterministic():
    registry = load_all()
    books = runbooks()
    for book in books.values():
        text = render_runbook(book, registry, f"runbooks/{book.name}.yaml")
        assert text == render_runbook(book, registry, f"runbooks/{book.name}.yaml")
        committed = REPO / "docs" / "runbooks" / f"{book.name}.md"
        assert committed.read_text(encoding="utf-8") == text, f"run `make docs`: {committed} is stale"
    assert (REPO / "docs" / "runbooks" / "README.md").read_text(encoding="utf-8") == render_index(
        books.values()
    )


@pytest.mark.parametrize("name", NAMES)
def test_plan_resolves_templates_and_runs_nothing(name, capsys):
    stubs = Stubs()
    assert (
        main(
            ["plan", name, "--runbooks-dir", str(RUNBOOKS), "--profile", str(PROFILE)],
            registry=stubs.registry(),
        )
        == 0
    )
    out = capsys.readouterr().out
    assert stubs.calls == []
    assert "Nothing was executed." in out
    assert "<profile." not in out and "${" not in out  # every profile and param template resolved


@pytest.mark.parametrize("name", NAMES)
def test_happy_path_with_stubbed_effects(name, tmp_path):
    result = run_stubbed(name, Stubs(), tmp_path)
    assert result.outcome == "success", (result.reason, [(s.id, s.error) for s in result.steps])


def test_morning_check_carries_the_manuals_numbers():
    book = runbooks()["morning-check"]
    defaults = {k: p.default for k, p in book.params.items()}
    assert defaults["max_active_connections"] == 100
    assert defaults["quota_daily_units"] == 8000 and defaults["quota_alert_percent"] == 80
    assert defaults["min_cache_hit_rate"] == 0.7 and defaults["cert_min_days"] == 30
    assert defaults["max_errors_24h"] == 10
    assert defaults["max_cpu_ratio"] == 0.7 and defaults["max_memory_ratio"] == 0.8
    services = book.step("services")
    assert services.foreach is not None and services.foreach.concurrency >= 3


def test_morning_check_runs_every_check_and_reports_the_failures(tmp_path):
    stubs = Stubs(fail={"redis.info": 1, "tls.certificate": 1})
    result = run_stubbed("morning-check", stubs, tmp_path)
    assert (result.outcome, result.exit_code) == ("failed", 1)
    ran = {s.id: s.outcome for s in result.steps}
    assert ran["cache"] == "failed" and ran["certificates"] == "failed" and ran["backup"] == "success"
    slack = [params for name, params in stubs.calls if name == "notify.slack"]
    assert len(slack) == 1 and "cache, certificates" in slack[0]["text"] and slack[0]["channel"] == "#ops"
    urls = sorted(params["url"] for name, params in stubs.calls if name == "http.check")
    assert urls == ["http://127.0.0.1:8080/health", "http://127.0.0.1:8081", "http://127.0.0.1:8082"]


def test_api_restart_restarts_only_when_the_check_fails(tmp_path):
    healthy = Stubs()
    assert run_stubbed("api-restart", healthy, tmp_path / "a").outcome == "success"
    assert healthy.names() == ["http.check"]
    broken = Stubs(fail={"http.check": 1})  # a permanent failure: `confirm` is not retried
    result = run_stubbed("api-restart", broken, tmp_path / "b")
    assert result.outcome == "success"
    assert broken.names() == ["http.check", "kubernetes.restart", "kubernetes.wait_rollout", "http.check"]
    assert broken.calls[1][1] == {"kind": "Rollout", "name": "api", "namespace": "shorts"}


def test_api_restart_escalates_to_incident_when_it_does_not_help(tmp_path):
    stubs = Stubs(fail={"http.check": 100})
    result = run_stubbed("api-restart", stubs, tmp_path)
    assert (result.outcome, result.exit_code) == ("escalated", 3)
    assert stubs.calls[-1][0] == "notify.slack" and stubs.calls[-1][1]["channel"] == "#incident"


def test_p0_incident_uses_the_manuals_template(tmp_path):
    stubs = Stubs()
    result = run_stubbed(
        "p0-incident", stubs, tmp_path, service="api", affected_users="1200", symptoms="로그인 불가"
    )
    declare = next(params for name, params in stubs.calls if name == "notify.slack")
    first_line, impact = declare["text"].splitlines()[:2]
    assert first_line == f"[P0] api 장애 - {result.started_at}"
    assert impact == "영향: 1200명, 증상: 로그인 불가"
    assert declare["channel"] == "#incident"


def test_cache_flush_warm_flushes_by_pattern_and_warms_trending_and_popular(tmp_path):
    stubs = Stubs(fail={"redis.info": 1})  # memory above the limit
    assert run_stubbed("cache-flush-warm", stubs, tmp_path).outcome == "success"
    flush = next(params for name, params in stubs.calls if name == "redis.flush")
    warm = next(params for name, params in stubs.calls if name == "cache.warm")
    assert flush["pattern"] == "cache:*" and "all" not in flush
    assert warm == {
        "urls": ["http://127.0.0.1:8080/api/trending", "http://127.0.0.1:8080/api/popular"],
        "batch_size": 5,
        "pause": "100ms",
    }


def test_scale_out_adds_two_instances(tmp_path):
    stubs = Stubs(fail={"prometheus.query": 1})  # latency above 500 ms
    assert run_stubbed("scale-out", stubs, tmp_path).outcome == "success"
    scale = next(params for name, params in stubs.calls if name == "kubernetes.scale")
    assert scale == {
        "kind": "HorizontalPodAutoscaler",
        "name": "api",
        "namespace": "shorts",
        "by": 2,
        "max": 20,
    }


def test_docs_command_writes_the_committed_files(tmp_path, capsys):
    assert main(["docs", str(RUNBOOKS), "--out", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted([f"{name}.md" for name in NAMES] + ["README.md"])
    for name in written:
        committed = REPO / "docs" / "runbooks" / name
        assert (tmp_path / "out" / name).read_text(encoding="utf-8") == committed.read_text(encoding="utf-8")


def test_actions_command_lists_every_contract_action(capsys):
    assert main(["actions", "--output", "json"]) == 0
    import json

    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in (
        "http.check",
        "http.request",
        "tls.certificate",
        "postgres.check",
        "postgres.query",
        "postgres.terminate_idle",
        "postgres.maintain",
        "redis.info",
        "redis.flush",
        "cache.warm",
        "prometheus.query",
        "notify.slack",
        "notify.webhook",
        "manual.approve",
        "wait",
        "kubernetes.restart",
        "kubernetes.scale",
        "kubernetes.wait_rollout",
        "kubernetes.cronjob_last_success",
        "kubernetes.rollout_promote",
        "kubernetes.rollout_abort",
    ):
        assert name in listed
    assert listed["kubernetes.scale"]["mutates"] is True and listed["http.check"]["mutates"] is False
