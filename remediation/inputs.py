"""What a run is given besides the runbook: the profile file and `--param k=v` values, both validated."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from remediation.checks import param_type_ok
from remediation.durations import EXAMPLES
from remediation.errors import Problem, RunbookInvalid
from remediation.model import Runbook
from remediation.schemas import schema_problems, suggest
from remediation.yamlsource import parse

PROFILE_ENV = "REMEDIATION_PROFILE"
_DSN_PASSWORD = re.compile(r"(^|\s)password\s*=|://[^/@\s]*:[^/@\s]*@", re.IGNORECASE)


def load_profile(path: str | Path | None) -> dict[str, Any]:
    """The profile at `path` (or $REMEDIATION_PROFILE); an empty profile when neither is given."""
    chosen = path if path is not None else os.environ.get(PROFILE_ENV)
    if not chosen:
        return {}
    file = str(chosen)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise RunbookInvalid(
            [
                Problem(
                    file,
                    "",
                    f"cannot read the profile: {reason}",
                    None,
                    "give --profile a YAML file like examples/profile.local.yaml",
                )
            ]
        ) from None
    doc, problems = parse(text, file)
    if doc is None:
        raise RunbookInvalid(problems)
    if doc.data is None or not isinstance(doc.data, dict):
        raise RunbookInvalid(
            [
                *problems,
                Problem(
                    file, "", "a profile must be a mapping of settings", 1, "see examples/profile.local.yaml"
                ),
            ]
        )
    problems.extend(schema_problems("profile", doc))
    dsn = doc.data.get("postgres_dsn")
    if isinstance(dsn, str) and _DSN_PASSWORD.search(dsn):
        problems.append(
            Problem(
                file,
                "postgres_dsn",
                "the DSN contains a password",
                doc.line("postgres_dsn"),
                "remove it; set PGPASSWORD in the environment instead",
            )
        )
    if problems:
        raise RunbookInvalid(problems)
    return dict(doc.data)


def parse_param_args(runbook: Runbook, pairs: Iterable[str], source: str = "--param") -> dict[str, Any]:
    """Typed values for `k=v` strings, checked against the runbook's declared params."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(
                Problem(source, pair, "expected NAME=VALUE", None, "e.g. --param namespace=shorts")
            )
            continue
        param = runbook.params.get(name)
        if param is None:
            problems.append(
                Problem(
                    source,
                    name,
                    f"runbook {runbook.name!r} has no parameter {name!r}",
                    None,
                    suggest(name, runbook.params, "parameters"),
                )
            )
            continue
        try:
            values[name] = _convert(param.type, text)
        except ValueError as err:
            problems.append(Problem(source, name, str(err), None, f"{name} is a {param.type}"))
    if problems:
        raise RunbookInvalid(problems)
    return values


def _convert(kind: str, text: str) -> Any:
    if kind == "string":
        return text
    if kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if kind == "number":
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "1", "on"):
            return True
        if lowered in ("false", "no", "0", "off"):
            return False
        raise ValueError(f"{text!r} is not a boolean (write true or false)")
    if kind == "duration":
        if not param_type_ok("duration", text):
            raise ValueError(f"{text!r} is not a duration ({EXAMPLES})")
        return text
    # list: a JSON array, or comma-separated text
    if text.strip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{text!r} is not a JSON list: {err.msg}") from None
        if not isinstance(value, list):
            raise ValueError(f"{text!r} is not a list")
        return value
    return [part.strip() for part in text.split(",") if part.strip()]


def resolve_params(runbook: Runbook, given: Mapping[str, Any], source: str = "--param") -> dict[str, Any]:
    """Defaults plus `given`, checked: every value typed, in its enum and bounds; none missing."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, param in runbook.params.items():
        if name in given:
            value = given[name]
        elif param.has_default:
            value = param.default
        else:
            problems.append(
                Problem(
                    source,
                    name,
                    f"parameter {name!r} is required",
                    None,
                    f"pass --param {name}=<{param.type}>",
                )
            )
            continue
        if not param_type_ok(param.type, value):
            problems.append(Problem(source, name, f"{value!r} is not a valid {param.type}", None))
        elif param.enum and value not in param.enum:
            problems.append(
                Problem(
                    source,
                    name,
                    f"{value!r} is not allowed",
                    None,
                    f"one of: {', '.join(map(str, param.enum))}",
                )
            )
        elif isinstance(value, int | float) and not isinstance(value, bool) and not _in_bounds(param, value):
            problems.append(
                Problem(
                    source,
                    name,
                    f"{value} is out of range",
                    None,
                    f"between {param.minimum} and {param.maximum}",
                )
            )
        values[name] = value
    for name in given:
        if name not in runbook.params:
            problems.append(
                Problem(
                    source,
                    name,
                    f"runbook {runbook.name!r} has no parameter {name!r}",
                    None,
                    suggest(name, runbook.params, "parameters"),
                )
            )
    if problems:
        raise RunbookInvalid(problems)
    return values


def _in_bounds(param: Any, value: float) -> bool:
    if param.minimum is not None and value < param.minimum:
        return False
    return not (param.maximum is not None and value > param.maximum)
