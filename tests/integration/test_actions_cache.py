"""cache.warm through the Shorts stand-in, whose cache-aside fills the real Redis."""

from __future__ import annotations

import pytest
import redis

from remediation.errors import PermanentError, TemporaryError
from tests.servers.context import run_action
from tests.servers.redis_server import RedisServer
from tests.servers.shorts import ShortsStub

pytestmark = pytest.mark.integration

REGIONS = ["KR", "US", "JP", "GB", "DE", "FR", "BR", "IN", "ID", "MX", "CA", "AU"]


def test_flush_then_warm_refills_exactly_the_flushed_keys(
    shorts: ShortsStub, redis_server: RedisServer, cache: redis.Redis
) -> None:
    urls = [f"{shorts.url}/api/trending?region={r}" for r in REGIONS[:4]] + [f"{shorts.url}/api/popular"]
    for url in urls:  # the service fills its cache as users come
        run_action("http.check", {"url": url})
    cache.set("session:1", "keep me")
    before = set(cache.keys("*"))
    assert before == {"trending:KR", "trending:US", "trending:JP", "trending:GB", "popular:all", "session:1"}

    assert run_action("redis.flush", {"url": redis_server.url, "pattern": "trending:*"}) == {"deleted": 4}
    assert set(cache.keys("*")) == {"popular:all", "session:1"}

    out = run_action("cache.warm", {"urls": urls[:4]})
    assert out == {"success": 4, "failed": 0, "errors": []}
    assert set(cache.keys("*")) == before
    assert 0 < cache.ttl("trending:KR") <= 300  # refilled by the service, with its own TTL


def test_warm_sends_batches_of_five_one_batch_after_the_other(shorts: ShortsStub, cache: redis.Redis) -> None:
    shorts.behave("/api/trending", delay=0.05)
    urls = [f"{shorts.url}/api/trending?region={r}" for r in REGIONS]  # 12 URLs: batches of 5, 5 and 2
    out = run_action("cache.warm", {"urls": urls})
    assert out["success"] == 12
    assert shorts.traffic.max_in_flight == 5
    # For each request, how many had ended when it started: a request of batch k (0-based) starts only
    # after all 5*k requests of the earlier batches have ended.
    ended, ended_before_start = 0, []
    for kind, _ in shorts.traffic.events:
        if kind == "start":
            ended_before_start.append(ended)
        else:
            ended += 1
    assert len(ended_before_start) == 12
    assert all(done >= 5 * (i // 5) for i, done in enumerate(ended_before_start)), ended_before_start


def test_warm_reports_failures_and_is_permanent_for_missing_pages(
    shorts: ShortsStub, cache: redis.Redis
) -> None:
    urls = [f"{shorts.url}/api/trending?region=KR", f"{shorts.url}/api/nope", f"{shorts.url}/api/popular"]
    with pytest.raises(PermanentError, match="1 of 3 URLs could not be warmed") as err:
        run_action("cache.warm", {"urls": urls})
    assert err.value.output["success"] == 2
    assert err.value.output["failed"] == 1
    assert err.value.output["errors"][0]["url"] == f"{shorts.url}/api/nope"
    assert "404" in err.value.output["errors"][0]["error"]
    assert set(cache.keys("*")) == {"trending:KR", "popular:all"}


def test_warm_is_temporary_when_the_service_fails(shorts: ShortsStub, cache: redis.Redis) -> None:
    shorts.behave("/api/popular", status=503)
    with pytest.raises(TemporaryError) as err:
        run_action("cache.warm", {"urls": [f"{shorts.url}/api/popular", f"{shorts.url}/api/trending"]})
    assert (err.value.output["success"], err.value.output["failed"]) == (1, 1)


def test_warm_timeouts_are_temporary(shorts: ShortsStub, cache: redis.Redis) -> None:
    shorts.behave("/api/trending", delay=1.0)
    with pytest.raises(TemporaryError, match="timed out"):
        run_action("cache.warm", {"urls": [f"{shorts.url}/api/trending"], "timeout": "200ms"})


def test_warm_against_a_refused_port_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError, match="could not connect") as err:
        run_action("cache.warm", {"urls": [f"http://127.0.0.1:{refused_port}/api/trending"]})
    assert err.value.output["failed"] == 1
