"""`remediation plan`: what a run would do, with every template resolved that can be, doing nothing.

The rule is simple and honest: a plan executes nothing at all, not even read-only checks. Values that
only a run can know (earlier steps' outputs) are shown as <steps.ID.output.KEY>. Each step is shown
with the action's own describe() line; mutating steps are marked CHANGES.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from remediation.actions.registry import ActionRegistry, ActionSpec
from remediation.durations import format_duration
from remediation.model import Runbook, Step
from remediation.templates import TemplateError, render

PLACEHOLDER = "<{ref}>"


@dataclass
class PlannedStep:
    id: str
    action: str
    mutates: bool
    lines: list[str]  # one describe() line per item (one for a plain step)
    when: str | None = None
    on_success: str | None = None
    on_failure: str | None = None
    retry: str | None = None
    timeout: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}


@dataclass
class Plan:
    runbook: Runbook
    target: str | None
    steps: list[PlannedStep] = field(default_factory=list)
    escalation: list[PlannedStep] = field(default_factory=list)
    unresolved_profile: list[str] = field(default_factory=list)


def make_plan(
    runbook: Runbook, params: Mapping[str, Any], profile: Mapping[str, Any], registry: ActionRegistry
) -> Plan:
    scope = {
        "params": dict(params),
        "profile": dict(profile),
        "steps": {},
        "run": {
            "id": "<run.id>",
            "started_at": "<run.started_at>",
            "runbook": runbook.name,
            "failed": "<run.failed>",
            "failures": "<run.failures>",
        },
        "trigger": {"labels": {}, "annotations": {}},
    }
    target = None
    if runbook.guards is not None:
        target = str(render(runbook.guards.lock, scope, PLACEHOLDER)) if runbook.guards.lock else runbook.name
    plan = Plan(runbook, target)
    plan.steps = [_plan_step(step, registry.get(step.action), scope, main=True) for step in runbook.steps]
    plan.escalation = [
        _plan_step(step, registry.get(step.action), scope, main=False) for step in runbook.escalate
    ]
    text = json.dumps([s.lines for s in plan.steps + plan.escalation], ensure_ascii=False)
    plan.unresolved_profile = sorted({key for key in profile_keys_in(text)})
    return plan


def profile_keys_in(text: str) -> list[str]:
    marker = "<profile."
    keys = []
    start = text.find(marker)
    while start != -1:
        end = text.find(">", start)
        keys.append(text[start + len(marker) : end])
        start = text.find(marker, end)
    return keys


def _plan_step(step: Step, spec: ActionSpec, scope: Mapping[str, Any], main: bool) -> PlannedStep:
    planned = PlannedStep(step.id, step.action, spec.mutates, [], when=step.when_text)
    if main:
        planned.on_success, planned.on_failure = step.on_success, step.on_failure
    if step.retry.attempts > 1:
        planned.retry = (
            f"{step.retry.attempts} attempts, {step.retry.backoff} backoff from "
            f"{format_duration(step.retry.initial)} (cap {format_duration(step.retry.max)})"
        )
    if step.timeout:
        planned.timeout = format_duration(step.timeout)
    if step.foreach is None:
        planned.lines.append(_describe(spec, render(step.with_, scope, PLACEHOLDER)))
        return planned
    items = render(step.foreach.items, scope, PLACEHOLDER)
    if not isinstance(items, list):
        planned.lines.append(
            f"for each item of {items}: " + _describe(spec, render(step.with_, scope, PLACEHOLDER))
        )
        return planned
    for item in items:
        planned.lines.append(_describe(spec, render(step.with_, {**scope, "item": item}, PLACEHOLDER)))
    return planned


def _describe(spec: ActionSpec, params: Mapping[str, Any]) -> str:
    try:
        return str(spec.describe(params))
    except (KeyError, TypeError, ValueError, AttributeError, TemplateError) as err:
        # describe() may choke on a placeholder where it expects a number; show the parameters instead.
        shown = json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)
        return f"{spec.name} with {shown} ({type(err).__name__} in describe)"


def plan_text(plan: Plan) -> str:
    runbook = plan.runbook
    out = [f"plan: {runbook.name} — {runbook.title} ({runbook.severity})"]
    if runbook.guards is not None:
        g = runbook.guards
        parts = [f"target {plan.target}"]
        if g.cooldown:
            parts.append(f"cooldown {format_duration(g.cooldown)}")
        if g.budget_runs and g.budget_per:
            parts.append(f"budget {g.budget_runs} runs per {format_duration(g.budget_per)}")
        out.append("guards: " + ", ".join(parts))
    out.append(f"timeout: {format_duration(runbook.timeout)}")
    for number, step in enumerate(plan.steps, 1):
        out.extend(_step_lines(f"{number:>2}.", step))
    if plan.escalation:
        out.append("escalation (on `escalate`):")
        for step in plan.escalation:
            out.extend(_step_lines("  -", step))
    if plan.unresolved_profile:
        out.append(f"profile keys not set (give --profile): {', '.join(plan.unresolved_profile)}")
    changes = sum(1 for s in plan.steps + plan.escalation if s.mutates)
    out.append(f"{changes} step(s) would change something. Nothing was executed.")
    return "\n".join(out) + "\n"


def _step_lines(prefix: str, step: PlannedStep) -> list[str]:
    kind = "CHANGES" if step.mutates else "reads  "
    lines = [f"{prefix} [{kind}] {step.id}: {step.action}"]
    if step.when:
        lines.append(f"      only when: {step.when}")
    for line in step.lines:
        lines.append(f"      {line}")
    extras = []
    if step.retry:
        extras.append(f"retry {step.retry}")
    if step.timeout:
        extras.append(f"timeout {step.timeout}")
    if step.on_success is not None:
        extras.append(f"on success → {step.on_success}, on failure → {step.on_failure}")
    if extras:
        lines.append("      " + "; ".join(extras))
    return lines


def plan_json(plan: Plan) -> str:
    return json.dumps(
        {
            "runbook": plan.runbook.name,
            "target": plan.target,
            "steps": [s.as_dict() for s in plan.steps],
            "escalation": [s.as_dict() for s in plan.escalation],
            "unresolved_profile": plan.unresolved_profile,
            "executed": False,
        },
        ensure_ascii=False,
        indent=2,
    )
