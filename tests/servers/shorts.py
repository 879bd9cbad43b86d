"""A stand-in for the Shorts service: the endpoints the manual's checks call, with slow and failing modes.

- GET /health                 {"status": "ok", ...}
- GET /                       the web app / admin site's front page
- GET /admin/youtube-quota    {"used": 5200, "limit": 8000}  (the manual's daily quota is 8,000 units)
- GET /admin/cache-stats      {"hit_rate": 0.0..1.0}  (from its own cache lookups unless overridden)
- GET /api/trending?region=KR and /api/popular?category=all: cache-aside over a real Redis, as the
  service does: a miss computes the answer and stores it under `trending:KR` / `popular:all`
  (after `key_prefix`, e.g. `cache:trending:KR`, for a service that namespaces its cache keys).
- GET /status/<code>          answers <code>, for any status a test needs

`behave(path, delay=..., status=...)` makes one path slow or failing; `reset()` restores all.
It also records the order in which /api requests start and end, and how many ran at once.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis

from tests.servers.httpstub import Handler, StubServer

TTL = {"trending": 300, "popular": 3600}  # the manual's cache TTLs for /api/trending; popular: 1 h


@dataclass
class Behaviour:
    delay: float = 0.0
    status: int | None = None


@dataclass
class Traffic:
    events: list[tuple[str, str]] = field(default_factory=list)  # ("start" | "end", path?query)
    in_flight: int = 0
    max_in_flight: int = 0
    authorizations: list[str | None] = field(default_factory=list)


class _ShortsHandler(Handler):
    def do_GET(self) -> None:
        stub: ShortsStub = self.server.stub  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        behaviour = stub.behaviours.get(url.path, Behaviour())
        tracked = url.path.startswith("/api/")
        if tracked:
            stub.enter(self.path)
        try:
            if behaviour.delay:
                time.sleep(behaviour.delay)
            if behaviour.status is not None:
                self.send_json(behaviour.status, {"error": f"stand-in told to answer {behaviour.status}"})
                return
            status, body = stub.answer(url.path, parse_qs(url.query), self.headers.get("Authorization"))
            self.send_json(status, body)
        finally:
            if tracked:
                stub.leave(self.path)


class ShortsStub(StubServer):
    def __init__(self, cache: redis.Redis | None = None, key_prefix: str = "") -> None:
        super().__init__(_ShortsHandler)
        self.cache = cache
        self.key_prefix = key_prefix
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.behaviours: dict[str, Behaviour] = {}
            self.traffic = Traffic()
            self.quota = {"used": 5200, "limit": 8000}
            self.hit_rate_override: float | None = None
            self.hits = 0
            self.misses = 0

    def behave(self, path: str, delay: float = 0.0, status: int | None = None) -> None:
        self.behaviours[path] = Behaviour(delay, status)

    def enter(self, path: str) -> None:
        with self.lock:
            self.traffic.events.append(("start", path))
            self.traffic.in_flight += 1
            self.traffic.max_in_flight = max(self.traffic.max_in_flight, self.traffic.in_flight)

    def leave(self, path: str) -> None:
        with self.lock:
            self.traffic.events.append(("end", path))
            self.traffic.in_flight -= 1

    def answer(self, path: str, query: dict[str, list[str]], authorization: str | None) -> tuple[int, Any]:
        if path == "/health":
            return 200, {"status": "ok", "database": "ok", "redis": "ok"}
        if path == "/":
            return 200, {"page": "home"}
        if path.startswith("/admin/"):
            self.traffic.authorizations.append(authorization)
        if path == "/admin/youtube-quota":
            return 200, dict(self.quota)
        if path == "/admin/cache-stats":
            return 200, {"hit_rate": self._hit_rate()}
        if path in ("/api/trending", "/api/popular"):
            kind = path.rsplit("/", 1)[1]
            arg = query.get(
                "region" if kind == "trending" else "category", ["KR" if kind == "trending" else "all"]
            )
            return 200, self._cached(kind, arg[0])
        if path.startswith("/status/") and path[8:].isdigit():
            return int(path[8:]), {"status": int(path[8:])}
        return 404, {"error": "not found"}

    def _hit_rate(self) -> float:
        if self.hit_rate_override is not None:
            return self.hit_rate_override
        total = self.hits + self.misses
        return round(self.hits / total, 4) if total else 0.0

    def _cached(self, kind: str, arg: str) -> Any:
        """Cache-aside, as the service does: read the key; on a miss compute the answer and store it."""
        key = f"{self.key_prefix}{kind}:{arg}"
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self.lock:
                    self.hits += 1
                return json.loads(hit)
        value = {"kind": kind, "key": arg, "videos": [f"{arg}-{i}" for i in range(3)]}
        with self.lock:
            self.misses += 1
        if self.cache is not None:
            self.cache.set(key, json.dumps(value), ex=TTL[kind])
        return value
