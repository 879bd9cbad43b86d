"""A private redis-server (no persistence) in a temp dir on a free loopback port."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import redis

from tests.servers.net import HOST, free_port, wait_until
from tests.servers.process import Server


class RedisServer:
    def __init__(self, password: str | None = None, maxmemory: str = "64mb") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="redis-test-"))
        self.port = free_port()
        self.password = password
        self.maxmemory = maxmemory
        self.server: Server | None = None

    @property
    def url(self) -> str:
        """The URL as a profile holds it: no password (that comes from a secret)."""
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, password=self.password, decode_responses=True)

    def start(self) -> RedisServer:
        argv = [
            "redis-server", "--bind", HOST, "--port", str(self.port), "--dir", str(self.dir),
            "--save", "", "--appendonly", "no", "--maxmemory", self.maxmemory, "--protected-mode", "no",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        log = self.dir / "redis.log"
        self.server = Server("redis", argv, log)
        wait_until(self._pings, 15, "Redis", str(log))
        return self

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
