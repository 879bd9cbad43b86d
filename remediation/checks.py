"""Semantic checks a JSON Schema cannot express: ids, transitions, templates, actions and their `with:`.

The checks read the parsed document defensively (it may also have schema errors) and return every
problem they find; nothing here raises for bad input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from remediation.actions.registry import ActionRegistry, ActionSpec
from remediation.durations import is_duration, parse_duration
from remediation.errors import Problem
from remediation.expressions import ExpressionError
from remediation.expressions import parse as parse_expression
from remediation.expressions import references as expression_refs
from remediation.model import KEYWORD_TARGETS
from remediation.schemas import action_param_problems, did_you_mean, profile_keys, suggest
from remediation.templates import RUN_KEYS, STEP_KEYS, Ref, TemplateError, refs_in, walk_strings
from remediation.yamlsource import Document

FOREACH_OUTPUTS = ("results", "succeeded", "failed")
_SECRET_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "list": (list,),
    "duration": (str,),
}


@dataclass(frozen=True)
class Scope:
    """Where a template sits, which decides what it may refer to."""

    section: str  # "steps" | "escalate" | "guards"
    index: int  # position of the step in its section
    in_foreach: bool = False


def param_type_ok(kind: str, value: Any) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    if kind == "duration":
        return is_duration(value)
    return isinstance(value, _PARAM_TYPES.get(kind, (object,)))


class SemanticChecks:
    def __init__(self, doc: Document, registry: ActionRegistry) -> None:
        self.doc = doc
        self.registry = registry
        self.data: Mapping[str, Any] = doc.data
        self.problems: list[Problem] = []
        self.params = _mapping(self.data.get("params"))
        self.steps = [s if isinstance(s, Mapping) else {} for s in _list(self.data.get("steps"))]
        self.escalate = [s if isinstance(s, Mapping) else {} for s in _list(self.data.get("escalate"))]
        self.step_ids = [s.get("id") if isinstance(s.get("id"), str) else None for s in self.steps]

    def add(self, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.doc.file, path, message, self.doc.line(path), hint))

    def run(self) -> list[Problem]:
        self.check_name()
        self.check_params()
        self.check_ids()
        for section, steps in (("steps", self.steps), ("escalate", self.escalate)):
            for index, step in enumerate(steps):
                self.check_step(section, index, step)
        self.check_guards()
        return self.problems

    def check_name(self) -> None:
        name = _mapping(self.data.get("metadata")).get("name")
        file = self.doc.file
        if isinstance(name, str) and file.endswith((".yaml", ".yml")):
            stem = file.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if stem != name:
                self.add(
                    "metadata/name",
                    f"name {name!r} differs from the file name {stem!r}",
                    f"rename the file to {name}.yaml or set name: {stem} (runbooks are looked up by name)",
                )

    def check_params(self) -> None:
        for name, spec in self.params.items():
            if not isinstance(spec, Mapping):
                continue
            kind, path = spec.get("type"), f"params/{name}"
            if "default" in spec and isinstance(kind, str) and not param_type_ok(kind, spec["default"]):
                self.add(
                    f"{path}/default",
                    f"default {spec['default']!r} is not a valid {kind}",
                    "write a default of the declared type (durations like 10m)",
                )
            enum = spec.get("enum")
            if isinstance(enum, list) and "default" in spec and spec["default"] not in enum:
                self.add(f"{path}/default", f"default {spec['default']!r} is not one of {enum}")

    def check_ids(self) -> None:
        seen: dict[str, str] = {}
        for section, steps in (("steps", self.steps), ("escalate", self.escalate)):
            for index, step in enumerate(steps):
                path = f"{section}/{index}/id"
                step_id = step.get("id")
                if step_id is None:
                    if section == "steps":
                        self.add(
                            f"{section}/{index}",
                            "missing required field 'id'",
                            "every step needs an id, e.g. id: check-health",
                        )
                    continue
                if not isinstance(step_id, str):
                    continue
                if step_id in KEYWORD_TARGETS:
                    self.add(
                        path,
                        f"{step_id!r} is a reserved word",
                        f"step ids may not be {', '.join(KEYWORD_TARGETS)}",
                    )
                if step_id in seen:
                    self.add(path, f"duplicate step id {step_id!r}", f"already used at {seen[step_id]}")
                else:
                    seen[step_id] = path

    def check_step(self, section: str, index: int, step: Mapping[str, Any]) -> None:
        path = f"{section}/{index}"
        spec = self.check_action(path, step.get("action"))
        foreach = step.get("foreach")
        scope = Scope(section, index, in_foreach=isinstance(foreach, Mapping))
        with_ = step.get("with", {})
        if spec is not None and isinstance(with_, Mapping):
            self.problems.extend(
                action_param_problems(spec.params, dict(with_), self.doc, f"{path}/with", spec.name)
            )
            self.check_secret_names(f"{path}/with", with_)
        self.check_templates(f"{path}/with", with_, scope)
        if isinstance(foreach, Mapping):
            self.check_templates(f"{path}/foreach/items", foreach.get("items"), Scope(section, index))
        self.check_when(path, step.get("when"), Scope(section, index))
        self.check_on(section, path, step.get("on"))
        retry = _mapping(step.get("retry"))
        low, high = retry.get("initial"), retry.get("max")
        if (
            isinstance(low, str)
            and isinstance(high, str)
            and is_duration(low)
            and is_duration(high)
            and parse_duration(high) < parse_duration(low)
        ):
            self.add(
                f"{path}/retry/max",
                "the cap is shorter than the initial delay",
                "max must be at least initial",
            )

    def check_action(self, path: str, name: Any) -> ActionSpec | None:
        if not isinstance(name, str):
            return None
        if name not in self.registry:
            self.add(
                f"{path}/action",
                f"unknown action {name!r}",
                suggest(name, self.registry, "actions")
                if len(self.registry)
                else "no actions are registered",
            )
            return None
        return self.registry.get(name)

    def check_secret_names(self, path: str, value: Mapping[str, Any]) -> None:
        for key, child in value.items():
            if isinstance(child, Mapping):
                self.check_secret_names(f"{path}/{key}", child)
            elif str(key).endswith("_secret") and isinstance(child, str) and not _SECRET_NAME.match(child):
                self.add(
                    f"{path}/{key}",
                    f"{key} must name an environment variable, not hold a secret",
                    "write the variable's name, e.g. SLACK_WEBHOOK_URL; secrets never go in runbooks",
                )

    def check_templates(self, path: str, value: Any, scope: Scope) -> None:
        for where, text in walk_strings(value, path):
            try:
                refs = refs_in(text)
            except TemplateError as err:
                self.add(where, str(err))
                continue
            for ref in refs:
                self.check_ref(where, ref, scope)

    def check_when(self, path: str, when: Any, scope: Scope) -> None:
        if not isinstance(when, str):
            return
        try:
            node = parse_expression(when)
        except ExpressionError as err:
            self.add(
                f"{path}/when",
                f"invalid condition {when!r}: {err}",
                'write e.g. steps.db.outcome == "failed" and params.force',
            )
            return
        for ref in expression_refs(node):
            self.check_ref(f"{path}/when", ref, scope)

    def check_on(self, section: str, path: str, on: Any) -> None:
        if on is None:
            return
        if section == "escalate":
            self.add(
                f"{path}/on",
                "escalation steps run in order; `on:` is not allowed here",
                "remove `on:` from escalation steps",
            )
            return
        valid = [*KEYWORD_TARGETS, *(i for i in self.step_ids if i)]
        for outcome, target in _mapping(on).items():
            if not isinstance(target, str) or target in valid:
                continue
            self.add(
                f"{path}/on/{outcome}",
                f"unknown transition target {target!r}",
                suggest(target, valid, "targets"),
            )
        if _mapping(on).get("failure") == "escalate" and not self.escalate:
            self.add(
                f"{path}/on/failure",
                "transition to escalate, but the runbook has no `escalate:` steps",
                "add escalate: [...] (e.g. a notify.slack step) or use abort",
            )

    def check_guards(self) -> None:
        guards = self.data.get("guards")
        mutating = [
            (i, s.get("action"))
            for i, s in enumerate(self.steps)
            if isinstance(s.get("action"), str)
            and s.get("action") in self.registry
            and self.registry.get(s["action"]).mutates
        ]
        if mutating and guards is None:
            index, action = mutating[0]
            self.add(
                "steps" if "guards" not in self.data else "guards",
                f"the runbook changes things ({action} at steps/{index}) but declares no guards",
                "add guards: {cooldown: 10m, budget: {runs: 3, per: 1h}, lock: <target>}",
            )
        lock = _mapping(guards).get("lock")
        if isinstance(lock, str):
            self.check_templates("guards/lock", lock, Scope("guards", 0))

    # --- references ---------------------------------------------------------------------------

    def check_ref(self, path: str, ref: Ref, scope: Scope) -> None:
        message_hint = self._ref_problem(ref, scope)
        if message_hint is not None:
            self.add(path, *message_hint)

    def _ref_problem(self, ref: Ref, scope: Scope) -> tuple[str, str | None] | None:
        ns, parts, text = ref.namespace, ref.parts, f"${{{ref}}}"
        if (
            scope.section == "guards"
            and ns not in ("params", "profile", "trigger")
            and str(ref) != "run.runbook"
        ):
            return f"{text}: a guard's target is known before any step runs", "use params, profile or trigger"
        if ns == "params":
            if parts[1] not in self.params:
                return f"{text} refers to an undeclared parameter", suggest(
                    parts[1], self.params, "parameters"
                )
            return None
        if ns == "profile":
            keys = profile_keys()
            if parts[1] not in keys or len(parts) != 2:
                return f"{text} is not a profile key", suggest(parts[1], keys, "profile keys")
            return None
        if ns == "item":
            if not scope.in_foreach:
                return f"{text} is only defined inside a foreach step's `with:`", "add foreach: {items: ...}"
            return None
        if ns == "run":
            if parts[1] not in RUN_KEYS or len(parts) != 2:
                return f"{text} is not a run property", suggest(parts[1], RUN_KEYS, "run properties")
            return None
        if ns == "trigger":
            if parts[1] not in ("labels", "annotations") or len(parts) != 3:
                return (
                    f"{text} is not a trigger field",
                    "write ${trigger.labels.NAME} or ${trigger.annotations.NAME}",
                )
            return None
        return self._step_ref_problem(ref, scope)

    def _step_ref_problem(self, ref: Ref, scope: Scope) -> tuple[str, str | None] | None:
        parts, text = ref.parts, f"${{{ref}}}"
        target = parts[1]
        known = [i for i in self.step_ids if i]
        if target not in known:
            return f"{text} refers to an unknown step {target!r}", suggest(target, known, "step ids")
        position = self.step_ids.index(target)
        if scope.section == "steps" and position >= scope.index:
            when = "is this step" if position == scope.index else "runs later"
            return f"{text}: step {target!r} {when}", "only earlier steps' outputs are available"
        if len(parts) < 3 or parts[2] not in STEP_KEYS:
            return (
                f"{text} needs one of {', '.join(STEP_KEYS)} after the step id",
                f"e.g. ${{steps.{target}.output.KEY}}",
            )
        if parts[2] != "output":
            return None if len(parts) == 3 else (f"{text}: {parts[2]} has no fields", None)
        if len(parts) < 4:
            return None
        return self._output_key_problem(text, self.steps[position], parts[3])

    def _output_key_problem(
        self, text: str, step: Mapping[str, Any], key: str
    ) -> tuple[str, str | None] | None:
        if isinstance(step.get("foreach"), Mapping):
            outputs: tuple[str, ...] = FOREACH_OUTPUTS
        else:
            action = step.get("action")
            if not isinstance(action, str) or action not in self.registry:
                return None
            outputs = tuple(self.registry.get(action).outputs)
            if not outputs:
                return None
        if key in outputs:
            return None
        hint = did_you_mean(key, outputs) or f"outputs of this step: {', '.join(outputs)}"
        return f"{text}: the step has no output {key!r}", hint


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
