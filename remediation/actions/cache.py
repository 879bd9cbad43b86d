"""`cache.warm`: GET the service's hot URLs so that it refills its cache, in small polite batches.

As the manual's warmCache: batches of 5 requests at once, 100 ms between batches, and a report of
{success, failed, errors}. The service does the caching; this action only asks for the pages.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from remediation.actions._display import safe_url
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._httpclient import check_status, new_client, send
from remediation.actions._params import params_schema, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import ActionError, PermanentError, TemporaryError

PARAMS = params_schema(
    {
        "urls": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "minLength": 1},
            "description": "The URLs whose answers the service caches, e.g. ${profile.api_url}/api/trending.",
        },
        "batch_size": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 5,
            "description": "Requests sent at once (the manual: 5).",
        },
        "pause": duration_schema("Rest between batches, to spare the service (the manual: 100ms).", "100ms"),
        "timeout": duration_schema("How long each request may take.", "10s"),
    },
    required=("urls",),
)


async def _get(client: httpx.AsyncClient, url: str, timeout: float) -> ActionError | None:
    try:
        reply = await send("GET", url, timeout=timeout, client=client)
        check_status(reply, None, f"GET {safe_url(url)}")
    except ActionError as exc:
        return exc
    return None


def describe(params: Params) -> str:
    p = with_defaults(PARAMS, params)
    urls = p["urls"]
    if not isinstance(urls, list):  # a plan may show a value only a run can know
        return f"would GET each of {urls} to warm the cache, {p['batch_size']} at a time"
    batches = -(-len(urls) // p["batch_size"])
    shown = ", ".join(safe_url(u) for u in urls[:3]) + (f" and {len(urls) - 3} more" if len(urls) > 3 else "")
    return (
        f"would GET {len(urls)} URLs to warm the cache, {p['batch_size']} at a time "
        f"({batches} batch{'es' if batches != 1 else ''}, {p['pause']} apart): {shown}"
    )


@action(
    "cache.warm",
    summary="Refill the service's cache by GETting its hot URLs in batches with a pause between them.",
    params=PARAMS,
    mutates=True,
    describe=describe,
    outputs=("success", "failed", "errors"),
)
async def warm(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(PARAMS, params)
    urls: list[str] = p["urls"]
    size, pause, timeout = p["batch_size"], parse_duration(p["pause"]), parse_duration(p["timeout"])
    failures: list[tuple[str, ActionError]] = []
    async with new_client(timeout) as client:
        for start in range(0, len(urls), size):
            if start:
                await asyncio.sleep(pause)
            batch = urls[start : start + size]
            results = await asyncio.gather(*(_get(client, url, timeout) for url in batch))
            failures += [(url, err) for url, err in zip(batch, results, strict=True) if err is not None]
    output: dict[str, Any] = {
        "success": len(urls) - len(failures),
        "failed": len(failures),
        "errors": [{"url": safe_url(url), "error": str(err)} for url, err in failures],
    }
    ctx.log(f"warmed {output['success']} of {len(urls)} URLs")
    if failures:
        # Retrying helps only if some failure may pass by itself (timeout, refused, 5xx).
        kind = TemporaryError if any(isinstance(e, TemporaryError) for _, e in failures) else PermanentError
        raise kind(
            f"{len(failures)} of {len(urls)} URLs could not be warmed (first: {failures[0][1]}); "
            "the cache fills again on demand, but check the service",
            output=output,
        )
    return output
