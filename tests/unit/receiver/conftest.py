"""Fixtures for the receiver's unit tests (builders live in builders.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediation.receiver.guards import GuardPolicy, InMemoryGuardStore

from .builders import Harness, write_runbooks


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    return write_runbooks(tmp_path / "runbooks")


@pytest.fixture
def harness_factory(runbooks_dir: Path, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    built: list[Harness] = []

    def build(policy: GuardPolicy | None = None, store: InMemoryGuardStore | None = None) -> Harness:
        harness = Harness(runbooks_dir, tmp_path / f"alerts-{len(built)}.jsonl", policy, store)
        built.append(harness)
        return harness

    yield build
    for harness in built:
        harness.receiver.alert_log.close()


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
