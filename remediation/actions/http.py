"""HTTP actions: `http.check` (status, latency budget, JSON fields) and `http.request` (a mutating call)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediation.actions._display import safe_url, shorten
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._httpclient import Reply, check_status, expected_statuses, send
from remediation.actions._params import params_schema, secret_name, string, with_defaults
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import PermanentError

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

_STATUS = {
    "description": "The expected status code, or a list of accepted ones.",
    "oneOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 100, "maximum": 599}},
    ],
}
_COMMON = {
    "url": string("The URL to call, e.g. ${profile.api_url}/health."),
    "headers": {
        "type": "object",
        "description": "Extra request headers (no secrets here: use bearer_secret).",
        "additionalProperties": {"type": "string"},
    },
    "timeout": duration_schema("How long to wait for the whole response.", "10s"),
    "bearer_secret": secret_name("Sends `Authorization: Bearer <secret>`."),
}

CHECK_PARAMS = params_schema(
    {
        **_COMMON,
        "method": {"enum": METHODS, "default": "GET", "description": "The HTTP method."},
        "expect": {
            "type": "object",
            "description": "What a healthy answer looks like.",
            "additionalProperties": False,
            "properties": {
                "status": {**_STATUS, "default": 200},
                "max_latency_ms": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "description": "Fail when the answer takes longer (the manual's API budget: 500).",
                },
                "json": {
                    "type": "object",
                    "description": "Body fields by dotted path (items.0.id) and the value each must equal.",
                    "propertyNames": {"pattern": r"^[^.]+(\.[^.]+)*$"},
                },
            },
        },
    },
    required=("url",),
)

REQUEST_PARAMS = params_schema(
    {
        **_COMMON,
        "method": {"enum": METHODS, "description": "The HTTP method."},
        "json": {"description": "A JSON request body."},
        "expect": {
            "type": "object",
            "description": "What a successful answer looks like (default: any 2xx).",
            "additionalProperties": False,
            "properties": {"status": _STATUS},
        },
    },
    required=("url", "method"),
)

_MISSING = object()


def lookup(body: Any, path: str) -> Any:
    """The value at dotted `path` (list items by index), or _MISSING."""
    node = body
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _check_json(reply: Reply, wanted: Mapping[str, Any], shown: str) -> None:
    wrong = []
    for path, value in wanted.items():
        found = lookup(reply.body, path)
        if found is _MISSING:
            wrong.append(f"{path} is missing")
        elif found != value:
            wrong.append(f"{path} is {found!r}, expected {value!r}")
    if wrong:
        raise PermanentError(
            f"{shown}: the answer's JSON does not match: {'; '.join(wrong)}; look at the service's health",
            output=reply.output(),
        )


async def _call(ctx: ActionContext, p: Mapping[str, Any]) -> Reply:
    bearer = ctx.secret(p["bearer_secret"]) if p.get("bearer_secret") else None
    return await send(
        p["method"],
        p["url"],
        timeout=parse_duration(p["timeout"]),
        headers=p.get("headers"),
        json=p.get("json"),
        bearer=bearer,
    )


def describe_check(params: Params) -> str:
    p = with_defaults(CHECK_PARAMS, params)
    expect = p.get("expect", {})
    status = expect.get("status", 200)
    extra = f" within {expect['max_latency_ms']} ms" if "max_latency_ms" in expect else ""
    fields = f" with {', '.join(expect['json'])} as expected" if expect.get("json") else ""
    return f"would check that {p['method']} {safe_url(p['url'])} answers {status}{extra}{fields}"


@action(
    "http.check",
    summary="Call a URL and check its status, latency budget and JSON fields.",
    params=CHECK_PARAMS,
    mutates=False,
    describe=describe_check,
    outputs=("status", "latency_ms", "body"),
)
async def check(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(CHECK_PARAMS, params)
    expect = p.get("expect", {})
    shown = f"{p['method']} {safe_url(p['url'])}"
    reply = await _call(ctx, p)
    check_status(reply, expected_statuses(expect.get("status"), [200]), shown)
    budget = expect.get("max_latency_ms")
    if budget is not None and reply.latency_ms > budget:
        raise PermanentError(
            f"{shown} took {reply.latency_ms:.0f} ms, over the {budget} ms budget; "
            "look at the service's load and slow queries",
            output=reply.output(),
        )
    _check_json(reply, expect.get("json", {}), shown)
    return reply.output()


def describe_request(params: Params) -> str:
    p = with_defaults(REQUEST_PARAMS, params)
    body = f" with JSON body {shorten(repr(p['json']), 60)}" if "json" in p else ""
    return f"would send {p['method']} {safe_url(p['url'])}{body}"


@action(
    "http.request",
    summary="Send an HTTP request that changes something (e.g. an admin endpoint).",
    params=REQUEST_PARAMS,
    mutates=True,
    describe=describe_request,
    outputs=("status", "latency_ms", "body"),
)
async def request(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(REQUEST_PARAMS, params)
    reply = await _call(ctx, p)
    expected = expected_statuses(p.get("expect", {}).get("status"), None)
    check_status(reply, expected, f"{p['method']} {safe_url(p['url'])}")
    return reply.output()
