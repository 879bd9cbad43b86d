"""`remediation serve`: the HTTP front of the receiver.

The handler only authenticates, bounds, parses and validates; the decision work happens on a small
pool of worker threads behind a bounded queue, so Alertmanager gets its answer in milliseconds even
during a storm. A full queue answers 503, which Alertmanager retries: nothing is dropped silently.

Alertmanager side (the token file is the same Secret the receiver reads with --token-file):

    receivers:
      - name: remediation
        webhook_configs:
          - url: http://remediation-receiver.shorts.svc:8080/alerts
            send_resolved: true
            max_alerts: 0
            http_config:
              authorization: {type: Bearer, credentials_file: /etc/alertmanager/secrets/receiver-token}
"""

from __future__ import annotations

import argparse
import hmac
import io
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from .alertlog import AlertLog
from .core import Receiver, ReceiverConfig
from .events import EventRecorder
from .guards import GuardPolicy, GuardStore, InMemoryGuardStore
from .jobs import DryRunLauncher, JobLauncher, JobTemplate
from .mapping import parse_duration
from .payload import Notification, PayloadError, parse_notification

log = logging.getLogger("remediation.receiver")

DEFAULT_MAX_BODY = (
    1024 * 1024
)  # Alertmanager groups are small; 1 MiB is generous and bounds memory per request
DRAIN_LIMIT = 16 * 1024 * 1024
TOKEN_ENV = "REMEDIATION_RECEIVER_TOKEN"
TOKEN_FILE_ENV = "REMEDIATION_RECEIVER_TOKEN_FILE"


