"""`prometheus.query`: one instant query, its value, and an optional threshold it must satisfy."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from remediation.actions._display import safe_url
from remediation.actions._durations import duration_schema, parse_duration
from remediation.actions._httpclient import check_status, send
from remediation.actions._params import params_schema, string, with_defaults
from remediation.actions._thresholds import THRESHOLD_SCHEMA, holds, text
from remediation.actions.registry import ActionContext, Output, Params, action
from remediation.errors import PermanentError, ThresholdCrossed

PARAMS = params_schema(
    {
        "url": string("Prometheus' base URL, e.g. ${profile.prometheus_url}."),
        "query": string("A PromQL expression with one result, e.g. sum(rate(http_requests_total[5m]))."),
        "threshold": THRESHOLD_SCHEMA,
        "timeout": duration_schema("How long the query may take.", "30s"),
    },
    required=("url", "query"),
)


def _series(data: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of an instant query's result: a vector's samples, or a scalar."""
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [(s.get("metric", {}), float(s["value"][1])) for s in result or []]
    if kind in ("scalar", "string") and result:
        return [({}, float(result[1]))]
    raise PermanentError(f"the query returned a {kind}; use an instant vector or scalar expression")


def describe(params: Params) -> str:
    limit = f" and check that it is {text(params['threshold'])}" if "threshold" in params else ""
    query = " ".join(str(params["query"]).split())  # one line, but whole: a plan hides nothing
    return f"would query {safe_url(params['url'])}: {query}{limit}"


@action(
    "prometheus.query",
    summary="Run an instant PromQL query and compare its value with a threshold.",
    params=PARAMS,
    mutates=False,
    describe=describe,
    outputs=("value",),
)
async def query(ctx: ActionContext, params: Params) -> Output:
    p = with_defaults(PARAMS, params)
    shown = f"Prometheus at {safe_url(p['url'])}"
    url = p["url"].rstrip("/") + "/api/v1/query?" + urlencode({"query": p["query"]})
    reply = await send("GET", url, timeout=parse_duration(p["timeout"]))
    if reply.status in (400, 422) and isinstance(reply.body, dict):
        raise PermanentError(
            f"{shown} refused the query: {reply.body.get('error')}; fix the PromQL", output=reply.output()
        )
    check_status(reply, [200], shown)
    series = _series(reply.body.get("data", {}))
    if not series:
        raise PermanentError(
            f"{shown}: the query {p['query']!r} returned no data; check the metric names, "
            "or append `or vector(0)` when no series means zero",
            output={"value": None},
        )
    value = series[0][1]
    output: dict[str, Any] = {"value": None if math.isnan(value) else value}
    if len(series) > 1:
        output["series"] = [{"metric": m, "value": v} for m, v in series]
    threshold = p.get("threshold")
    if threshold is not None:
        bad = [(m, v) for m, v in series if not holds(v, threshold)]
        if bad:
            which = f" {bad[0][0]}" if len(series) > 1 else ""  # name the failing series among several
            raise ThresholdCrossed(
                f"{shown}: {p['query']!r} is {bad[0][1]:g}{which}, which is not {text(threshold)}",
                output=output,
            )
    return output
