"""The manual's runbooks through the real `remediation` command, against real servers.

db-pool-reset really terminates the idle sessions, cache-flush-warm really removes only the matching
keys and refills them through the service, morning-check reports each failed check, and `plan`
changes nothing (the servers' state is read before and after).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
import yaml

from tests.servers.postgres_server import PostgresServer
from tests.servers.prometheus_server import PrometheusServer
from tests.servers.redis_server import RedisServer
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub
from tests.servers.tls_server import TLSServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def service(redis_server: RedisServer) -> Iterator[ShortsStub]:
    """The Shorts stand-in as the runbooks see it: its cache keys live under `cache:` in the real Redis."""
    stub = ShortsStub(cache=redis_server.client(), key_prefix="cache:")
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def api(service: ShortsStub, cache: redis.Redis) -> ShortsStub:
    service.reset()
    return service


@pytest.fixture
def profile(tmp_path: Path, api: ShortsStub, postgres: PostgresServer, redis_server: RedisServer) -> Path:
    path = tmp_path / "profile.yaml"
    settings = {
        "api_url": api.url,
        "app_url": api.url,
        "admin_url": api.url,
        "postgres_dsn": postgres.dsn(),
        "redis_url": redis_server.url,
        "namespace": "shorts",
    }
    path.write_text(yaml.safe_dump(settings))
    return path


def remediation(
    *args: str, profile: Path, state: Path, env: dict[str, str] | None = None
) -> tuple[int, dict[str, Any] | str]:
    """Run the real CLI in a child process, as an on-call engineer would; stdin is not a terminal."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "REMEDIATION_", "SLACK"))}
    environ["KUBECONFIG"] = str(state / "no-kubeconfig")  # these tests have no cluster
    environ.update(env or {})
    command = [sys.executable, "-m", "remediation.cli", *args, "--profile", str(profile)]
    if args[0] == "run":
        command += ["--state-dir", str(state)]
    done = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )
    assert "Traceback" not in done.stderr, done.stderr
    if "--output" in args and args[args.index("--output") + 1] == "json":
        return done.returncode, json.loads(done.stdout)
    return done.returncode, done.stdout + done.stderr


def steps(result: Any) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in result["steps"]}


# ---- db-pool-reset --------------------------------------------------------------------------------


@pytest.fixture
def pool_exhausted(postgres: PostgresServer) -> Iterator[dict[str, Any]]:
    """The classic pile-up: an app session idle in a transaction holds a row lock, a request waits on it
    (an *active* session), and the pool also holds idle app sessions. Another role's sessions must
    survive the reset. (That sessions idle for less than idle_for survive is shown by the action's own
    tests: here the command's start-up time would blur the line.)"""
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("GRANT SELECT, UPDATE ON videos TO app, other")
    holder = postgres.session("app")
    holder.execute("BEGIN")
    holder.execute("UPDATE videos SET title = title WHERE id = 1")
    idle = [postgres.session("app") for _ in range(2)]
    other = postgres.session("other")
    time.sleep(1.2)  # older than the idle_for (1s) the test runs with
    waiter = postgres.session("other")
    blocked = threading.Thread(target=lambda: waiter.execute("UPDATE videos SET title = title WHERE id = 1"))
    blocked.start()
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
        while not admin.execute(query, [waiter.info.backend_pid]).fetchone():
            assert blocked.is_alive(), "the waiting UPDATE ended instead of waiting on the lock"
            time.sleep(0.02)
    yield {
        "doomed": {holder.info.backend_pid, *(c.info.backend_pid for c in idle)},
        "spared": {other.info.backend_pid, waiter.info.backend_pid},
        "waiter": blocked,
    }
    holder.close()  # releases the lock if the test left it held, so the waiting UPDATE ends
    blocked.join(timeout=10)
    for conn in (*idle, other, waiter):
        conn.close()


