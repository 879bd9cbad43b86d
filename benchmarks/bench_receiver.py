"""Alert-to-Job latency (p50, p99) and throughput of `remediation serve`, each beside its floor: the bare
API call that creates a Job, measured in the same run against the same API.

The API is the local control plane when one is running (tools/cluster up; KUBECONFIG or
.state/cluster/kubeconfig), otherwise a local stand-in HTTP server that answers Job creations the way
the API server does, so the Kubernetes client and launcher code are the same in both cases.

    .venv/bin/python benchmarks/bench_receiver.py [--alerts 200]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client, config

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from remediation.receiver.alertlog import AlertLog  # noqa: E402
from remediation.receiver.core import Receiver, ReceiverConfig  # noqa: E402
from remediation.receiver.events import RecordingEvents  # noqa: E402
from remediation.receiver.guards import GuardStore, InMemoryGuardStore  # noqa: E402
from remediation.receiver.guards_cluster import LeaseGuardStore  # noqa: E402
from remediation.receiver.jobs import JobTemplate, LaunchRequest, LaunchResult  # noqa: E402
from remediation.receiver.jobs_cluster import KubernetesJobLauncher  # noqa: E402
from remediation.receiver.mapping import Target  # noqa: E402
from remediation.receiver.payload import Alert  # noqa: E402
from remediation.receiver.server import ReceiverServer, TokenSource  # noqa: E402

TOKEN = "bench-token"
RUNBOOK = """
apiVersion: shorts.ops/v1
kind: Runbook
metadata: {name: api-restart, title: bench, severity: P1}
triggers: [{alert: APIHealthCheckFailed}]
params: {deployment: {type: string}}
steps: [{id: restart, action: kubernetes.restart, with: {kind: Rollout, name: api, namespace: shorts}}]
"""


class _StandInAPI(BaseHTTPRequestHandler):
    """Answers POST .../jobs with 201 and the object, like the API server (without persistence)."""

    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per reply, as a real server does (avoids Nagle + delayed-ACK stalls)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        job = json.loads(body)
        job["metadata"]["uid"] = str(uuid.uuid4())
        job["metadata"]["resourceVersion"] = "1"
        out = json.dumps(job).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def _api() -> tuple[client.ApiClient, str, Any]:
    """(client, namespace, cleanup) for the real cluster if reachable, else for a stand-in server."""
    kubeconfig = os.environ.get("KUBECONFIG") or str(PROJECT / ".state" / "cluster" / "kubeconfig")
    if Path(kubeconfig).exists():
        try:
            api = config.new_client_from_config(config_file=kubeconfig)
            client.VersionApi(api).get_code(_request_timeout=3)
            namespace = f"bench-{uuid.uuid4().hex[:6]}"
            core = client.CoreV1Api(api)
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
            return api, f"{namespace} on the local control plane", lambda: core.delete_namespace(namespace)
        except Exception as exc:
            print(f"(no cluster: {exc.__class__.__name__}; using the stand-in API)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StandInAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conf = client.Configuration()
    conf.host = f"http://127.0.0.1:{server.server_address[1]}"
    conf.connection_pool_maxsize = 16
    return client.ApiClient(conf), "bench on a stand-in API server", server.shutdown


class TimedLauncher:
    """The real launcher, noting when each alert's Job creation returned."""

    def __init__(self, inner: KubernetesJobLauncher) -> None:
        self.inner = inner
        self.done: dict[str, float] = {}

    def launch(self, request: LaunchRequest) -> LaunchResult:
        result = self.inner.launch(request)
        self.done[request.alert.fingerprint] = time.perf_counter()
        return result

    def finished(self) -> list[Any]:
        return []


def _request(i: int, run: str) -> LaunchRequest:
    alert = Alert(
        "firing",
        {"alertname": "APIHealthCheckFailed", "deployment": f"d{i}"},
        {},
        "2026-11-26T06:00:00Z",
        "0001-01-01T00:00:00Z",
        f"{run}{i:08x}",
    )
    return LaunchRequest(
        "api-restart", Target("shorts", "Deployment", f"d{i}"), alert, {"deployment": f"d{i}"}
    )


def _payload(i: int, run: str) -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": "APIHealthCheckFailed", "deployment": f"d{i}"},
        "annotations": {},
        "startsAt": "2026-11-26T06:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{run}{i:08x}",
    }
    return json.dumps({
        "version": "4", "groupKey": f"g{i}", "status": "firing", "receiver": "r", "groupLabels": {},
        "commonLabels": {}, "commonAnnotations": {}, "externalURL": "", "alerts": [alert],
    }).encode()  # fmt: skip


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def floor_throughput(launcher: KubernetesJobLauncher, n: int, workers: int) -> float:
    run = uuid.uuid4().hex[:8]
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: launcher.launch(_request(i, run)), range(n)))
    return n / (time.perf_counter() - start)


