"""prometheus.query against a real Prometheus scraping a local exporter."""

from __future__ import annotations

import pytest

from remediation.errors import PermanentError, TemporaryError, ThresholdCrossed
from tests.servers.context import run_action
from tests.servers.net import Blackhole
from tests.servers.prometheus_server import PrometheusServer
from tests.servers.shorts import ShortsStub

pytestmark = pytest.mark.integration

QUOTA = "shorts_youtube_quota_used_units / shorts_youtube_quota_limit_units"
ERRORS = 'sum(shorts_http_requests_total{code=~"5.."}) / sum(shorts_http_requests_total)'


def test_quota_under_80_percent_passes(prometheus: PrometheusServer) -> None:
    out = run_action(
        "prometheus.query", {"url": prometheus.url, "query": QUOTA, "threshold": {"op": "<", "value": 0.8}}
    )
    assert out == {"value": 0.75}


def test_error_rate_under_a_tenth_of_a_percent_passes(prometheus: PrometheusServer) -> None:
    out = run_action(
        "prometheus.query", {"url": prometheus.url, "query": ERRORS, "threshold": {"op": "<", "value": 0.001}}
    )
    assert out["value"] == pytest.approx(0.0005)


def test_threshold_crossed_is_permanent_with_the_value(prometheus: PrometheusServer) -> None:
    with pytest.raises(ThresholdCrossed, match=r"is 0.75, which is not < 0.7") as err:
        run_action(
            "prometheus.query",
            {"url": prometheus.url, "query": QUOTA, "threshold": {"op": "<", "value": 0.7}},
        )
    assert err.value.output == {"value": 0.75}


def test_every_series_must_satisfy_the_threshold(prometheus: PrometheusServer) -> None:
    with pytest.raises(ThresholdCrossed, match=r"is 99950 \{.*'code': '200'") as err:
        run_action(
            "prometheus.query",
            {
                "url": prometheus.url,
                "query": "shorts_http_requests_total",
                "threshold": {"op": "<", "value": 1000},
            },
        )
    assert sorted(s["value"] for s in err.value.output["series"]) == [50, 99950]


def test_scalar_results(prometheus: PrometheusServer) -> None:
    assert run_action("prometheus.query", {"url": prometheus.url, "query": "scalar(vector(42))"}) == {
        "value": 42
    }


def test_no_data_is_permanent_with_a_hint(prometheus: PrometheusServer) -> None:
    with pytest.raises(PermanentError, match=r"returned no data.*or vector\(0\)"):
        run_action("prometheus.query", {"url": prometheus.url, "query": "no_such_metric"})


def test_invalid_promql_is_permanent(prometheus: PrometheusServer) -> None:
    with pytest.raises(PermanentError, match=r"refused the query: .*fix the PromQL"):
        run_action("prometheus.query", {"url": prometheus.url, "query": "sum(("})


def test_refused_connection_is_temporary(refused_port: int) -> None:
    with pytest.raises(TemporaryError, match="could not connect"):
        run_action("prometheus.query", {"url": f"http://127.0.0.1:{refused_port}", "query": "up"})


def test_hung_server_is_a_temporary_timeout(blackhole: Blackhole) -> None:
    with pytest.raises(TemporaryError, match="timed out"):
        run_action(
            "prometheus.query",
            {"url": f"http://127.0.0.1:{blackhole.port}", "query": "up", "timeout": "300ms"},
        )


def test_an_unavailable_prometheus_is_temporary(shorts: ShortsStub) -> None:
    shorts.behave("/api/v1/query", status=503)  # e.g. Prometheus restarting behind its load balancer
    with pytest.raises(TemporaryError, match="503"):
        run_action("prometheus.query", {"url": shorts.url, "query": "up"})
