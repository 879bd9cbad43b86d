"""Redis actions: `redis.info` (memory, hit rate) and `redis.flush` (by pattern with SCAN + UNLINK).

`redis.flush` never uses KEYS or FLUSHALL: SCAN walks the keyspace in small steps and UNLINK frees
memory in the background, so the cache keeps serving while it is cleaned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from remediation.actions._display import safe_url
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._lazy import LazyModule
from remediation.actions._params import params_schema, secret_name, string, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import ActionError, ApprovalDenied, PermanentError, TemporaryError, ThresholdCrossed

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    import redis.exceptions as rexc
else:  # imported on first use: see _lazy.py
    aioredis = LazyModule("redis.asyncio")
    rexc = LazyModule("redis.exceptions")

_CONNECTION = {
    "url": string("redis://host:port/db, e.g. ${profile.redis_url}."),
    "password_secret": secret_name("The Redis password (AUTH), when the server needs one."),
    "timeout": duration_schema("How long connecting and each command may take.", "5s"),
}
_RATIO = {"type": "number", "minimum": 0, "maximum": 1}

INFO_PARAMS = params_schema(
    {
        **_CONNECTION,
        "min_hit_rate": {
            **_RATIO,
            "description": "Fail when keyspace hits / (hits + misses) is below this (the manual: 0.7).",
        },
        "max_memory_ratio": {**_RATIO, "description": "Fail when used_memory / maxmemory is above this."},
    },
    required=("url",),
)
FLUSH_PARAMS = params_schema(
    {
        **_CONNECTION,
        "pattern": string("Glob of the keys to delete, e.g. 'trending:*' (SCAN MATCH syntax)."),
        "all": {
            "type": "boolean",
            "default": False,
            "description": "Delete every key of the database instead of a pattern; asks for approval first.",
        },
        "count": {
            "type": "integer",
            "minimum": 1,
            "maximum": 10000,
            "default": 500,
            "description": "Keys per SCAN step and per UNLINK batch.",
        },
    },
    required=("url",),
    # Exactly one of `pattern` / `all: true`: a forgotten pattern must never widen into a whole flush.
    **{
        "if": {"required": ["all"], "properties": {"all": {"const": True}}},
        "then": {"not": {"required": ["pattern"]}},
        "else": {"required": ["pattern"]},
    },
)


def _client(ctx: ActionContext, p: Mapping[str, Any]) -> aioredis.Redis:
    timeout = parse_duration(p["timeout"])
    password = ctx.secret(p["password_secret"]) if p.get("password_secret") else None
    return aioredis.Redis.from_url(
        p["url"],
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        decode_responses=False,
    )


def _error(exc: rexc.RedisError, where: str) -> ActionError:
    detail = str(exc) or type(exc).__name__
    output: dict[str, object] = {"url": where, "error": type(exc).__name__, "detail": detail}
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError | rexc.NoPermissionError):
        return PermanentError(f"{where}: {detail}; check password_secret and the user's ACL", output)
    if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | rexc.BusyLoadingError):
        return TemporaryError(f"{where}: {detail}; check that Redis is up and reachable, then retry", output)
    return PermanentError(f"{where}: {detail}", output)


# ---- redis.info -----------------------------------------------------------------------------------


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def describe_info(params: Params) -> str:
    limits = []
    if "min_hit_rate" in params:
        limits.append(f"hit rate >= {params['min_hit_rate']}")
    if "max_memory_ratio" in params:
        limits.append(f"memory <= {params['max_memory_ratio']} of maxmemory")
    return f"would read INFO of {safe_url(params['url'])}" + (
        f" and check {', '.join(limits)}" if limits else ""
    )


@action(
    "redis.info",
    summary="Read Redis memory use, keyspace hit rate and key count, against optional limits.",
    params=INFO_PARAMS,
    mutates=False,
    describe=describe_info,
    outputs=("used_memory", "maxmemory", "memory_ratio", "hit_rate", "keys"),
)
async def info(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(INFO_PARAMS, params)
    where = safe_url(p["url"])
    client = _client(ctx, p)
    try:
        stats = await client.info()
        keys = await client.dbsize()
    except rexc.RedisError as exc:
        raise _error(exc, where) from None
    finally:
        await client.aclose()
    hits, misses = int(stats.get("keyspace_hits", 0)), int(stats.get("keyspace_misses", 0))
    used, maxmemory = int(stats["used_memory"]), int(stats.get("maxmemory", 0))
    output = {
        "used_memory": used,
        "maxmemory": maxmemory,
        "memory_ratio": _ratio(used, maxmemory),  # None: no maxmemory set, so no ratio to judge
        "hit_rate": _ratio(hits, hits + misses),  # None: no lookups since the last restart
        "keys": keys,
    }
    _judge(ctx, p, output, where)
    return output


def _judge(ctx: ActionContext, p: Mapping[str, Any], output: Mapping[str, Any], where: str) -> None:
    problems = []
    if "min_hit_rate" in p:
        if output["hit_rate"] is None:
            ctx.log("no keyspace lookups yet: hit rate not judged")
        elif output["hit_rate"] < p["min_hit_rate"]:
            problems.append(f"hit rate {output['hit_rate']:.1%} is below {p['min_hit_rate']:.0%}")
    if "max_memory_ratio" in p:
        if output["memory_ratio"] is None:
            ctx.log("maxmemory is not set: memory ratio not judged")
        elif output["memory_ratio"] > p["max_memory_ratio"]:
            problems.append(
                f"memory at {output['memory_ratio']:.1%} of maxmemory, above {p['max_memory_ratio']:.0%}"
            )
    if problems:
        raise ThresholdCrossed(
            f"{where}: {'; '.join(problems)}; see the cache-flush-warm runbook", dict(output)
        )


# ---- redis.flush ----------------------------------------------------------------------------------


def describe_flush(params: Params) -> str:
    p = with_defaults(FLUSH_PARAMS, params)
    where = safe_url(p["url"])
    if p["all"]:
        return f"would ask for approval, then UNLINK every key in {where}"
    return f"would UNLINK keys matching {p['pattern']!r} in {where}"


@action(
    "redis.flush",
    summary="Delete keys matching a pattern (SCAN + UNLINK); flushing a whole database needs approval.",
    params=FLUSH_PARAMS,
    mutates=True,
    describe=describe_flush,
    outputs=("deleted",),
)
async def flush(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(FLUSH_PARAMS, params)
    where = safe_url(p["url"])
    if p["all"] and not await ctx.approve(f"Delete EVERY key in {where}?"):
        raise ApprovalDenied(f"the whole-database flush of {where} was not approved; nothing was deleted")
    pattern = "*" if p["all"] else p["pattern"]
    client = _client(ctx, p)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=p["count"]):
            batch.append(key)
            if len(batch) >= p["count"]:
                deleted += await client.unlink(*batch)
                batch = []
        if batch:
            deleted += await client.unlink(*batch)
    except rexc.RedisError as exc:
        error = _error(exc, where)
        error.output["deleted"] = deleted  # what was already gone before the failure
        raise error from None
    finally:
        await client.aclose()
    ctx.log(f"unlinked {deleted} keys matching {pattern!r}")
    return {"deleted": deleted}
