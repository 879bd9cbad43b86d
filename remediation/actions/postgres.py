"""PostgreSQL actions: health (`postgres.check`), read-only queries, the pool reset and weekly maintenance.

The DSN comes from the profile and carries no password; the password, when needed, comes from libpq's
environment (PGPASSWORD, ~/.pgpass) or from a secret named by `password_secret`.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from remediation.actions._display import safe_dsn, shorten
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._lazy import LazyModule
from remediation.actions._params import params_schema, secret_name, string, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import ActionError, PermanentError, TemporaryError, ThresholdCrossed

if TYPE_CHECKING:
    import psycopg
    from psycopg import errors as pgerrors
    from psycopg import rows, sql
else:  # imported on first use: see _lazy.py
    psycopg = LazyModule("psycopg")
    pgerrors = LazyModule("psycopg.errors")
    rows = LazyModule("psycopg.rows")
    sql = LazyModule("psycopg.sql")

MAX_ROWS = 1000  # rows kept in a step's output; row_count still tells the whole number

_CONNECTION = {
    "dsn": string("libpq connection string without a password, e.g. ${profile.postgres_dsn}."),
    "password_secret": secret_name("The database password, when libpq's environment does not provide it."),
    "connect_timeout": duration_schema("How long connecting may take (libpq waits at least 2s).", "10s"),
}
STATES = ["idle", "idle in transaction", "idle in transaction (aborted)"]

CHECK_PARAMS = params_schema(
    {
        **_CONNECTION,
        "max_active": {
            "type": "integer",
            "minimum": 1,
            "default": 100,
            "description": "Fail when this many sessions are active at once (the manual: fewer than 100).",
        },
        "slow_query_ms": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 1000,
            "description": "A statement whose mean time (pg_stat_statements) is above this is slow.",
        },
        "max_slow_queries": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Fail when more slow statements than this are found.",
        },
    },
    required=("dsn",),
)
QUERY_PARAMS = params_schema(
    {
        **_CONNECTION,
        "sql": string("One SQL statement, run in a READ ONLY transaction."),
        "args": {
            "type": "array",
            "description": "Values bound to the %s placeholders (safer than templating them into sql).",
        },
        "expect": {
            "type": "object",
            "description": "How many rows a healthy answer has.",
            "additionalProperties": False,
            "properties": {
                "rows_min": {"type": "integer", "minimum": 0, "description": "Fail with fewer rows."},
                "rows_max": {"type": "integer", "minimum": 0, "description": "Fail with more rows."},
            },
        },
    },
    required=("dsn", "sql"),
)
TERMINATE_PARAMS = params_schema(
    {
        **_CONNECTION,
        "role": string("Only sessions of this database role are terminated (e.g. the application's)."),
        "idle_for": duration_schema("Only sessions idle for longer than this.", "5m"),
        "states": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"enum": STATES},
            "default": ["idle", "idle in transaction"],
            "description": "The pg_stat_activity states that count as idle.",
        },
    },
    required=("dsn", "role"),
)
MAINTAIN_PARAMS = params_schema(
    {
        **_CONNECTION,
        "vacuum_analyze": {"type": "boolean", "default": True, "description": "Run VACUUM (ANALYZE)."},
        "reindex": {
            "type": "boolean",
            "default": False,
            "description": "Run REINDEX DATABASE (locks tables).",
        },
    },
    required=("dsn",),
)


def _error(exc: psycopg.Error, where: str) -> ActionError:
    """Connectivity trouble is temporary; wrong credentials, SQL or privileges are not."""
    text = str(exc).strip().replace("\n", " ")
    output: dict[str, object] = {"dsn": where, "error": type(exc).__name__, "detail": text}
    if isinstance(exc, pgerrors.InsufficientPrivilege) or "permission denied" in text:
        return PermanentError(f"{where}: {text}; grant the role the privilege or use another role", output)
    if isinstance(exc, pgerrors.UndefinedTable) and "pg_stat_statements" in text:
        return PermanentError(
            f"{where}: pg_stat_statements is not installed; add it to shared_preload_libraries and "
            "run CREATE EXTENSION pg_stat_statements",
            output,
        )
    if "authentication failed" in text or "does not exist" in text or "no password supplied" in text:
        return PermanentError(f"{where}: {text}; check the DSN's user and database and the password", output)
    if isinstance(exc, psycopg.OperationalError | pgerrors.QueryCanceled):
        return TemporaryError(
            f"{where}: {text}; check that the database is up and reachable, then retry", output
        )
    return PermanentError(f"{where}: {text}; fix the statement or the parameters", output)


async def _connect(
    ctx: ActionContext, p: Mapping[str, Any], autocommit: bool
) -> psycopg.AsyncConnection[Any]:
    extra: dict[str, Any] = {}
    if p.get("password_secret"):
        extra["password"] = ctx.secret(p["password_secret"])
    try:
        return await psycopg.AsyncConnection.connect(
            p["dsn"],
            autocommit=autocommit,
            connect_timeout=max(2, round(parse_duration(p["connect_timeout"]))),
            application_name="remediation",
            row_factory=rows.dict_row,
            **extra,
        )
    except psycopg.Error as exc:
        raise _error(exc, safe_dsn(p["dsn"])) from None


def _jsonable(value: Any) -> Any:
    """Run records are JSON: numbers, strings, booleans and null pass; the rest becomes its text form."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# ---- postgres.check -------------------------------------------------------------------------------

