"""Templates and `when:` expressions: parsing, rendering, evaluation, and the errors a runbook author sees."""

from __future__ import annotations

import pytest

from remediation.durations import format_duration, parse_duration
from remediation.expressions import ExpressionError, evaluate, parse
from remediation.model import Retry
from remediation.templates import TemplateError, refs_in, render

SCOPE = {
    "params": {"namespace": "shorts", "count": 3, "hosts": ["a", "b"], "force": False},
    "profile": {"api_url": "http://api"},
    "steps": {
        "db": {"outcome": "failed", "output": {"active_connections": 120, "rows": [{"n": 1}]}, "error": "x"}
    },
    "run": {"id": "r1", "failed": True, "failures": ["db"]},
    "trigger": {"labels": {"service": "api"}, "annotations": {}},
}


def test_a_whole_template_keeps_its_type():
    assert render("${params.count}", SCOPE) == 3
    assert render("${params.hosts}", SCOPE) == ["a", "b"]
    assert render({"n": ["${params.count}"]}, SCOPE) == {"n": [3]}


def test_templates_inside_text_interpolate():
    assert render("${profile.api_url}/health?ns=${params.namespace}", SCOPE) == "http://api/health?ns=shorts"
    assert render("failed: ${run.failures}, forced ${params.force}", SCOPE) == "failed: db, forced false"
    assert render("row ${steps.db.output.rows.0.n}", SCOPE) == "row 1"


def test_dollar_dollar_is_a_literal():
    assert render("cost $${params.count} = ${params.count}", SCOPE) == "cost ${params.count} = 3"
    assert refs_in("$${not.a.ref}") == []


def test_missing_values_say_what_to_do():
    with pytest.raises(
        TemplateError, match=r"profile.redis_url is not set \(add `redis_url:` to the profile"
    ):
        render("${profile.redis_url}", SCOPE)
    with pytest.raises(TemplateError, match="step 'web' has not run"):
        render("${steps.web.output.status}", SCOPE)
    assert render("${steps.web.output.status}", SCOPE, missing="<{ref}>") == "<steps.web.output.status>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${params.x", "unclosed template"),
        ("${}", "is not a reference"),
        ("${env.HOME}", "unknown namespace 'env'"),
        ("${params}", "needs a name after params"),
        ("${params..x}", "is not a reference"),
    ],
)
def test_malformed_templates(text, message):
    with pytest.raises(TemplateError, match=message):
        refs_in(text)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("steps.db.outcome == 'failed'", True),
        ("steps.db.output.active_connections >= 100 and not params.force", True),
        ("params.force or params.count < 2", False),
        ("params.namespace in ['shorts', 'staging']", True),
        ("'db' in run.failures", True),
        ("steps.web.output.status == null", True),  # never-run step: null, not an error
        ("not (run.failed and params.count == 3)", False),
        ("params.count != '3'", True),  # different kinds are never equal
        ("true", True),
        ("-1 < 0.5", True),
    ],
)
def test_expressions_evaluate(expression, value):
    assert evaluate(parse(expression), SCOPE) is value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("params.count >", "expression ends early"),
        ("params.count = 3", "unexpected character '='"),
        ("1 < 2 < 3", "cannot be chained"),
        ("params.count 3", "unexpected '3'"),
        ("(params.force", "expected ')'"),
        ("__import__('os')", "unknown namespace '__import__'"),
        ("", "empty expression"),
    ],
)
def test_expression_syntax_errors_point_at_a_column(expression, message):
    with pytest.raises(ExpressionError) as caught:
        parse(expression)
    assert message in str(caught.value) and caught.value.column is not None


def test_ordering_different_kinds_is_an_error_not_false():
    with pytest.raises(ExpressionError, match="cannot compare null None < number 3"):
        evaluate(parse("steps.web.output.status < 3"), SCOPE)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("5s", 5), ("10m", 600), ("1h", 3600), ("30d", 2_592_000), ("1.5s", 1.5)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["5", "5 m", "m", "-1s", "1w"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_backoff_delays():
    exponential = Retry(attempts=6, backoff="exponential", initial=1, max=10)
    assert [exponential.delay(n, 0.5) for n in range(1, 6)] == [1, 2, 4, 8, 10]
    fixed = Retry(attempts=3, backoff="fixed", initial=15, max=60, jitter=0.2)
    assert fixed.delay(1, 0.0) == 12 and fixed.delay(2, 0.5) == 15 and 17.99 < fixed.delay(3, 0.9999) <= 18
