"""A stand-in for Slack's incoming webhooks and for any JSON webhook (status page): it records posts."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from tests.servers.httpstub import Handler, StubServer


@dataclass(frozen=True)
class Post:
    path: str
    json: Any
    authorization: str | None


class _SlackHandler(Handler):
    def do_POST(self) -> None:
        stub: SlackStub = self.server.stub  # type: ignore[attr-defined]
        body = self.read_json()
        if stub.answer_status != 200:
            self.send_text(stub.answer_status, "failure")
            return
        with stub.lock:
            stub.posts.append(Post(self.path, body, self.headers.get("Authorization")))
        self.send_text(200, "ok")  # what Slack answers an accepted incoming-webhook post


class SlackStub(StubServer):
    WEBHOOK_PATH = "/services/T0TEST/B0TEST/secret-token-part"

    def __init__(self) -> None:
        super().__init__(_SlackHandler)
        self.posts: list[Post] = []
        self.lock = threading.Lock()
        self.answer_status = 200

    @property
    def webhook_url(self) -> str:
        """The webhook URL: in real life a credential, so tests hand it to actions only as a secret."""
        return self.url + self.WEBHOOK_PATH

    def reset(self) -> None:
        with self.lock:
            self.posts.clear()
        self.answer_status = 200
