"""One HTTP request with httpx, its latency, and the error tree's reading of what went wrong.

Shared by http, cache, prometheus and notify so that "timeout", "refused" and "503" mean the same thing
(and lead to the same retry decision) whichever action met them.
"""

from __future__ import annotations

import json as jsonlib
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import certifi
import httpx

from remediation.actions._display import safe_url
from remediation.errors import ActionError, PermanentError, TemporaryError

MAX_TEXT = 4096  # a non-JSON body is kept only this long in outputs: run records are not a log store


@dataclass(frozen=True)
class Reply:
    status: int
    latency_ms: float
    body: Any

    def output(self) -> dict[str, Any]:
        return {"status": self.status, "latency_ms": round(self.latency_ms, 1), "body": self.body}


@cache
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every client: loading the CA bundle costs ~100 ms of CPU, and doing it
    per request would serialise a `foreach` over many endpoints behind that cost."""
    return ssl.create_default_context(cafile=certifi.where())  # the bundle httpx itself would load


def new_client(timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, verify=tls_context())


def _body(response: httpx.Response) -> Any:
    text = response.text
    try:
        return jsonlib.loads(text) if text else None
    except ValueError:
        return text[:MAX_TEXT]


async def send(
    method: str,
    url: str,
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    bearer: str | None = None,
    client: httpx.AsyncClient | None = None,
    label: str | None = None,
) -> Reply:
    """Send one request; transport failures become TemporaryError/PermanentError with what was observed.

    `label` replaces the URL in messages when the URL itself is a secret (a Slack webhook).
    """
    all_headers = dict(headers or {})
    if bearer is not None:
        all_headers["Authorization"] = f"Bearer {bearer}"
    where = label or safe_url(url)
    shown = f"{method} {where}"
    started = time.perf_counter()
    try:
        if client is None:
            async with new_client(timeout) as own:
                response = await own.request(method, url, headers=all_headers, json=json)
        else:
            response = await client.request(method, url, headers=all_headers, json=json, timeout=timeout)
    except httpx.TimeoutException as exc:
        raise TemporaryError(
            f"{shown} timed out after {timeout:g}s: the service is slow or overloaded; retry, "
            "or raise `timeout` if it is known to be slow",
            output={"url": where, "error": "timeout", "detail": type(exc).__name__},
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentError(
            f"{shown}: invalid URL ({exc}); fix the URL in the runbook or profile",
            output={"url": where, "error": "invalid url"},
        ) from None
    except httpx.TransportError as exc:
        raise _transport_error(shown, where, exc) from None
    latency_ms = (time.perf_counter() - started) * 1000
    return Reply(response.status_code, latency_ms, _body(response))


def _transport_error(shown: str, where: str, exc: httpx.TransportError) -> ActionError:
    detail = str(exc) or type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        return PermanentError(
            f"{shown}: the server's TLS certificate is not valid ({detail}); renew or fix the certificate",
            output={"url": where, "error": "invalid certificate", "detail": detail},
        )
    return TemporaryError(
        f"{shown}: could not connect ({detail}); check that the service is running and the URL is right",
        output={"url": where, "error": "connection failed", "detail": detail},
    )


def is_temporary_status(status: int) -> bool:
    """5xx, 409 Conflict and 429 Too Many Requests may pass by themselves; other statuses will not."""
    return status >= 500 or status in (409, 429)


def check_status(reply: Reply, expected: list[int] | None, shown: str) -> None:
    """Raise when `reply.status` is not expected (None: any 2xx); the error class follows the status."""
    ok = reply.status in expected if expected is not None else 200 <= reply.status < 300
    if ok:
        return
    wanted = " or ".join(map(str, expected)) if expected is not None else "2xx"
    if is_temporary_status(reply.status):
        raise TemporaryError(
            f"{shown} answered {reply.status} (expected {wanted}): the service is failing or busy; "
            "retry, and look at its logs if it persists",
            output=reply.output(),
        )
    raise PermanentError(
        f"{shown} answered {reply.status} (expected {wanted}); check the URL, method and credentials",
        output=reply.output(),
    )


def expected_statuses(value: int | list[int] | None, default: list[int] | None) -> list[int] | None:
    if value is None:
        return default
    return [value] if isinstance(value, int) else list(value)