ACTIVE_SQL = "SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()"
SLOW_SQL = (
    "SELECT query, calls, mean_exec_time FROM pg_stat_statements "
    "WHERE mean_exec_time > %s ORDER BY mean_exec_time DESC LIMIT 20"
)


def describe_check(params: Params) -> str:
    p = with_defaults(CHECK_PARAMS, params)
    return (
        f"would check {safe_dsn(p['dsn'])}: fewer than {p['max_active']} active sessions, at most "
        f"{p['max_slow_queries']} statements slower than {p['slow_query_ms']} ms on average"
    )


@action(
    "postgres.check",
    summary="Count active sessions (pg_stat_activity) and find slow statements (pg_stat_statements).",
    params=CHECK_PARAMS,
    mutates=False,
    describe=describe_check,
    outputs=("active_connections", "slow_queries"),
)
async def check(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(CHECK_PARAMS, params)
    where = safe_dsn(p["dsn"])
    async with await _connect(ctx, p, autocommit=True) as conn:
        try:
            active = (await (await conn.execute(ACTIVE_SQL)).fetchone() or {"n": 0})["n"]
            rows = await (await conn.execute(SLOW_SQL, [p["slow_query_ms"]])).fetchall()
        except psycopg.Error as exc:
            raise _error(exc, where) from None
    slow = [
        {"query": shorten(r["query"], 200), "calls": r["calls"], "mean_ms": round(r["mean_exec_time"], 1)}
        for r in rows
    ]
    output = {"active_connections": active, "slow_queries": slow}
    problems = []
    if active >= p["max_active"]:
        problems.append(f"{active} active sessions (limit {p['max_active']}): the pool is exhausted")
    if len(slow) > p["max_slow_queries"]:
        problems.append(
            f"{len(slow)} statements average over {p['slow_query_ms']} ms (allowed {p['max_slow_queries']}), "
            f"slowest: {slow[0]['query']!r}"
        )
    if problems:
        raise ThresholdCrossed(
            f"{where}: {'; '.join(problems)}; see the db-pool-reset runbook", output=output
        )
    return output


# ---- postgres.query -------------------------------------------------------------------------------


def describe_query(params: Params) -> str:
    statement = shorten(" ".join(str(params["sql"]).split()), 200)
    return f"would run read-only on {safe_dsn(params['dsn'])}: {statement}"


@action(
    "postgres.query",
    summary="Run one SQL statement in a READ ONLY transaction and check how many rows it returns.",
    params=QUERY_PARAMS,
    mutates=False,
    describe=describe_query,
    outputs=("rows", "row_count"),
)
async def query(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(QUERY_PARAMS, params)
    where = safe_dsn(p["dsn"])
    async with await _connect(ctx, p, autocommit=False) as conn:
        await conn.set_read_only(True)  # psycopg then opens the transaction with BEGIN READ ONLY
        try:
            cursor = await conn.execute(p["sql"], p.get("args"))
            rows = await cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise _error(exc, where) from None
    output = {"rows": [_jsonable(r) for r in rows[:MAX_ROWS]], "row_count": len(rows)}
    expect = p.get("expect", {})
    if "rows_min" in expect and len(rows) < expect["rows_min"]:
        raise PermanentError(
            f"{where}: {len(rows)} rows, expected at least {expect['rows_min']}", output=output
        )
    if "rows_max" in expect and len(rows) > expect["rows_max"]:
        raise PermanentError(
            f"{where}: {len(rows)} rows, expected at most {expect['rows_max']}", output=output
        )
    return output


# ---- postgres.terminate_idle ----------------------------------------------------------------------

# pg_terminate_backend(pid, timeout) (PostgreSQL 14+) waits until the session is really gone, so
# `terminated` counts sessions that ended, not signals sent.
TERMINATE_SQL = """
SELECT pid, pg_terminate_backend(pid, 5000) AS gone
FROM pg_stat_activity
WHERE usename = %(role)s
  AND state = ANY(%(states)s)
  AND state_change < now() - make_interval(secs => %(seconds)s)
  AND pid <> pg_backend_pid()
  AND backend_type = 'client backend'
"""


def describe_terminate(params: Params) -> str:
    p = with_defaults(TERMINATE_PARAMS, params)
    return (
        f"would terminate sessions of role {p['role']!r} in state {' or '.join(map(repr, p['states']))} "
        f"for more than {p['idle_for']} on {safe_dsn(p['dsn'])}"
    )


@action(
    "postgres.terminate_idle",
    summary="The pool reset: terminate a role's idle and idle-in-transaction sessions older than idle_for.",
    params=TERMINATE_PARAMS,
    mutates=True,
    describe=describe_terminate,
    outputs=("terminated", "pids"),
)
async def terminate_idle(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(TERMINATE_PARAMS, params)
    where = safe_dsn(p["dsn"])
    args = {"role": p["role"], "states": list(p["states"]), "seconds": parse_duration(p["idle_for"])}
    async with await _connect(ctx, p, autocommit=True) as conn:
        try:
            rows = await (await conn.execute(TERMINATE_SQL, args)).fetchall()
        except psycopg.Error as exc:
            raise _error(exc, where) from None
    pids = [r["pid"] for r in rows if r["gone"]]
    stuck = [r["pid"] for r in rows if not r["gone"]]
    output = {"terminated": len(pids), "pids": pids}
    if stuck:
        raise TemporaryError(
            f"{where}: sessions {stuck} did not end within 5s of pg_terminate_backend; retry", output=output
        )
    ctx.log(f"terminated {len(pids)} idle sessions of {p['role']!r}")
    return output


# ---- postgres.maintain ----------------------------------------------------------------------------


def describe_maintain(params: Params) -> str:
    p = with_defaults(MAINTAIN_PARAMS, params)
    work = [
        w for w, on in (("VACUUM (ANALYZE)", p["vacuum_analyze"]), ("REINDEX DATABASE", p["reindex"])) if on
    ]
    return f"would run {' and '.join(work) or 'nothing'} on {safe_dsn(p['dsn'])}"


@action(
    "postgres.maintain",
    summary="Weekly maintenance: VACUUM (ANALYZE) and optionally REINDEX DATABASE.",
    params=MAINTAIN_PARAMS,
    mutates=True,
    describe=describe_maintain,
    outputs=("durations",),
)
async def maintain(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(MAINTAIN_PARAMS, params)
    where = safe_dsn(p["dsn"])
    durations: dict[str, float] = {}
    # VACUUM and REINDEX DATABASE refuse to run inside a transaction block: autocommit.
    async with await _connect(ctx, p, autocommit=True) as conn:
        work: list[tuple[str, sql.SQL | sql.Composed]] = []
        if p["vacuum_analyze"]:
            work.append(("vacuum_analyze", sql.SQL("VACUUM (ANALYZE)")))
        if p["reindex"]:
            work.append(("reindex", sql.SQL("REINDEX DATABASE {}").format(sql.Identifier(conn.info.dbname))))
        for name, statement in work:
            started = time.perf_counter()
            try:
                await conn.execute(statement)
            except psycopg.Error as exc:
                raise _error(exc, where) from None
            durations[name] = round(time.perf_counter() - started, 3)
            ctx.log(f"{name} took {durations[name]}s")
    return {"durations": durations}