def measure(
    launcher: KubernetesJobLauncher, store: GuardStore, n: int, workers: int, tmp: Path
) -> dict[str, Any]:
    """Latency samples interleaved (bare call, then alert, ...) so load on the machine hits both alike;
    throughput of the floor measured before and after the receiver's, and averaged."""
    runbooks = tmp / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "api-restart.yaml").write_text(RUNBOOK)
    (tmp / "token").write_text(TOKEN)
    timed = TimedLauncher(launcher)
    rec = Receiver(
        ReceiverConfig(runbooks),
        store,
        timed,
        events=RecordingEvents(),
        alert_log=AlertLog(tmp / f"alerts-{uuid.uuid4().hex[:6]}.jsonl"),
    )
    server = ReceiverServer(rec, TokenSource(tmp / "token"), workers=workers, queue_size=10 * n)
    server.start()
    http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"})
    floor_lat: list[float] = []
    recv_lat: list[float] = []
    try:
        bare_run, alert_run = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
        for i in range(n):
            start = time.perf_counter()
            launcher.launch(_request(i, bare_run))
            floor_lat.append(time.perf_counter() - start)
            start = time.perf_counter()
            http.post("/alerts", content=_payload(i, alert_run)).raise_for_status()
            fingerprint = f"{alert_run}{i:08x}"
            while fingerprint not in timed.done:
                time.sleep(0.0002)
            recv_lat.append(timed.done[fingerprint] - start)
        floor_before = floor_throughput(launcher, n, workers)
        run = uuid.uuid4().hex[:8]
        payloads = [_payload(n + i, run) for i in range(n)]  # new targets: no cooldown from the latency run
        start = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda body: http.post("/alerts", content=body).raise_for_status(), payloads))
        server.drain(timeout_s=300)
        recv_tput = n / (time.perf_counter() - start)
        created = rec.metrics.jobs_created.value(mode="run")
        if created != 2 * n or rec.metrics.failures.total():
            raise SystemExit(
                f"receiver created {created:g} of {2 * n} Jobs, failures: {rec.metrics.render()}"
            )
        floor_tput = (floor_before + floor_throughput(launcher, n, workers)) / 2
    finally:
        http.close()
        server.stop()
    return {"floor_lat": floor_lat, "recv_lat": recv_lat, "floor_tput": floor_tput, "recv_tput": recv_tput}


def report(title: str, m: dict[str, Any]) -> None:
    ms = 1000.0
    floor_lat, recv_lat = m["floor_lat"], m["recv_lat"]
    print(f"-- {title}")
    print(f"{'':24}{'receiver':>12}{'floor':>12}{'ratio':>8}")
    for label, r, f in (
        ("latency p50 (ms)", statistics.median(recv_lat) * ms, statistics.median(floor_lat) * ms),
        ("latency p99 (ms)", _pct(recv_lat, 0.99) * ms, _pct(floor_lat, 0.99) * ms),
    ):
        print(f"{label:24}{r:12.2f}{f:12.2f}{r / f:7.2f}x")
    r, f = m["recv_tput"], m["floor_tput"]
    print(f"{'throughput (Jobs/s)':24}{r:12.1f}{f:12.1f}{r / f:7.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    api, where, cleanup = _api()
    on_cluster = "control plane" in where
    namespace = where.split()[0] if on_cluster else "bench"
    launcher = KubernetesJobLauncher(api, replace(JobTemplate(), namespace=namespace))
    results: list[tuple[str, dict[str, Any]]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            launcher.launch(_request(0, "warmup0"))  # connection set-up is not part of either number
            results.append(
                (
                    "guard state in memory",
                    measure(launcher, InMemoryGuardStore(), args.alerts, args.workers, Path(tmp)),
                )
            )
            if on_cluster:  # the production set-up: guard state in Leases, one more API round trip or two
                lease_store = LeaseGuardStore(api, namespace)
                results.append(
                    (
                        "guard state in Leases",
                        measure(launcher, lease_store, args.alerts, args.workers, Path(tmp)),
                    )
                )
    finally:
        cleanup()
    print(f"receiver benchmark: {args.alerts} alerts, {args.workers} workers, {where}")
    for title, m in results:
        report(title, m)
    print("floor = the bare create-Job API call, same run; latency = POST of the alert until its Job exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
