"""The manual's alerts as a PrometheusRule. Each alert names the runbook that answers it (label `runbook`,
which the alert receiver maps to a remediation Job) and its severity (P0..P3, the manual's incident grades).

Metric names: the services export `shorts_youtube_quota_used_units` (today's YouTube Data API usage); the rest
come from standard exporters: blackbox (probe_*), postgres_exporter (pg_stat_activity_count),
redis_exporter (redis_memory_*) and Traefik (traefik_service_*).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra import meta
from infra.meta import Obj
from infra.settings import Alerts

# Not in the manual: "overload" = twice last week's traffic at this hour while the API is slow.
OVERLOAD_FACTOR = 2


@dataclass(frozen=True)
class AlertingArgs:
    namespace: pulumi.Input[str]
    namespace_name: str
    alerts: Alerts


def _alert(name: str, expr: str, for_: str, severity: str, runbook: str, summary: str) -> Obj:
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, "runbook": runbook},
        "annotations": {"summary": summary, "runbook": f"runbooks/{runbook}.yaml"},
    }


def alert_rules(a: Alerts, namespace: str) -> list[Obj]:
    api = f'service=~"{namespace}-api-.*@kubernetescrd"'
    quota_units = int(a.youtube_daily_quota_units * a.youtube_quota_ratio)
    return [
        _alert(
            "APIHealthCheckFailed",
            'probe_success{job="shorts-health",service="api"} == 0',
            "2m",
            "P1",
            "api-restart",
            "API /health has failed for 2 minutes: restart the API.",
        ),
        _alert(
            "DBConnectionPoolExhausted",
            f'sum(pg_stat_activity_count{{state="active"}}) >= {a.db_max_connections}',
            "2m",
            "P1",
            "db-pool-reset",
            f"{a.db_max_connections} or more active database connections: reset the connection pool.",
        ),
        _alert(
            "CacheMemoryExceeded",
            f"max(redis_memory_used_bytes / redis_memory_max_bytes) > {a.cache_max_memory_ratio}",
            "5m",
            "P2",
            "cache-flush-warm",
            f"Cache memory above {a.cache_max_memory_ratio:.0%} of maxmemory: flush and warm the cache.",
        ),
        _alert(
            "APIResponseTimeHigh",
            "histogram_quantile(0.95, sum by (le) "
            f"(rate(traefik_service_request_duration_seconds_bucket{{{api}}}[5m])))"
            f" > {a.p95_latency_seconds}",
            "5m",
            "P2",
            "scale-out",
            f"API p95 latency above {a.p95_latency_seconds * 1000:.0f} ms: scale out by 2 instances.",
        ),
        _alert(
            "ErrorRateHigh",
            f'sum(rate(traefik_service_requests_total{{{api},code=~"5.."}}[5m]))'
            f" / sum(rate(traefik_service_requests_total{{{api}}}[5m])) > {a.error_ratio}",
            "5m",
            "P1",
            "p0-incident",
            f"API error rate above {a.error_ratio:.1%}: start the incident playbook.",
        ),
        _alert(
            "TrafficOverload",
            f"sum(rate(traefik_service_requests_total{{{api}}}[5m])) > {OVERLOAD_FACTOR} * "
            f"sum(rate(traefik_service_requests_total{{{api}}}[5m] offset 1w))"
            " and histogram_quantile(0.95, sum by (le) "
            f"(rate(traefik_service_request_duration_seconds_bucket{{{api}}}[5m])))"
            f" > {a.p95_latency_seconds}",
            "10m",
            "P1",
            "traffic-overload",
            f"API traffic above {OVERLOAD_FACTOR}x last week's and p95 latency above "
            f"{a.p95_latency_seconds * 1000:.0f} ms: scale out, serve from cache.",
        ),
        _alert(
            "YouTubeQuotaHigh",
            f"shorts_youtube_quota_used_units / {a.youtube_daily_quota_units} > {a.youtube_quota_ratio}",
            "5m",
            "P2",
            "morning-check",
            f"YouTube API quota above {a.youtube_quota_ratio:.0%} of {a.youtube_daily_quota_units}"
            " daily units"
            f" ({quota_units} units).",
        ),
        _alert(
            "CertificateExpiringSoon",
            f"(probe_ssl_earliest_cert_expiry - time()) / 86400 < {a.certificate_min_days}",
            "1h",
            "P3",
            "morning-check",
            f"A TLS certificate expires in less than {a.certificate_min_days} days.",
        ),
    ]


class Alerting(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("shorts:operations:Alerting", name, None, opts)
        rules = alert_rules(args.alerts, args.namespace_name)
        self.rule = k8s.apiextensions.CustomResource(
            "shorts-alerts",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=meta.metadata("shorts-alerts", args.namespace, "operations"),
            spec={"groups": [{"name": "shorts-operations", "rules": rules}]},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"prometheusRule": self.rule.urn, "alerts": [r["alert"] for r in rules]})
