"""Fixtures for the receiver's unit tests (builders live in builders.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from remediation.receiver.guards import GuardPolicy, InMemoryGuardStore

from .builders import Harness, write_runbooks


@pytest.fixture
def runbooks_dir(tmp_path: Path) -> Path:
    return write_runbooks(tmp_path / "runbooks")


@pytest.fixture
def harness_factory(runbooks_dir: Path, tmp_path: Path) -> Callable[..., Harness]:
    counter = iter(range(1000))

    def build(policy: GuardPolicy | None = None, store: InMemoryGuardStore | None = None) -> Harness:
        return Harness(runbooks_dir, tmp_path / f"alerts-{next(counter)}.jsonl", policy, store)

    return build


@pytest.fixture
def harness(harness_factory: Callable[..., Harness]) -> Harness:
    return harness_factory()
