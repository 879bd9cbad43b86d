"""Free loopback ports, waiting for a port to listen, and a port that accepts but never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick; a race with other processes is unlikely)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout: float, what: str, log: str | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    hint = f"; its log: {log}" if log else ""
    raise RuntimeError(f"{what} did not become ready within {timeout:g}s{hint}")


def listening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class Blackhole:
    """A port whose kernel completes TCP handshakes but whose owner never reads or writes: every client
    connects and then waits until its own timeout. The realistic shape of a hung server."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self._sock.listen(128)
        self.port = int(self._sock.getsockname()[1])

    def close(self) -> None:
        self._sock.close()
