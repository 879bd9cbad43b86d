"""`${namespace.path}` templates inside runbook strings.

Namespaces (the contract between runbooks and the executor):
    ${params.X}                  a declared runbook parameter
    ${profile.X}                 a connection setting from the profile file
    ${steps.ID.output.KEY...}    an output of an earlier step (also ${steps.ID.outcome}, ${steps.ID.error})
    ${item} / ${item.KEY}        the current element inside a `foreach` step
    ${run.id|started_at|runbook|failed|failures}
    ${trigger.labels.X} / ${trigger.annotations.X}    the alert that started the run

A string that is exactly one template keeps the referenced value's type (a list stays a list, an
integer an integer); otherwise values are interpolated as text. `$${` writes a literal `${`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACES = ("params", "profile", "steps", "item", "run", "trigger")
RUN_KEYS = ("id", "started_at", "runbook", "failed", "failures")
STEP_KEYS = ("output", "outcome", "error")

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


class TemplateError(ValueError):
    """A template is malformed or refers to something that is not available."""


@dataclass(frozen=True)
class Ref:
    """A dotted reference such as params.namespace or steps.db.output.active_connections."""

    parts: tuple[str, ...]

    @property
    def namespace(self) -> str:
        return self.parts[0]

    def __str__(self) -> str:
        return ".".join(self.parts)


def parse_ref(text: str) -> Ref:
    parts = tuple(text.strip().split("."))
    if not parts or not all(_SEGMENT.match(p) for p in parts):
        raise TemplateError(f"${{{text}}} is not a reference (write e.g. ${{params.name}})")
    if parts[0] not in NAMESPACES:
        raise TemplateError(f"unknown namespace {parts[0]!r} in ${{{text}}} (known: {', '.join(NAMESPACES)})")
    if parts[0] != "item" and len(parts) < 2:
        raise TemplateError(f"${{{text}}} needs a name after {parts[0]}. (e.g. ${{{parts[0]}.x}})")
    return Ref(parts)


def refs_in(text: str) -> list[Ref]:
    """Every reference in `text`; TemplateError for a malformed or unclosed template."""
    refs: list[Ref] = []
    for match in _TOKEN.finditer(text):
        token = match.group(0)
        if token == "$${":
            continue
        if match.group(1) is None:
            raise TemplateError("unclosed template `${` (close it with `}`, or write `$${` for a literal)")
        refs.append(parse_ref(match.group(1)))
    return refs


def has_template(value: object) -> bool:
    return isinstance(value, str) and "${" in value.replace("$${", "")


def walk_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) for every string inside nested dicts/lists (keys excluded)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, child in value.items():
            yield from walk_strings(child, f"{path}/{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk_strings(child, f"{path}/{index}")


_MISSING = object()


def lookup(scope: Mapping[str, Any], ref: Ref) -> Any:
    """The value `ref` points at in `scope`; TemplateError saying which part is missing."""
    value: Any = scope
    for depth, part in enumerate(ref.parts):
        found: Any = _MISSING
        if isinstance(value, Mapping):
            found = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            found = value[int(part)]
        if found is _MISSING:
            where = ".".join(ref.parts[: depth + 1])
            raise TemplateError(f"${{{ref}}} is not available: {where} is not set{_why(ref)}")
        value = found
    return value


def _why(ref: Ref) -> str:
    if ref.namespace == "profile":
        return f" (add `{ref.parts[1]}:` to the profile file given with --profile)"
    if ref.namespace == "steps":
        return f" (step {ref.parts[1]!r} has not run, or did not produce it, in this run)"
    if ref.namespace == "trigger":
        return " (only runs started by an alert have a trigger)"
    return ""


def to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(to_text(v) for v in value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render_string(text: str, scope: Mapping[str, Any], missing: str | None = None) -> Any:
    """Resolve the templates in `text`. `missing`, when given, stands in for unavailable values."""
    whole = _TOKEN.fullmatch(text)
    if whole is not None and whole.group(1) is not None:
        return _resolve(parse_ref(whole.group(1)), scope, missing)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        if match.group(1) is None:
            raise TemplateError("unclosed template `${`")
        return to_text(_resolve(parse_ref(match.group(1)), scope, missing))

    return _TOKEN.sub(replace, text)


def _resolve(ref: Ref, scope: Mapping[str, Any], missing: str | None) -> Any:
    try:
        return lookup(scope, ref)
    except TemplateError:
        if missing is None:
            raise
        return missing.replace("{ref}", str(ref))


def render(value: Any, scope: Mapping[str, Any], missing: str | None = None) -> Any:
    """Resolve templates in every string of a nested value."""
    if isinstance(value, str):
        return render_string(value, scope, missing)
    if isinstance(value, Mapping):
        return {key: render(child, scope, missing) for key, child in value.items()}
    if isinstance(value, list):
        return [render(child, scope, missing) for child in value]
    return value
