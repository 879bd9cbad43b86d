"""Property: whatever YAML the loader gets, it returns a Runbook or raises RunbookInvalid, nothing else."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediation.errors import RunbookInvalid
from remediation.loader import load_text
from remediation.model import Runbook

from .conftest import Script, make_registry
from .helpers import document

REGISTRY = make_registry(Script())

words = st.sampled_from(
    [
        "check",
        "a",
        "next",
        "end",
        "escalate",
        "abort",
        "continue",
        "http.check",
        "t.step",
        "kubernetes.restart",
        "${params.x}",
        "${steps.a.output.key}",
        "${item}",
        "${profile.api_url}",
        "${run.id}",
        "${",
        "10m",
        "5 minutes",
        "P1",
        "on",
        "yes",
        "",
        "steps.a.outcome == 'failed'",
        "not params.x",
        "((",
        "x",
        "url",
        "key",
        "with",
        "retry",
        "when",
        "foreach",
    ]
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True), words, st.text(max_size=12)
)
json_like = st.recursive(
    scalars,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(words, kids, max_size=4)),
    max_leaves=25,
)


def _step() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"id": st.one_of(words, st.just("a"), st.just("b")), "action": words},
        optional={
            "with": st.dictionaries(words, json_like, max_size=3),
            "when": st.one_of(words, st.booleans()),
            "on": st.dictionaries(st.sampled_from(["success", "failure", "other"]), words, max_size=2),
            "retry": st.dictionaries(
                st.sampled_from(["attempts", "backoff", "initial", "max", "jitter"]), scalars, max_size=3
            ),
            "foreach": st.dictionaries(st.sampled_from(["items", "concurrency"]), json_like, max_size=2),
            "timeout": scalars,
        },
    )


runbook_like = st.builds(
    lambda steps, top: {**document(steps), **top},
    st.lists(_step(), max_size=4),
    st.dictionaries(
        st.sampled_from(["params", "guards", "escalate", "timeout", "triggers", "extra", "metadata"]),
        json_like,
        max_size=3,
    ),
)


def _check(text: str) -> None:
    try:
        result = load_text(text, "fuzz", REGISTRY)
    except RunbookInvalid as err:
        assert err.problems, "an invalid runbook names at least one problem"
        for problem in err.problems:
            assert problem.file == "fuzz" and problem.message
        return
    assert isinstance(result, Runbook)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_like)
def test_arbitrary_yaml_documents(value: Any) -> None:
    _check(yaml.safe_dump(value, allow_unicode=True))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runbook_like)
def test_runbook_shaped_documents(value: dict[str, Any]) -> None:
    _check(yaml.safe_dump(value, allow_unicode=True, sort_keys=False))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    runbook_like,
    st.integers(0, 400),
    st.sampled_from(["", ":", "- ", "{", "&a ", "*a", "\t", "!!binary ", "'"]),
)
def test_damaged_runbook_text(value: dict[str, Any], position: int, junk: str) -> None:
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False)
    position = min(position, len(text))
    _check(text[:position] + junk + text[position:])
