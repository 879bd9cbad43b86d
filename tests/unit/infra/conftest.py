"""The program evaluated under Pulumi mocks, once per stack per test session."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from infra.evaluate import Evaluation, evaluate, raw_settings, stack_config, stacks

STACKS = stacks()


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    return {stack: evaluate(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def evaluation(request: pytest.FixtureRequest, evaluations: dict[str, Evaluation]) -> Evaluation:
    return evaluations[request.param]


@pytest.fixture
def production_raw() -> dict[str, Any]:
    """The production stack's settings, a fresh copy per test to break."""
    return copy.deepcopy(raw_settings(stack_config("production")))
