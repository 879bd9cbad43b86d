"""A private Prometheus scraping a tiny local exporter every second, so real queries have real data.

The exporter serves fixed samples shaped like the service's metrics:
    shorts_youtube_quota_used_units 6000, shorts_youtube_quota_limit_units 8000  (75 % of the quota)
    shorts_http_requests_total{code="200"} 99950, {code="500"} 50                (0.05 % errors)
and one pod's cAdvisor / kube-state-metrics series (CPU counter flat: 0 % of its limit; memory 50 %).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx

from tests.servers.httpstub import Handler, StubServer
from tests.servers.net import HOST, free_port, wait_until
from tests.servers.process import Server

METRICS = """\
# TYPE shorts_youtube_quota_used_units gauge
shorts_youtube_quota_used_units 6000
# TYPE shorts_youtube_quota_limit_units gauge
shorts_youtube_quota_limit_units 8000
# TYPE shorts_http_requests_total counter
shorts_http_requests_total{code="200"} 99950
shorts_http_requests_total{code="500"} 50
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{namespace="shorts",pod="api-1",container="api"} 1000
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{namespace="shorts",pod="api-1",container="api"} 268435456
# TYPE kube_pod_container_resource_limits gauge
kube_pod_container_resource_limits{namespace="shorts",pod="api-1",container="api",resource="cpu"} 1
kube_pod_container_resource_limits{namespace="shorts",pod="api-1",container="api",resource="memory"} 536870912
"""


class _ExporterHandler(Handler):
    def do_GET(self) -> None:
        self.send_text(200, METRICS, "text/plain; version=0.0.4")


class PrometheusServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prom-test-"))
        self.port = free_port()
        self.exporter = StubServer(_ExporterHandler)
        self.server: Server | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> PrometheusServer:
        self.exporter.start()
        config = self.dir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: shorts\n    static_configs: [{{targets: ['{HOST}:{self.exporter.port}']}}]\n"
        )
        argv = [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={HOST}:{self.port}",
        ]  # fmt: skip
        log = self.dir / "prometheus.log"
        self.server = Server("prometheus", argv, log)
        wait_until(self._has_data, 60, "Prometheus (two scrapes)", str(log))
        return self

    def _has_data(self) -> bool:
        assert self.server is not None
        if not self.server.alive():
            raise RuntimeError(f"Prometheus exited; see {self.server.log}")
        try:
            # rate() needs two scrapes: only then does every kind of query have data
            query = "rate(container_cpu_usage_seconds_total[1m])"
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query})
            return answer.status_code == 200 and len(answer.json()["data"]["result"]) == 1
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.exporter.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
