"""Load runbooks: YAML (with line numbers) -> JSON Schema -> semantic checks -> a `Runbook`.

Every problem in a file is collected and raised together in one RunbookInvalid, each naming the file,
the line, the path inside the document and what would be valid.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from remediation.actions.registry import ActionRegistry, load_all
from remediation.checks import SemanticChecks
from remediation.durations import parse_duration
from remediation.errors import Problem, RunbookInvalid
from remediation.expressions import Literal
from remediation.expressions import parse as parse_expression
from remediation.model import Foreach, Guards, Param, Retry, Runbook, Step, Trigger
from remediation.schemas import schema_problems
from remediation.yamlsource import Document, parse

DEFAULT_RUN_TIMEOUT = 1800.0
RUNBOOK_SUFFIXES = (".yaml", ".yml")


def load_text(text: str, file: str, registry: ActionRegistry | None = None) -> Runbook:
    """Parse and check one runbook; RunbookInvalid lists every problem."""
    registry = load_all() if registry is None else registry
    doc, problems = parse(text, file)
    if doc is None:
        raise RunbookInvalid(problems)
    if not isinstance(doc.data, dict):
        problems.append(
            Problem(
                file,
                "",
                "a runbook must be a mapping of fields",
                doc.line(""),
                "start with `apiVersion: shorts.ops/v1` and `kind: Runbook`",
            )
        )
        raise RunbookInvalid(problems)
    schema_errors = schema_problems("runbook", doc)
    problems.extend(schema_errors)
    try:
        problems.extend(SemanticChecks(doc, registry).run())
    except Exception:
        # The semantic pass reads defensively; if malformed input still trips it, the schema errors
        # already explain the file. Without schema errors it is a bug and must surface.
        if not schema_errors:
            raise
    if problems:
        raise RunbookInvalid(_unique(problems))
    return _build(doc, registry, hashlib.sha256(text.encode("utf-8")).hexdigest())


def load_file(path: str | Path, registry: ActionRegistry | None = None) -> Runbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookInvalid(
            [Problem(str(path), "", "no such file", None, "give a runbook file or its name")]
        ) from None
    except UnicodeDecodeError:
        raise RunbookInvalid([Problem(str(path), "", "the file is not UTF-8 text", None)]) from None
    except OSError as err:
        raise RunbookInvalid([Problem(str(path), "", f"cannot read: {err.strerror}", None)]) from None
    return load_text(text, str(path), registry)


def runbook_files(paths: Iterable[str | Path]) -> list[Path]:
    """The runbook files named by `paths` (files as given, directories searched for *.yaml / *.yml)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in RUNBOOK_SUFFIXES and p.is_file())
            if not found:
                problems.append(Problem(str(path), "", "no runbooks (*.yaml) in this directory", None))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(str(path), "", "no such file or directory", None))
    if problems:
        raise RunbookInvalid(problems)
    return files


def load_many(paths: Iterable[str | Path], registry: ActionRegistry | None = None) -> list[Runbook]:
    """Load every runbook under `paths`; one RunbookInvalid carries the problems of all files."""
    registry = load_all() if registry is None else registry
    runbooks: list[Runbook] = []
    problems: list[Problem] = []
    for file in runbook_files(paths):
        try:
            runbooks.append(load_file(file, registry))
        except RunbookInvalid as err:
            problems.extend(err.problems)
    names: dict[str, str] = {}
    for runbook in runbooks:
        if runbook.name in names:
            problems.append(
                Problem(
                    runbook.file,
                    "metadata/name",
                    f"runbook name {runbook.name!r} is also used by {names[runbook.name]}",
                    None,
                    "names must be unique",
                )
            )
        names[runbook.name] = runbook.file
    if problems:
        raise RunbookInvalid(problems)
    return runbooks


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    result = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            result.append(problem)
    return result


# --- building the model (only reached when every check passed) -----------------------------------


def _build(doc: Document, registry: ActionRegistry, digest: str) -> Runbook:
    data: dict[str, Any] = doc.data
    meta = data["metadata"]
    params = {name: _param(name, spec) for name, spec in data.get("params", {}).items()}
    # A failed step with no `on.failure` escalates when the runbook says how (a human must hear of a
    # remediation that failed half-way), and aborts when it has no escalation steps.
    failure = "escalate" if data.get("escalate") else "abort"
    steps = tuple(
        _step(raw, registry, doc, f"steps/{i}", raw["id"], failure) for i, raw in enumerate(data["steps"])
    )
    escalate = tuple(
        _step(raw, registry, doc, f"escalate/{i}", raw.get("id") or f"escalate-{i + 1}", "abort")
        for i, raw in enumerate(data.get("escalate", []))
    )
    return Runbook(
        name=meta["name"],
        title=meta["title"],
        severity=meta["severity"],
        description=meta["description"].strip(),
        file=doc.file,
        triggers=tuple(Trigger(t["alert"], dict(t.get("match", {}))) for t in data.get("triggers", [])),
        params=params,
        guards=_guards(data.get("guards")),
        steps=steps,
        escalate=escalate,
        timeout=parse_duration(data["timeout"]) if "timeout" in data else DEFAULT_RUN_TIMEOUT,
        raw={**data, "sha256": digest},
    )


def _param(name: str, spec: Mapping[str, Any]) -> Param:
    return Param(
        name=name,
        type=spec["type"],
        default=spec.get("default"),
        has_default="default" in spec,
        description=spec.get("description", ""),
        enum=tuple(spec.get("enum", ())),
        minimum=spec.get("minimum"),
        maximum=spec.get("maximum"),
    )


def _guards(raw: Mapping[str, Any] | None) -> Guards | None:
    if raw is None:
        return None
    budget = raw.get("budget") or {}
    return Guards(
        cooldown=parse_duration(raw["cooldown"]) if "cooldown" in raw else None,
        budget_runs=budget.get("runs"),
        budget_per=parse_duration(budget["per"]) if "per" in budget else None,
        lock=raw.get("lock"),
    )


def _step(
    raw: Mapping[str, Any], registry: ActionRegistry, doc: Document, path: str, step_id: str, failure: str
) -> Step:
    when = raw.get("when")
    retry = raw.get("retry") or {}
    foreach = raw.get("foreach")
    on = raw.get("on") or {}
    return Step(
        id=step_id,
        action=raw["action"],
        with_=dict(raw.get("with", {})),
        description=str(raw.get("description", "")).strip(),
        when=parse_expression(when)
        if isinstance(when, str)
        else (Literal(when) if when is not None else None),
        when_text=when if isinstance(when, str) else (None if when is None else str(when).lower()),
        foreach=Foreach(foreach["items"], foreach.get("concurrency", 5)) if foreach else None,
        retry=Retry(
            attempts=retry.get("attempts", 1),
            backoff=retry.get("backoff", "fixed"),
            initial=parse_duration(retry.get("initial", "1s")),
            max=parse_duration(retry.get("max", "60s")),
            jitter=float(retry.get("jitter", 0.0)),
        ),
        timeout=parse_duration(raw["timeout"]) if "timeout" in raw else None,
        on_success=on.get("success", "next"),
        on_failure=on.get("failure", failure),
        mutates=registry.get(raw["action"]).mutates,
        line=doc.line(path),
    )
