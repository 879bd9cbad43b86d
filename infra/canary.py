"""Canary steps and the Prometheus analysis that gates them (Argo Rollouts).

The manual's recovery procedure: canary 5 %, watch 10 minutes, widen 25 % -> 50 % -> 100 %, checking at each
step that the error rate stays < 0.1 % and API latency < 500 ms.
"""

from __future__ import annotations

from infra.meta import Obj
from infra.settings import Canary

ERROR_RATIO_METRIC = "error-ratio"
LATENCY_METRIC = "p95-latency"
SERVICE_ARG = "traefik-service"


def canary_steps(canary: Canary) -> list[Obj]:
    """setWeight for each weight; a pause after every partial weight (the last, 100, needs none)."""
    steps: list[Obj] = []
    for weight in canary.weights:
        steps.append({"setWeight": weight})
        if weight < 100:
            steps.append({"pause": {"duration": canary.pause}})
    return steps


def traefik_service_id(namespace: str, service: str, port: int) -> str:
    """How Traefik's kubernetescrd provider names a Kubernetes Service in its metrics."""
    return f"{namespace}-{service}-{port}@kubernetescrd"


def _guarded(condition: str) -> str:
    # No traffic makes the ratio 0/0 = NaN, and an empty vector has no result[0]. Both are neither success
    # nor failure: the measurement is inconclusive, which pauses the rollout for a human instead of
    # promoting a canary nobody has exercised or aborting one that did nothing wrong.
    return f"len(result) > 0 && !isNaN(result[0]) && {condition}"


def analysis_metrics(canary: Canary, prometheus_url: str) -> list[Obj]:
    selector = f'service="{{{{args.{SERVICE_ARG}}}}}"'
    error_query = (
        f'sum(rate(traefik_service_requests_total{{{selector},code=~"5.."}}[2m]))'
        f" / sum(rate(traefik_service_requests_total{{{selector}}}[2m]))"
    )
    latency_query = (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(traefik_service_request_duration_seconds_bucket{{{selector}}}[2m])))"
    )
    common: Obj = {"interval": canary.analysis_interval, "failureLimit": canary.failure_limit}
    return [
        {
            "name": ERROR_RATIO_METRIC,
            **common,
            "successCondition": _guarded(f"result[0] < {canary.max_error_ratio}"),
            "failureCondition": _guarded(f"result[0] >= {canary.max_error_ratio}"),
            "provider": {"prometheus": {"address": prometheus_url, "query": error_query}},
        },
        {
            "name": LATENCY_METRIC,
            **common,
            "successCondition": _guarded(f"result[0] < {canary.max_p95_latency_seconds}"),
            "failureCondition": _guarded(f"result[0] >= {canary.max_p95_latency_seconds}"),
            "provider": {"prometheus": {"address": prometheus_url, "query": latency_query}},
        },
    ]


def analysis_template_spec(canary: Canary, prometheus_url: str) -> Obj:
    return {"args": [{"name": SERVICE_ARG}], "metrics": analysis_metrics(canary, prometheus_url)}
