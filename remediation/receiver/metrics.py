"""Prometheus metrics in the text exposition format (version 0.0.4), with no client library.

Small on purpose: counters with labels, one gauge function and one histogram are all the receiver needs.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def total(self) -> float:
        with self._lock:
            return sum(self._values.values())

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            items = sorted(self._values.items()) or [((), 0.0)]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in items]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self._counts = [0] * (len(buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            counts, total = list(self._counts), self._sum
        running = 0
        for bound, count in zip(self.buckets, counts, strict=False):
            running += count
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {running}')
        running += counts[-1]
        lines += [
            f'{self.name}_bucket{{le="+Inf"}} {running}',
            f"{self.name}_sum {total:g}",
            f"{self.name}_count {running}",
        ]
        return lines


class Metrics:
    def __init__(self) -> None:
        p = "remediation_receiver"
        self.requests = Counter(f"{p}_requests_total", "Webhook requests by HTTP status code.")
        self.received = Counter(f"{p}_alerts_received_total", "Alerts received, by alert status.")
        self.deduplicated = Counter(f"{p}_alerts_deduplicated_total", "Alert episodes already handled.")
        self.suppressed = Counter(
            f"{p}_alerts_suppressed_total", "Firing alerts that started nothing, by reason."
        )
        self.jobs_created = Counter(
            f"{p}_jobs_created_total", "Remediation Jobs created, by mode (run, escalate)."
        )
        self.failures = Counter(f"{p}_failures_total", "Errors while handling alerts, by stage.")
        self.latency = Histogram(
            f"{p}_alert_to_launch_seconds", "Seconds from receiving an alert to its Job being created."
        )
        self.queue_depth: Callable[[], int] = lambda: 0

    def render(self) -> str:
        lines: list[str] = []
        for counter in (
            self.requests,
            self.received,
            self.deduplicated,
            self.suppressed,
            self.jobs_created,
            self.failures,
        ):
            lines += counter.render()
        lines += self.latency.render()
        name = "remediation_receiver_queue_depth"
        lines += [
            f"# HELP {name} Notifications waiting to be processed.",
            f"# TYPE {name} gauge",
            f"{name} {self.queue_depth()}",
        ]
        return "\n".join(lines) + "\n"
