"""redis.info and redis.flush against a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from remediation.errors import ApprovalDenied, PermanentError, TemporaryError, ThresholdCrossed
from tests.servers.context import RecordingContext, run_action
from tests.servers.net import Blackhole
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.integration

OTHER_KEYS = {"popular:all", "popular:music", "session:42", "user:7:prefs", "trending"}


def _seed(cache: redis.Redis, trending: int = 7) -> set[str]:
    keys = {f"trending:region{i}" for i in range(trending)} | OTHER_KEYS
    for key in keys:
        cache.set(key, "x")
    return keys


# ---- redis.info -----------------------------------------------------------------------------------


def test_info_reports_memory_hit_rate_and_keys(redis_server: RedisServer, cache: redis.Redis) -> None:
    _seed(cache)
    cache.get("session:42")  # a hit
    cache.get("session:43")  # a miss
    cache.get("user:7:prefs")  # a hit
    out = run_action("redis.info", {"url": redis_server.url, "min_hit_rate": 0.5, "max_memory_ratio": 0.8})
    assert out["keys"] == 12
    assert out["hit_rate"] == round(2 / 3, 4)
    assert out["maxmemory"] == 64 * 1024 * 1024
    assert out["memory_ratio"] == round(out["used_memory"] / out["maxmemory"], 4)


def test_info_fails_below_the_minimum_hit_rate(redis_server: RedisServer, cache: redis.Redis) -> None:
    cache.get("absent:1")
    cache.get("absent:2")
    cache.set("present", 1)
    cache.get("present")
    with pytest.raises(ThresholdCrossed, match=r"hit rate 33.3% is below 70%") as err:
        run_action("redis.info", {"url": redis_server.url, "min_hit_rate": 0.7})
    assert err.value.output["hit_rate"] == round(1 / 3, 4)


def test_info_fails_above_the_memory_ratio(redis_server: RedisServer, cache: redis.Redis) -> None:
    with pytest.raises(ThresholdCrossed, match="of maxmemory, above 0%"):
        run_action("redis.info", {"url": redis_server.url, "max_memory_ratio": 0.000001})


def test_info_without_lookups_does_not_judge_the_hit_rate(
    redis_server: RedisServer, cache: redis.Redis
) -> None:
    ctx = RecordingContext()
    out = run_action("redis.info", {"url": redis_server.url, "min_hit_rate": 0.7}, ctx)
    assert out["hit_rate"] is None
    assert ctx.logs == ["no keyspace lookups yet: hit rate not judged"]


def test_refused_connection_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError, match="check that Redis is up"):
        run_action("redis.info", {"url": f"redis://127.0.0.1:{refused_port}/0"})


def test_hung_server_is_a_temporary_timeout(blackhole: Blackhole) -> None:
    with pytest.raises(TemporaryError, match=r"[Tt]imeout"):
        run_action("redis.info", {"url": f"redis://127.0.0.1:{blackhole.port}/0", "timeout": "300ms"})


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[RedisServer]:
    server = RedisServer(password="redis-pass").start()
    yield server
    server.stop()


def test_password_comes_from_a_secret(locked_redis: RedisServer) -> None:
    ctx = RecordingContext(secrets={"REDIS_PASSWORD": "redis-pass"})
    out = run_action("redis.info", {"url": locked_redis.url, "password_secret": "REDIS_PASSWORD"}, ctx)
    assert out["keys"] == 0
    assert ctx.secrets_read == ["REDIS_PASSWORD"]


def test_wrong_password_is_permanent(locked_redis: RedisServer) -> None:
    ctx = RecordingContext(secrets={"REDIS_PASSWORD": "wrong"})
    with pytest.raises(PermanentError, match="password"):
        run_action("redis.info", {"url": locked_redis.url, "password_secret": "REDIS_PASSWORD"}, ctx)


# ---- redis.flush ----------------------------------------------------------------------------------


def test_flush_unlinks_only_the_matching_keys(redis_server: RedisServer, cache: redis.Redis) -> None:
    _seed(cache, trending=7)
    out = run_action("redis.flush", {"url": redis_server.url, "pattern": "trending:*", "count": 2})
    assert out == {"deleted": 7}
    assert set(cache.keys("*")) == OTHER_KEYS  # 'trending' itself does not match 'trending:*'


def test_flush_with_a_pattern_that_matches_nothing(redis_server: RedisServer, cache: redis.Redis) -> None:
    keys = _seed(cache)
    assert run_action("redis.flush", {"url": redis_server.url, "pattern": "nothing:*"}) == {"deleted": 0}
    assert set(cache.keys("*")) == keys


def test_flush_of_many_keys_in_batches(redis_server: RedisServer, cache: redis.Redis) -> None:
    cache.mset({f"popular:{i}": i for i in range(2500)})
    cache.set("keep", 1)
    assert run_action("redis.flush", {"url": redis_server.url, "pattern": "popular:*"}) == {"deleted": 2500}
    assert cache.keys("*") == ["keep"]


def test_flushing_everything_is_refused_without_approval(
    redis_server: RedisServer, cache: redis.Redis
) -> None:
    keys = _seed(cache)
    ctx = RecordingContext(answers=[False])
    with pytest.raises(ApprovalDenied, match="nothing was deleted"):
        run_action("redis.flush", {"url": redis_server.url, "all": True}, ctx)
    assert ctx.prompts == [f"Delete EVERY key in {redis_server.url}?"]
    assert set(cache.keys("*")) == keys


def test_flushing_everything_with_approval(redis_server: RedisServer, cache: redis.Redis) -> None:
    keys = _seed(cache)
    ctx = RecordingContext(answers=[True])
    assert run_action("redis.flush", {"url": redis_server.url, "all": True}, ctx) == {"deleted": len(keys)}
    assert cache.keys("*") == []


def test_flush_against_a_refused_port_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError) as err:
        run_action("redis.flush", {"url": f"redis://127.0.0.1:{refused_port}/0", "pattern": "x:*"})
    assert err.value.output["deleted"] == 0
