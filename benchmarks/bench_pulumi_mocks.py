"""How long the production program takes to evaluate under Pulumi mocks (what every unit test and
manifest test pays), against two baselines measured in the same run:

- the mock machinery alone: an empty program that only registers the Kubernetes provider;
- the smallest real stack, `local`.

Prints the median of several runs and the ratios; asserts nothing about time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi_kubernetes as k8s

from infra.evaluate import evaluate, run_under_mocks

RUNS = 7


def empty_program() -> dict[str, object]:
    k8s.Provider("k8s")
    return {}


def median_seconds(label: str, fn: Callable[[], int]) -> tuple[float, int]:
    fn()  # warm-up: imports and schema loading are not what we measure
    samples, count = [], 0
    for _ in range(RUNS):
        start = time.perf_counter()
        count = fn()
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    print(f"{label:<34} {median * 1000:8.1f} ms  ({count} resources, median of {RUNS})")
    return median, count


def main() -> None:
    empty, _ = median_seconds(
        "empty program (mocks only)", lambda: len(run_under_mocks("bench", empty_program).resources)
    )
    local, _ = median_seconds("local stack", lambda: len(evaluate("local").resources))
    production, count = median_seconds("production stack", lambda: len(evaluate("production").resources))
    print(f"production / empty program: {production / empty:6.1f}x")
    print(f"production / local stack:   {production / local:6.2f}x")
    print(f"per resource (production):  {(production - empty) / count * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