def test_db_pool_reset_terminates_the_idle_sessions_and_frees_the_pool(
    pool_exhausted: dict[str, Any], postgres: PostgresServer, profile: Path, slack: SlackStub, tmp_path: Path
) -> None:
    code, result = remediation(
        "run", "db-pool-reset", "--output", "json", "--param", "app_role=app", "--param", "idle_for=1s",
        "--param", "max_active_connections=1",
        profile=profile, state=tmp_path, env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    assert (code, result["outcome"]) == (0, "success"), result
    by_id = steps(result)
    assert by_id["inspect"]["outcome"] == "failed"  # 1 active (the waiting request) of 1 allowed
    assert by_id["inspect"]["output"]["active_connections"] == 1
    assert set(by_id["reset"]["output"]["pids"]) == pool_exhausted["doomed"]
    assert by_id["verify"]["outcome"] == "success"
    assert by_id["verify"]["output"]["active_connections"] == 0  # the lock is gone, the request went through
    live = postgres.live_pids()
    assert not pool_exhausted["doomed"] & live
    assert pool_exhausted["spared"] <= live
    pool_exhausted["waiter"].join(timeout=10)
    assert not pool_exhausted["waiter"].is_alive()
    assert [p.json["channel"] for p in slack.posts] == ["#ops"]
    assert "3개 세션 종료" in slack.posts[0].json["text"]


@pytest.fixture
def busy_session(postgres: PostgresServer) -> Iterator[int]:
    """Another role's session busy in a long query: an active session no pool reset may touch."""
    conn = postgres.session("other")

    def busy() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(60)")

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'"
        while not admin.execute(query, [conn.info.backend_pid]).fetchone():
            time.sleep(0.02)
    yield conn.info.backend_pid
    conn.cancel_safe()
    worker.join()
    conn.close()


def test_db_pool_reset_escalates_when_the_pool_stays_exhausted(
    busy_session: int, postgres: PostgresServer, profile: Path, slack: SlackStub, tmp_path: Path
) -> None:
    code, result = remediation(
        "run", "db-pool-reset", "--output", "json", "--param", "app_role=app", "--param", "idle_for=1s",
        "--param", "max_active_connections=1",
        profile=profile, state=tmp_path, env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    assert (code, result["outcome"]) == (3, "escalated"), result
    by_id = steps(result)
    assert by_id["verify"]["outcome"] == "failed"
    # A crossed threshold may pass by itself: verify polls the pool until its retries run out.
    book = yaml.safe_load((ROOT / "runbooks" / "db-pool-reset.yaml").read_text(encoding="utf-8"))
    verify = next(step for step in book["steps"] if step["id"] == "verify")
    assert by_id["verify"]["attempts"] == verify["retry"]["attempts"]
    assert busy_session in postgres.live_pids()  # active sessions are never terminated
    assert [p.json["channel"] for p in slack.posts] == ["#incident"]
    assert slack.posts[0].json["text"].startswith("[P1] DB 연결 풀 리셋 후에도")


# ---- cache-flush-warm -----------------------------------------------------------------------------

SEED = {
    "cache:trending:KR": "stale",
    "cache:trending:US": "stale",
    "cache:popular:all": "stale",
    "cache:search:shorts": "stale",
    "session:42": "user session",
    "user:7:prefs": "prefs",
}


def test_cache_flush_warm_removes_only_matching_keys_and_refills_them(
    api: ShortsStub, cache: redis.Redis, profile: Path, slack: SlackStub, tmp_path: Path
) -> None:
    cache.mset(SEED)
    code, result = remediation(
        "run", "cache-flush-warm", "--output", "json", "--param", "force=true",
        profile=profile, state=tmp_path, env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    assert (code, result["outcome"]) == (0, "success"), result
    by_id = steps(result)
    assert by_id["flush"]["output"] == {"deleted": 4}
    assert by_id["flush-all"]["outcome"] == "skipped"
    assert by_id["warm"]["output"] == {"success": 2, "failed": 0, "errors": []}
    # The warm-up refilled what the service serves (trending for the default region, popular); the
    # keys nobody asked for stay gone; keys outside the pattern were never touched.
    assert set(cache.keys("*")) == {"cache:trending:KR", "cache:popular:all", "session:42", "user:7:prefs"}
    assert json.loads(cache.get("cache:trending:KR"))["key"] == "KR"
    assert cache.get("session:42") == "user session"
    assert [p.json["channel"] for p in slack.posts] == ["#ops"]


def test_a_whole_database_flush_is_refused_without_approval(
    api: ShortsStub, cache: redis.Redis, profile: Path, slack: SlackStub, tmp_path: Path
) -> None:
    cache.mset(SEED)
    code, result = remediation(
        "run", "cache-flush-warm", "--output", "json", "--param", "force=true", "--param", "flush_all=true",
        profile=profile, state=tmp_path, env={"SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    assert code == 4, result  # refused: nobody approved (no terminal, no --yes)
    assert steps(result)["flush-all"]["error_kind"] == "approval"
    assert set(cache.keys("*")) == set(SEED)


# ---- morning-check --------------------------------------------------------------------------------


@pytest.fixture
def morning(
    profile: Path, prometheus: PrometheusServer, tls_servers: dict[int, TLSServer], tmp_path: Path
) -> dict[str, Any]:
    """The profile with Prometheus, and a trust store holding the test certificates (as the system's)."""
    settings = yaml.safe_load(profile.read_text()) | {"prometheus_url": prometheus.url}
    profile.write_text(yaml.safe_dump(settings))
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text("".join(server.ca_file.read_text() for server in tls_servers.values()))
    return {"SSL_CERT_FILE": str(bundle)}


def _healthy_cache(cache: redis.Redis) -> None:
    cache.set("cache:trending:KR", "x")
    for _ in range(9):
        cache.get("cache:trending:KR")
    cache.get("cache:absent")  # 9 hits, 1 miss: 90 %


def test_morning_check_passes_every_check_it_can_reach(
    morning: dict[str, str], postgres: PostgresServer, cache: redis.Redis, tls_servers: dict[int, TLSServer],
    profile: Path, slack: SlackStub, tmp_path: Path,
) -> None:  # fmt: skip
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_stat_statements_reset()")
    _healthy_cache(cache)
    code, result = remediation(
        "run", "morning-check", "--output", "json", "--param", "cert_hosts=localhost",
        "--param", f"cert_port={tls_servers[90].port}",
        profile=profile, state=tmp_path, env={**morning, "SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    by_id = steps(result)
    reachable = [
        "services",
        "database",
        "youtube-quota",
        "cache",
        "errors-24h",
        "cpu",
        "memory",
        "certificates",
    ]
    assert {i: by_id[i]["outcome"] for i in reachable} == dict.fromkeys(reachable, "success"), result
    assert by_id["youtube-quota"]["output"]["value"] == 75  # 6,000 of 8,000 units
    assert by_id["memory"]["output"]["value"] == 0.5
    # No cluster in this test: the backup check fails, the run says so, and #ops hears about it.
    assert by_id["backup"]["outcome"] == "failed"
    assert "kubeconfig" in by_id["backup"]["error"]
    assert (code, result["outcome"]) == (1, "failed")
    assert [p.json["channel"] for p in slack.posts] == ["#ops"]
    assert "backup" in slack.posts[0].json["text"]


def test_morning_check_reports_each_broken_thing(
    morning: dict[str, str], postgres: PostgresServer, cache: redis.Redis, tls_servers: dict[int, TLSServer],
    api: ShortsStub, profile: Path, slack: SlackStub, tmp_path: Path,
) -> None:  # fmt: skip
    api.behave("/health", status=503)  # the API is down
    with postgres.session("app") as conn:  # a statement averaging more than 1 s
        conn.execute("SELECT pg_sleep(1.1)")
    cache.get("cache:absent")  # hit rate 0 %
    code, result = remediation(
        "run", "morning-check", "--output", "json", "--param", "cert_hosts=localhost",
        "--param", f"cert_port={tls_servers[10].port}",  # expires in 10 days
        "--param", "quota_daily_units=7000",  # 6,000 units used: 86 % of this quota
        profile=profile, state=tmp_path, env={**morning, "SLACK_WEBHOOK_URL": slack.webhook_url},
    )  # fmt: skip
    assert isinstance(result, dict)
    by_id = steps(result)
    failed = {i for i, s in by_id.items() if s["outcome"] == "failed"}
    assert failed == {"services", "database", "youtube-quota", "cache", "certificates", "backup"}, result
    services = {r["item"]: r for r in by_id["services"]["output"]["results"]}
    assert services[f"{api.url}/health"]["outcome"] == "failed"
    assert "answered 503" in services[f"{api.url}/health"]["error"]
    assert by_id["services"]["attempts"] == 4  # the 503 is temporary: retried once; app and admin answered
    assert "statements average over 1000 ms" in by_id["database"]["error"]
    assert "which is not < 80" in by_id["youtube-quota"]["error"]
    assert "hit rate 0.0% is below 70%" in by_id["cache"]["error"]
    assert "fewer than 30" in by_id["certificates"]["error"]
    assert code == 1
    report = slack.posts[0].json["text"]
    assert all(check in report for check in failed)


# ---- plan -----------------------------------------------------------------------------------------


def _state(postgres: PostgresServer, cache: redis.Redis, api: ShortsStub, slack: SlackStub) -> dict[str, Any]:
    return {
        "sessions": postgres.live_pids(),
        "keys": {k: cache.get(k) for k in cache.keys("*")},
        "redis_connections": cache.info("stats")["total_connections_received"],
        "service_requests": list(api.traffic.events),
        "slack_posts": list(slack.posts),
    }


def test_plan_changes_nothing(
    pool_exhausted: dict[str, Any], postgres: PostgresServer, cache: redis.Redis, api: ShortsStub,
    profile: Path, slack: SlackStub, tmp_path: Path,
) -> None:  # fmt: skip
    cache.mset(SEED)
    before = _state(postgres, cache, api, slack)
    env = {"SLACK_WEBHOOK_URL": slack.webhook_url}
    code, pool_plan = remediation(
        "plan", "db-pool-reset", "--param", "app_role=app", "--param", "idle_for=1s",
        profile=profile, state=tmp_path, env=env,
    )  # fmt: skip
    assert code == 0, pool_plan
    assert "would terminate sessions of role 'app'" in str(pool_plan)
    code, cache_plan = remediation(
        "plan", "cache-flush-warm", "--param", "force=true", "--param", "flush_all=true",
        profile=profile, state=tmp_path, env=env,
    )  # fmt: skip
    assert code == 0, cache_plan
    assert "would UNLINK keys matching 'cache:*'" in str(cache_plan)
    assert "would ask for approval, then UNLINK every key" in str(cache_plan)
    assert "would GET 2 URLs to warm the cache" in str(cache_plan)
    assert _state(postgres, cache, api, slack) == before