class TokenSource:
    """The bearer token from a file (a mounted Secret; re-read when it changes, for rotation) or env."""

    def __init__(self, path: Path | None, value: str | None = None) -> None:
        self._path, self._value, self._mtime = path, (value or "").strip(), -1.0
        self._lock = threading.Lock()
        if path is None and not self._value:
            raise ValueError(f"no token: give --token-file, or set {TOKEN_FILE_ENV} or {TOKEN_ENV}")
        self.current()

    def current(self) -> bytes:
        if self._path is None:
            return self._value.encode()
        with self._lock:
            try:
                mtime = self._path.stat().st_mtime
                if mtime != self._mtime:
                    self._value, self._mtime = self._path.read_text(encoding="utf-8").strip(), mtime
            except OSError as exc:
                raise ValueError(f"token file {self._path}: {exc.strerror}") from None
            if not self._value:
                raise ValueError(f"token file {self._path} is empty")
            return self._value.encode()

    def matches(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return False
        # compare_digest: the time taken does not reveal how much of the token was right.
        return hmac.compare_digest(credentials.strip().encode(), self.current())


@dataclass
class _Work:
    notification: Notification
    received_at: float
    received_mono: float


class ReceiverServer:
    """HTTP server + worker pool + periodic reconcile, around one Receiver."""

    def __init__(
        self,
        receiver: Receiver,
        token: TokenSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = DEFAULT_MAX_BODY,
        queue_size: int = 1000,
        workers: int = 4,
        reconcile_every_s: float = 15.0,
    ) -> None:
        self.receiver, self.token, self.max_body = receiver, token, max_body
        self.queue: queue.Queue[_Work | None] = queue.Queue(maxsize=queue_size)
        receiver.metrics.queue_depth = self.queue.qsize
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self._workers = [
            threading.Thread(target=self._work, name=f"receiver-worker-{i}", daemon=True)
            for i in range(workers)
        ]
        self._stop = threading.Event()
        self._reconcile_every = reconcile_every_s
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        for worker in self._workers:
            worker.start()
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, name="receiver-http", daemon=True),
            threading.Thread(target=self._reconcile_loop, name="receiver-reconcile", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Stop taking requests, finish what is queued, then stop the workers."""
        self.httpd.shutdown()
        self.httpd.server_close()
        deadline = time.monotonic() + drain_timeout_s
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        self._stop.set()
        for _ in self._workers:
            try:
                self.queue.put(None, timeout=1)
            except queue.Full:
                break
        for worker in self._workers:
            worker.join(timeout=2)
        self.receiver.reconcile()
        self.receiver.alert_log.close()

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every accepted notification has been handled (tests, benchmarks)."""
        deadline = time.monotonic() + timeout_s
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self.queue.unfinished_tasks

    def healthy(self) -> bool:
        return all(w.is_alive() for w in self._workers)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                self.receiver.handle(item.notification, item.received_at, item.received_mono)
            except Exception:  # a bug for one notification must not stop the worker
                self.receiver.metrics.failures.inc(stage="worker")
                log.exception("handling notification")
            finally:
                self.queue.task_done()

    def _reconcile_loop(self) -> None:
        while not self._stop.wait(self._reconcile_every):
            try:
                self.receiver.reconcile()
            except Exception:
                log.exception("reconcile")


def _handler_for(server: ReceiverServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one write: two small writes meet Nagle + delayed ACK (~40 ms each reply).
        wbufsize = -1
        disable_nagle_algorithm = True
        server_version = "remediation-receiver"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            # The request line and status only: never headers (the token) nor bodies (alert annotations).
            log.debug("%s %s", self.address_string(), format % args)

        def _reply(
            self, status: int, payload: dict[str, object], headers: dict[str, str] | None = None
        ) -> None:
            body = (json.dumps(payload) + "\n").encode()
            server.receiver.metrics.requests.inc(code=str(status))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")  # so the client does not reuse this connection
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = server.healthy()
                self._reply(200 if ok else 503, {"status": "ok" if ok else "workers stopped"})
            elif self.path == "/metrics":
                body = server.receiver.metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self._reply(404, {"error": f"no such path {self.path}; try POST /alerts, /healthz, /metrics"})

        def do_POST(self) -> None:
            received_at, received_mono = time.time(), time.monotonic()
            if self.path not in ("/alerts", "/"):
                self._reply(404, {"error": f"no such path {self.path}; Alertmanager should POST to /alerts"})
                return
            if not server.token.matches(self.headers.get("Authorization")):
                self.close_connection = True
                self._reply(401, {"error": "missing or wrong bearer token"}, {"WWW-Authenticate": "Bearer"})
                return
            body = self._read_body()
            if body is None:
                return
            try:
                notification = parse_notification(body)
            except PayloadError as exc:
                self._reply(400, {"error": str(exc)})
                return
            try:
                server.queue.put_nowait(_Work(notification, received_at, received_mono))
            except queue.Full:
                server.receiver.metrics.failures.inc(stage="queue-full")
                self._reply(503, {"error": "receiver busy, retry"}, {"Retry-After": "1"})
                return
            self._reply(200, {"accepted": len(notification.alerts)})

        def _read_body(self) -> bytes | None:
            length_header = self.headers.get("Content-Length")
            if length_header is None or not length_header.isdigit():
                self.close_connection = True
                self._reply(400, {"error": "Content-Length: required (a decimal byte count)"})
                return None
            length = int(length_header)
            if length > server.max_body:
                # Read and drop a moderately oversized body so the client surely sees the 413 (closing on
                # unread data can reset the connection first); anything larger is cut off unread.
                if length <= DRAIN_LIMIT:
                    _discard(self.rfile, length)
                self.close_connection = True
                self._reply(
                    413, {"error": f"body: {length} bytes is over the limit of {server.max_body} bytes"}
                )
                return None
            return self.rfile.read(length)

    return Handler


def _discard(stream: io.BufferedIOBase, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            return
        length -= len(chunk)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="remediation serve",
        description="Receive Alertmanager webhooks and start guarded remediation Jobs.",
    )
    p.add_argument("--listen", default="0.0.0.0:8080", help="host:port to listen on (default 0.0.0.0:8080)")
    p.add_argument("--runbooks-dir", default="/runbooks", type=Path)
    p.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", "shorts"))
    p.add_argument(
        "--token-file",
        type=Path,
        default=os.environ.get(TOKEN_FILE_ENV) or None,
        help=f"file holding the bearer token (a mounted Secret); or env {TOKEN_FILE_ENV} / {TOKEN_ENV}",
    )
    p.add_argument(
        "--store",
        choices=["kubernetes", "memory"],
        default="kubernetes",
        help="where guard state lives: Leases in the namespace (default), or this process only",
    )
    p.add_argument(
        "--launcher",
        choices=["kubernetes", "log"],
        default="kubernetes",
        help="create Jobs (default), or only log what would be created",
    )
    p.add_argument("--kubeconfig", default=None)
    p.add_argument("--kube-context", default=None)
    p.add_argument("--image", default=JobTemplate.image, help="image of the remediation Jobs")
    p.add_argument("--secret-name", default=JobTemplate.secret_name)
    p.add_argument("--profile-configmap", default=JobTemplate.profile_configmap)
    p.add_argument("--runbooks-configmap", default=JobTemplate.runbooks_configmap)
    p.add_argument("--job-deadline", default="30m", help="activeDeadlineSeconds of each Job, as a duration")
    p.add_argument("--cooldown", default="10m", help="default cooldown per (runbook, target)")
    p.add_argument("--budget", default="3/1h", help="default run budget per (runbook, target): RUNS/WINDOW")
    p.add_argument(
        "--breaker-failures", type=int, default=3, help="consecutive failed runs that open the breaker"
    )
    p.add_argument("--alert-log", type=Path, default=None, help="append-only JSONL record (default: stdout)")
    p.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="largest accepted body in bytes")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--queue-size", type=int, default=1000)
    return p


def _policy(args: argparse.Namespace) -> GuardPolicy:
    runs, _, window = args.budget.partition("/")
    if not runs.isdigit() or not window:
        raise ValueError(f"--budget: {args.budget!r} is not RUNS/WINDOW like 3/1h")
    return GuardPolicy(
        cooldown_s=parse_duration(args.cooldown),
        budget_runs=int(runs),
        budget_window_s=parse_duration(window),
        breaker_failures=args.breaker_failures,
    )


def _backends(
    args: argparse.Namespace, template: JobTemplate
) -> tuple[GuardStore, JobLauncher, EventRecorder | None]:
    if args.store == "memory" and args.launcher == "log":
        return InMemoryGuardStore(), DryRunLauncher(template), None
    from .events import KubernetesEvents
    from .guards_cluster import LeaseGuardStore
    from .jobs_cluster import KubernetesJobLauncher
    from .kube import api_client

    api = api_client(args.kubeconfig, args.kube_context)
    store: GuardStore = (
        LeaseGuardStore(api, args.namespace) if args.store == "kubernetes" else InMemoryGuardStore()
    )
    launcher: JobLauncher = (
        KubernetesJobLauncher(api, template) if args.launcher == "kubernetes" else DryRunLauncher(template)
    )
    return store, launcher, KubernetesEvents(api)


def build_server(args: argparse.Namespace) -> ReceiverServer:
    host, _, port = args.listen.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--listen: {args.listen!r} is not host:port")
    if not args.runbooks_dir.is_dir():
        raise ValueError(f"--runbooks-dir: {args.runbooks_dir} is not a directory")
    token = TokenSource(args.token_file, os.environ.get(TOKEN_ENV))
    template = JobTemplate(
        namespace=args.namespace,
        image=args.image,
        secret_name=args.secret_name,
        profile_configmap=args.profile_configmap,
        runbooks_configmap=args.runbooks_configmap,
        active_deadline_s=int(parse_duration(args.job_deadline)),
    )
    store, launcher, events = _backends(args, template)
    receiver = Receiver(
        ReceiverConfig(args.runbooks_dir, args.namespace, _policy(args)),
        store,
        launcher,
        events=events,
        alert_log=AlertLog(args.alert_log),
    )
    return ReceiverServer(
        receiver,
        token,
        host=host or "0.0.0.0",
        port=int(port),
        max_body=args.max_body,
        queue_size=args.queue_size,
        workers=args.workers,
    )


def serve_main(argv: list[str]) -> int:
    """Entry point of `remediation serve`. Exit 0 on SIGTERM/SIGINT after draining, 2 on bad configuration."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format='{"time":"%(asctime)s","level":"%(levelname)s","msg":"%(message)s"}',
    )
    try:
        server = build_server(args)
    except (ValueError, OSError) as exc:
        print(f"remediation serve: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    log.info("listening on %s (%d runbooks)", server.url, len(server.receiver.index.runbooks))
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(serve_main(sys.argv[1:]))
