"""The JSON Schemas in schemas/ and the translation of their errors into Problems a human can act on."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from remediation.durations import EXAMPLES
from remediation.errors import Problem
from remediation.templates import has_template
from remediation.yamlsource import Document

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """schemas/<name>.schema.json, parsed once."""
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator_for(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def profile_keys() -> tuple[str, ...]:
    return tuple(load_schema("profile")["properties"])


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def suggest(word: str, choices: Iterable[str], what: str) -> str:
    """A did-you-mean when one is close, else the list of what would be valid."""
    options = sorted(set(choices))
    return did_you_mean(word, options) or (
        f"valid {what}: {', '.join(options)}" if options else f"no {what} exist"
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "a mapping"


def _join(path: str, *more: object) -> str:
    parts = [path] if path else []
    parts.extend(str(p) for p in more)
    return "/".join(parts)


def _error_problems(err: ValidationError, doc: Document, base: str) -> list[Problem]:
    path = _join(base, *err.absolute_path)
    validator, schema, instance = err.validator, err.schema, err.instance
    hint: str | None = None
    if validator == "additionalProperties" and isinstance(instance, Mapping) and isinstance(schema, Mapping):
        known = list(schema.get("properties", {}))
        return [
            Problem(
                doc.file,
                _join(path, key),
                f"unknown field {key!r}",
                doc.line(_join(path, key)),
                suggest(str(key), known, "fields"),
            )
            for key in instance
            if key not in known
        ]
    if validator == "required":
        match = re.match(r"'(.+)' is a required property", err.message)
        name = match.group(1) if match else err.message
        message = f"missing required field {name!r}"
    elif validator == "const":
        message = f"must be {err.validator_value!r}, not {instance!r}"
    elif validator == "enum":
        allowed_values: Any = err.validator_value
        options = [str(v) for v in allowed_values]
        message = f"{instance!r} is not allowed"
        hint = suggest(str(instance), options, "values")
    elif validator == "type":
        allowed: Any = err.validator_value
        expected = allowed if isinstance(allowed, str) else " or ".join(allowed)
        message = f"must be {expected}, not {_json_type(instance)}"
    elif validator == "pattern":
        message, hint = _pattern_message(instance, schema if isinstance(schema, Mapping) else {})
    elif validator == "propertyNames":
        message = f"name {instance!r} is not allowed"
        hint = "use lowercase letters, digits and _ , starting with a letter"
    elif validator in ("minimum", "maximum", "minItems", "minLength"):
        message = f"{err.message}"
    else:
        message = err.message
    return [Problem(doc.file, path, message, doc.line(path), hint)]


def _pattern_message(instance: Any, schema: Mapping[str, Any]) -> tuple[str, str]:
    description = str(schema.get("description", ""))
    if "duration" in description:
        return f"{instance!r} is not a duration", f"write a number and a unit: {EXAMPLES}"
    if "next |" in description:
        return f"{instance!r} is not a transition", "next, continue, end, escalate, abort or a step id"
    return f"{instance!r} does not match {schema.get('pattern')}", description or "see the schema"


def schema_problems(name: str, doc: Document, base: str = "") -> list[Problem]:
    """Every error of `doc.data` against schemas/<name>.schema.json, most specific first."""
    errors = sorted(_validator_for(name).iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path)))
    problems: list[Problem] = []
    for err in errors:
        problems.extend(_expand(err, doc, base))
    return problems


def _expand(err: ValidationError, doc: Document, base: str) -> list[Problem]:
    # anyOf/oneOf say only "not valid under any"; their best sub-error says what is actually wrong.
    if err.validator in ("anyOf", "oneOf") and err.context:
        best = min(err.context, key=lambda e: (-len(e.absolute_path), str(e.validator)))
        return _error_problems(best, doc, base)
    return _error_problems(err, doc, base)


_VALIDATORS: dict[int, tuple[Mapping[str, Any], Draft202012Validator]] = {}


def _action_validator(schema: Mapping[str, Any]) -> Draft202012Validator:
    """One validator per action schema object (kept alive here, so its id is never reused)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def action_param_problems(
    schema: Mapping[str, Any], params: Any, doc: Document, base: str, action: str
) -> list[Problem]:
    """Errors of a step's `with:` against the action's own schema.

    A templated string may stand where a typed value is expected (it is checked again, with real
    values, when the step runs), so errors whose value is a template are dropped here.
    """
    try:
        validator = _action_validator(schema)
        errors = list(validator.iter_errors(params))
    except (SchemaError, TypeError, ValueError) as broken:
        return [
            Problem(
                doc.file,
                base,
                f"action {action!r} has an unusable parameter schema: {broken}",
                doc.line(base),
                "this is a bug in remediation/actions, not in the runbook",
            )
        ]
    problems: list[Problem] = []
    for err in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        if has_template(err.instance):
            continue
        problems.extend(_expand(err, doc, base))
    return problems


def validate_with_schema(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Plain messages for `value` against `schema` (used at run time, after templates are resolved)."""
    validator = _action_validator(schema)
    messages = []
    for err in validator.iter_errors(value):
        where = "/".join(str(p) for p in err.absolute_path) or "(with)"
        messages.append(f"{where}: {err.message}")
    return messages
