"""Real servers for integration tests, each started once per session on free loopback ports.

Slow starts (PostgreSQL, Prometheus) are session-scoped; per-test fixtures reset shared state
(Redis keys and stats, the stand-ins' modes and records) so tests do not leak into each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.servers.net import Blackhole, free_port
from tests.servers.postgres_server import PostgresServer
from tests.servers.prometheus_server import PrometheusServer
from tests.servers.redis_server import RedisServer
from tests.servers.shorts import ShortsStub
from tests.servers.slack import SlackStub
from tests.servers.tls_server import TLSServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def cache(redis_server: RedisServer) -> redis.Redis:
    """The session's Redis, emptied and with fresh hit/miss counters."""
    client = redis_server.client()
    client.flushdb()
    client.config_resetstat()
    return client


@pytest.fixture(scope="session")
def prometheus() -> Iterator[PrometheusServer]:
    server = PrometheusServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, TLSServer]]:
    """HTTPS servers whose certificates expire in 10 and in 90 days."""
    directory = tmp_path_factory.mktemp("certs")
    servers = {days: TLSServer(directory, days) for days in (10, 90)}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def _shorts_session(redis_server: RedisServer) -> Iterator[ShortsStub]:
    stub = ShortsStub(cache=redis_server.client())
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def shorts(_shorts_session: ShortsStub, cache: redis.Redis) -> ShortsStub:
    """The Shorts stand-in, healthy, with its cache (the session's Redis) empty."""
    _shorts_session.reset()
    return _shorts_session


@pytest.fixture(scope="session")
def _slack_session() -> Iterator[SlackStub]:
    stub = SlackStub()
    stub.start()
    yield stub
    stub.stop()


@pytest.fixture
def slack(_slack_session: SlackStub) -> SlackStub:
    _slack_session.reset()
    return _slack_session


@pytest.fixture(scope="session")
def blackhole() -> Iterator[Blackhole]:
    """A port that accepts connections and never answers: every client times out."""
    hole = Blackhole()
    yield hole
    hole.close()


@pytest.fixture
def refused_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    return free_port()
