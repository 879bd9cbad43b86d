"""PostgreSQL actions against a real PostgreSQL 15 with pg_stat_statements."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from remediation.errors import PermanentError, TemporaryError, ThresholdCrossed
from tests.servers.context import RecordingContext, run_action
from tests.servers.net import Blackhole
from tests.servers.postgres_server import PASSWORDS, PostgresServer

pytestmark = pytest.mark.integration

APP = RecordingContext(secrets={"PG_APP_PASSWORD": PASSWORDS["app"]})


@pytest.fixture
def clean_stats(postgres: PostgresServer) -> PostgresServer:
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_stat_statements_reset()")
    return postgres


@pytest.fixture
def active_session(postgres: PostgresServer) -> Iterator[int]:
    """A session of `other` busy in a long query while the test runs (state = 'active')."""
    conn = postgres.session("other")
    pid = conn.info.backend_pid

    def busy() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(30)")

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    with psycopg.connect(postgres.dsn(), autocommit=True) as admin:
        while not admin.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", [pid]
        ).fetchone():
            time.sleep(0.02)
    yield pid
    conn.cancel_safe()
    worker.join()
    conn.close()


# ---- postgres.check -------------------------------------------------------------------------------


def test_check_counts_active_sessions_and_passes_under_the_limit(
    clean_stats: PostgresServer, active_session: int
) -> None:
    out = run_action("postgres.check", {"dsn": clean_stats.dsn(), "slow_query_ms": 60000})
    assert out["active_connections"] == 1  # the busy session; the check's own is not counted
    assert out["slow_queries"] == []


def test_check_fails_when_active_sessions_reach_the_limit(
    clean_stats: PostgresServer, active_session: int
) -> None:
    with pytest.raises(
        ThresholdCrossed, match=r"1 active sessions \(limit 1\): the pool is exhausted"
    ) as err:
        run_action("postgres.check", {"dsn": clean_stats.dsn(), "max_active": 1, "slow_query_ms": 60000})
    assert err.value.output["active_connections"] == 1


def test_check_finds_slow_statements_in_pg_stat_statements(clean_stats: PostgresServer) -> None:
    with clean_stats.session("app") as conn:
        conn.execute("SELECT pg_sleep(0.3), 'slow report'")
    with pytest.raises(ThresholdCrossed, match="1 statements average over 200 ms") as err:
        run_action("postgres.check", {"dsn": clean_stats.dsn(), "slow_query_ms": 200})
    slow = err.value.output["slow_queries"]
    assert [q["query"] for q in slow] == ["SELECT pg_sleep($1), $2"]
    assert slow[0]["calls"] == 1 and slow[0]["mean_ms"] >= 300


def test_check_tolerates_slow_statements_up_to_the_allowance(clean_stats: PostgresServer) -> None:
    with clean_stats.session("app") as conn:
        conn.execute("SELECT pg_sleep(0.3)")
    out = run_action(
        "postgres.check", {"dsn": clean_stats.dsn(), "slow_query_ms": 200, "max_slow_queries": 1}
    )
    assert len(out["slow_queries"]) == 1


def test_check_as_the_app_role_with_its_password_secret(clean_stats: PostgresServer) -> None:
    out = run_action(
        "postgres.check", {"dsn": clean_stats.dsn("app"), "password_secret": "PG_APP_PASSWORD"}, APP
    )
    assert out["active_connections"] == 0


def test_wrong_password_is_permanent(postgres: PostgresServer) -> None:
    ctx = RecordingContext(secrets={"PG_APP_PASSWORD": "wrong"})
    with pytest.raises(PermanentError, match="authentication failed"):
        run_action("postgres.check", {"dsn": postgres.dsn("app"), "password_secret": "PG_APP_PASSWORD"}, ctx)


def test_refused_connection_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError, match="check that the database is up"):
        run_action(
            "postgres.check", {"dsn": f"host=127.0.0.1 port={refused_port} dbname=shorts user=postgres"}
        )


def test_hung_server_is_a_temporary_timeout(blackhole: Blackhole) -> None:
    dsn = f"host=127.0.0.1 port={blackhole.port} dbname=shorts user=postgres"
    with pytest.raises(TemporaryError, match="timeout"):
        run_action("postgres.check", {"dsn": dsn, "connect_timeout": "2s"})


def test_missing_pg_stat_statements_is_permanent_with_the_fix(postgres: PostgresServer) -> None:
    # the `postgres` database has no pg_stat_statements extension
    with pytest.raises(PermanentError, match="CREATE EXTENSION pg_stat_statements"):
        run_action("postgres.check", {"dsn": postgres.dsn(dbname="postgres")})


# ---- postgres.query -------------------------------------------------------------------------------


def test_query_returns_rows_as_json_values(postgres: PostgresServer) -> None:
    out = run_action(
        "postgres.query",
        {
            "dsn": postgres.dsn(),
            "sql": "SELECT id, title, now() AS at FROM videos WHERE id <= %s ORDER BY id",
            "args": [2],
        },
    )
    assert out["row_count"] == 2
    assert [(r["id"], r["title"]) for r in out["rows"]] == [(1, "video 1"), (2, "video 2")]
    assert isinstance(out["rows"][0]["at"], str)


def test_query_runs_read_only(postgres: PostgresServer) -> None:
    with pytest.raises(PermanentError, match="read-only transaction"):
        run_action(
            "postgres.query", {"dsn": postgres.dsn(), "sql": "INSERT INTO videos (title) VALUES ('x')"}
        )
    with psycopg.connect(postgres.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM videos").fetchone() == (50,)


def test_query_row_bounds(postgres: PostgresServer) -> None:
    sql = "SELECT id FROM videos"
    with pytest.raises(PermanentError, match="50 rows, expected at most 10"):
        run_action("postgres.query", {"dsn": postgres.dsn(), "sql": sql, "expect": {"rows_max": 10}})
    with pytest.raises(PermanentError, match="0 rows, expected at least 1"):
        run_action(
            "postgres.query", {"dsn": postgres.dsn(), "sql": sql + " WHERE id < 0", "expect": {"rows_min": 1}}
        )


def test_query_with_bad_sql_is_permanent(postgres: PostgresServer) -> None:
    with pytest.raises(PermanentError, match="fix the statement"):
        run_action("postgres.query", {"dsn": postgres.dsn(), "sql": "SELEC 1"})


# ---- postgres.terminate_idle: the pool reset -------------------------------------------------------


def test_terminate_idle_ends_only_the_roles_old_idle_sessions(postgres: PostgresServer) -> None:
    old_idle = [postgres.session("app") for _ in range(3)]
    old_in_tx = postgres.session("app")
    old_in_tx.execute("BEGIN")
    old_in_tx.execute("SELECT count(*) FROM videos")  # now "idle in transaction"
    other_role = postgres.session("other")
    time.sleep(2.5)  # these sessions are now idle for more than idle_for (2s) ...
    fresh = postgres.session("app")  # ... and this one is not
    doomed = {c.info.backend_pid for c in [*old_idle, old_in_tx]}
    spared = {fresh.info.backend_pid, other_role.info.backend_pid}

    out = run_action(
        "postgres.terminate_idle",
        {"dsn": postgres.dsn("app"), "password_secret": "PG_APP_PASSWORD", "role": "app", "idle_for": "2s"},
        APP,
    )

    assert out["terminated"] == 4
    assert set(out["pids"]) == doomed
    live = postgres.live_pids()
    assert not doomed & live
    assert spared <= live
    for conn in [*old_idle, old_in_tx]:  # the clients notice: their connection is gone
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    fresh.execute("SELECT 1")
    for conn in [*old_idle, old_in_tx, other_role, fresh]:
        conn.close()


def test_terminate_idle_respects_the_states(postgres: PostgresServer) -> None:
    idle = postgres.session("app")
    in_tx = postgres.session("app")
    in_tx.execute("BEGIN")
    in_tx.execute("SELECT 1")
    out = run_action(
        "postgres.terminate_idle",
        {"dsn": postgres.dsn(), "role": "app", "idle_for": "0s", "states": ["idle in transaction"]},
    )
    assert out["pids"] == [in_tx.info.backend_pid]
    assert idle.info.backend_pid in postgres.live_pids()
    idle.close()
    in_tx.close()


def test_terminate_idle_never_touches_active_sessions(postgres: PostgresServer, active_session: int) -> None:
    out = run_action("postgres.terminate_idle", {"dsn": postgres.dsn(), "role": "other", "idle_for": "0s"})
    assert active_session not in out["pids"]
    assert active_session in postgres.live_pids()


def test_terminate_idle_with_nothing_to_do(postgres: PostgresServer) -> None:
    out = run_action(
        "postgres.terminate_idle", {"dsn": postgres.dsn(), "role": "nobody-uses-this", "idle_for": "0s"}
    )
    assert out == {"terminated": 0, "pids": []}


def test_a_role_may_not_terminate_another_roles_sessions(postgres: PostgresServer) -> None:
    victim = postgres.session("other")
    with pytest.raises(PermanentError, match=r"permission denied|must be a member"):
        run_action(
            "postgres.terminate_idle",
            {
                "dsn": postgres.dsn("app"),
                "password_secret": "PG_APP_PASSWORD",
                "role": "other",
                "idle_for": "0s",
            },
            APP,
        )
    assert victim.info.backend_pid in postgres.live_pids()
    victim.close()


# ---- postgres.maintain ----------------------------------------------------------------------------


def test_maintain_vacuums_analyzes_and_reindexes(postgres: PostgresServer) -> None:
    out = run_action("postgres.maintain", {"dsn": postgres.dsn(), "reindex": True})
    assert set(out["durations"]) == {"vacuum_analyze", "reindex"}
    with psycopg.connect(postgres.dsn()) as conn:
        analyzed = conn.execute(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'videos'"
        ).fetchone()
    assert analyzed is not None and analyzed[0] is not None
