"""morning-check-style checks over 20 stand-in endpoints that each answer in 200 ms, against a sequential
`curl` loop like the manual's morning-check.sh over the same endpoints, in the same run.

The executor side is the real `http.check` action inside a `foreach` with bounded concurrency, run
(a) in-process and (b) as the `remediation run` command (including interpreter start-up). A third line
runs the same runbook with `http.check` swapped for a minimal GET action sharing one HTTP client: the
difference to (a) is what the real action costs per call (e.g. building a TLS context per request), the
rest is the executor. Prints ratios.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from remediation.actions.registry import ActionRegistry, load_all
from remediation.executor import Executor
from remediation.loader import load_file

ENDPOINTS = 20
DELAY = 0.2
REPO = Path(__file__).resolve().parents[1]


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(DELAY)
        body = b'{"status":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


def start_endpoints() -> tuple[list[ThreadingHTTPServer], list[str]]:
    servers, urls = [], []
    for _ in range(ENDPOINTS):
        server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        urls.append(f"http://127.0.0.1:{server.server_address[1]}/health")
    return servers, urls


def write_runbook(directory: Path, urls: list[str]) -> Path:
    doc = {
        "apiVersion": "shorts.ops/v1",
        "kind": "Runbook",
        "metadata": {
            "name": "bench-morning",
            "title": "Morning-check style endpoint checks",
            "severity": "P3",
            "description": "Every service endpoint must answer 200, checked side by side.",
        },
        "params": {"endpoints": {"type": "list", "default": urls}},
        "steps": [
            {
                "id": "services",
                "action": "http.check",
                "foreach": {"items": "${params.endpoints}", "concurrency": ENDPOINTS},
                "with": {"url": "${item}", "expect": {"status": 200}, "timeout": "10s"},
            }
        ],
    }
    path = directory / "bench-morning.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def curl_loop(urls: list[str]) -> float:
    script = "\n".join(
        [
            "services=(" + " ".join(f'"{u}"' for u in urls) + ")",
            'for service in "${services[@]}"; do',
            '  response=$(curl -s -o /dev/null -w "%{http_code}" "$service")',
            '  if [ "$response" = "200" ]; then echo "ok $service";',
            '  else echo "FAIL $service $response"; exit 1; fi',
            "done",
        ]
    )
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)
    return time.perf_counter() - started


def shared_client_registry() -> tuple[ActionRegistry, httpx.AsyncClient]:
    client = httpx.AsyncClient(timeout=10)
    real = load_all().get("http.check")

    async def get(ctx: Any, params: Mapping[str, Any]) -> dict[str, Any]:
        response = await client.get(params["url"])
        return {"status": response.status_code, "latency_ms": 0, "body": None}

    registry = ActionRegistry()
    registry.register(dataclasses.replace(real, run=get))
    return registry, client


def in_process(path: Path, state: Path, registry: ActionRegistry | None = None) -> float:
    registry = registry or load_all()
    book = load_file(path, registry)
    params = {"endpoints": book.params["endpoints"].default}
    started = time.perf_counter()
    result = asyncio.run(Executor(registry, state=state).run(book, params, {}))
    elapsed = time.perf_counter() - started
    if result.outcome != "success":
        raise SystemExit(f"the executor's checks failed: {result.reason}")
    return elapsed


def via_cli(path: Path, state: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "remediation.cli",
            "run",
            str(path),
            "--state-dir",
            str(state),
            "--output",
            "json",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return time.perf_counter() - started


def main() -> None:
    servers, urls = start_endpoints()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = write_runbook(Path(tmp), urls)
            in_process(path, Path(tmp) / "warm")
            executor_times = [in_process(path, Path(tmp) / f"s{i}") for i in range(3)]
            cli_times = [via_cli(path, Path(tmp) / f"c{i}") for i in range(2)]
            shared_registry, client = shared_client_registry()
            shared_times = [in_process(path, Path(tmp) / f"h{i}", shared_registry) for i in range(3)]
            del client  # left open: it belonged to event loops that are gone
            curl_times = [curl_loop(urls) for _ in range(2)]
    finally:
        for server in servers:
            server.shutdown()
    executor, cli, curl, shared = min(executor_times), min(cli_times), min(curl_times), min(shared_times)
    print(f"{ENDPOINTS} endpoints answering in {DELAY * 1000:.0f} ms each")
    print(f"sequential curl loop (morning-check.sh style): {curl * 1000:.0f} ms")
    print(
        f"executor foreach http.check, in-process:       {executor * 1000:.0f} ms"
        f"  -> {curl / executor:.1f}x faster"
    )
    print(
        f"same runbook, GET action with one shared client: {shared * 1000:.0f} ms"
        f"  -> {curl / shared:.1f}x faster"
    )
    print(f"`remediation run` command incl. start-up:      {cli * 1000:.0f} ms  -> {curl / cli:.1f}x faster")


if __name__ == "__main__":
    main()
