"""Run a runbook: steps in order with `on:` transitions, conditions, retries, timeouts and fan-out.

Transitions (`on: {success: ..., failure: ...}`; defaults: success -> next, failure -> escalate when the
runbook has `escalate:` steps, else abort):
    next       go on with the next step (a failure taken to `next` or to a step id counts as handled)
    continue   go on with the next step, but the failure counts: the run ends `failed`
    end        stop here; the outcome is decided by the failures that counted so far
    <step id>  jump to that step
    escalate   run the `escalate:` steps, then stop: outcome `escalated`
    abort      stop now: outcome `failed` after a failed step, `aborted` after a successful one

Outcomes and exit codes (the CLI uses these):
    success 0 · failed 1 · aborted 1 · escalated 3 · refused (guard) 4 · aborted by a denied approval 4

Retries apply to TemporaryError (and step timeouts) only. A step's `timeout` bounds each attempt; the
runbook's `timeout` bounds the whole run (when it expires the run escalates if it can, else fails).
A `foreach` step runs its items with at most `concurrency` at once; it succeeds when all items do.
"""

from __future__ import annotations

import asyncio
import getpass
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from remediation.actions.registry import ActionRegistry, ActionSpec, load_all
from remediation.durations import format_duration
from remediation.errors import (
    ActionError,
    ApprovalDenied,
    GuardRefused,
    Problem,
    RunbookInvalid,
    TemporaryError,
)
from remediation.expressions import ExpressionError, evaluate, truthy
from remediation.expressions import references as expression_refs
from remediation.guards import FileGuardStore, GuardStore, Lease
from remediation.model import Runbook, Step
from remediation.records import Recorder, RecordStore, now_iso, state_dir
from remediation.results import EXIT_CODES, EXIT_DENIED, NullReporter, Reporter, RunResult, StepResult
from remediation.schemas import validate_with_schema
from remediation.secrets import Redactor, SecretSource
from remediation.templates import TemplateError, refs_in, render, walk_strings

ESCALATION_STEP_TIMEOUT = 60.0
UNAVAILABLE = "(unavailable: {ref})"


Prompt = Callable[[str], bool]  # blocking question to a human; run in a thread


class _StepContext:
    """The ActionContext handed to an action for one step."""

    def __init__(self, run: _Run, step_id: str) -> None:
        self._run = run
        self._step_id = step_id

    @property
    def dry_run(self) -> bool:
        return False

    @property
    def profile(self) -> Mapping[str, Any]:
        return MappingProxyType(self._run.profile)

    def secret(self, name: str) -> str:
        return self._run.secrets.get(name)

    async def approve(self, prompt: str) -> bool:
        return await self._run.approve(self._step_id, prompt)

    def log(self, message: str) -> None:
        self._run.executor.reporter.step_log(self._step_id, self._run.redact(str(message)))


class Executor:
    def __init__(
        self,
        registry: ActionRegistry | None = None,
        *,
        state: str | Path | None = None,
        guard_store: GuardStore | None = None,
        reporter: Reporter | None = None,
        assume_yes: bool = False,
        prompt: Prompt | None = None,
        environ: Mapping[str, str] | None = None,
        records: RecordStore | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = load_all() if registry is None else registry
        self.state = state_dir(state)
        self.guard_store: GuardStore = guard_store or FileGuardStore(self.state / "guards.json")
        self.reporter: Reporter = reporter or NullReporter()
        self.assume_yes = assume_yes
        self.prompt = prompt
        self.environ = environ
        self.records = records  # where run records go besides the state directory (the cluster's ConfigMaps)
        self.sleep = sleep
        self.rand = rand
        self.clock = clock

    async def run(
        self,
        runbook: Runbook,
        params: Mapping[str, Any],
        profile: Mapping[str, Any],
        *,
        trigger: Mapping[str, Any] | None = None,
        start_at: str | None = None,
        only_step: str | None = None,
        previous: Mapping[str, Mapping[str, Any]] | None = None,
        escalate_only: str | None = None,
    ) -> RunResult:
        """Run `runbook`; RunbookInvalid (before anything runs) for unknown steps or missing profile keys.

        `escalate_only` (a reason) runs just the escalation steps: the alert receiver uses it when its
        own guards refuse a remediation and a human must be told instead.
        """
        first = _first_index(runbook, start_at, only_step)
        selected = [runbook.steps[first]] if only_step else list(runbook.steps[first:])
        if escalate_only is not None:
            selected = []
        _check_profile(runbook, selected, profile)
        run = _Run(self, runbook, params, profile, trigger or {}, previous or {}, only_step, start_at)
        if escalate_only is not None:
            return await run.escalate_only(escalate_only)
        return await run.execute(first, selected)


def _first_index(runbook: Runbook, start_at: str | None, only_step: str | None) -> int:
    wanted = only_step or start_at
    if wanted is None:
        return 0
    ids = [s.id for s in runbook.steps]
    if wanted not in ids:
        from remediation.schemas import suggest

        flag = "--step" if only_step else "--from"
        raise RunbookInvalid(
            [
                Problem(
                    runbook.file,
                    flag,
                    f"runbook {runbook.name!r} has no step {wanted!r}",
                    None,
                    suggest(wanted, ids, "step ids"),
                )
            ]
        )
    return ids.index(wanted)


def _check_profile(runbook: Runbook, steps: list[Step], profile: Mapping[str, Any]) -> None:
    """Fail before anything runs when a step that may run needs a profile key that is not set."""
    missing: dict[str, str] = {}
    for step in [*steps, *runbook.escalate]:
        texts = [t for _, t in walk_strings(step.with_, "")] + [
            t for _, t in walk_strings(step.foreach and step.foreach.items, "")
        ]
        refs = [r for t in texts for r in refs_in(t)]
        if step.when is not None:
            refs += expression_refs(step.when)
        for ref in refs:
            if ref.namespace == "profile" and ref.parts[1] not in profile:
                missing.setdefault(ref.parts[1], step.id)
    if missing:
        raise RunbookInvalid(
            [
                Problem(
                    "profile",
                    key,
                    f"{key} is not set, but step {step_id!r} needs it",
                    None,
                    f"add `{key}: ...` to the file given with --profile (see examples/profile.local.yaml)",
                )
                for key, step_id in sorted(missing.items())
            ]
        )


class _Run:
    """The state of one run: scope for templates, results so far, the record being written."""

    def __init__(
        self,
        executor: Executor,
        runbook: Runbook,
        params: Mapping[str, Any],
        profile: Mapping[str, Any],
        trigger: Mapping[str, Any],
        previous: Mapping[str, Mapping[str, Any]],
        only_step: str | None,
        start_at: str | None,
    ) -> None:
        self.executor = executor
        self.runbook = runbook
        self.params = dict(params)
        self.profile = dict(profile)
        self.redact = Redactor()
        self.secrets = SecretSource(self.redact, executor.environ)
        self.recorder = Recorder(executor.state, self.redact, executor.records)
        self.only_step = only_step
        self.start_at = start_at
        self.id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{runbook.name}-{uuid.uuid4().hex[:6]}"
        self.started_at = now_iso()
        self.failures: list[str] = []
        self.counted_failures: list[str] = []
        self.results: list[StepResult] = []
        self.escalation: list[StepResult] = []
        self.outcome = "success"
        self.reason = ""
        self.target: str | None = None
        self.current: tuple[Step, float, str] | None = None
        self._approval_lock = asyncio.Lock()
        self.scope: dict[str, Any] = {
            "params": self.params,
            "profile": self.profile,
            "steps": {key: dict(value) for key, value in previous.items()},
            "run": {
                "id": self.id,
                "started_at": self.started_at,
                "runbook": runbook.name,
                "failed": False,
                "failures": self.failures,
            },
            "trigger": {
                "labels": dict(trigger.get("labels", {})),
                "annotations": dict(trigger.get("annotations", {})),
            },
        }

    # --- the run as a whole -------------------------------------------------------------------

    async def execute(self, first: int, selected: list[Step]) -> RunResult:
        lease = None
        if any(step.mutates for step in selected) and self.runbook.guards is not None:
            try:
                lease = self._acquire()
            except GuardRefused as refused:
                self.outcome, self.reason = "refused", str(refused)
                self.recorder.audit(
                    "guard.refused",
                    run=self.id,
                    runbook=self.runbook.name,
                    target=self.target,
                    reason=refused.reason,
                    detail=str(refused),
                )
                return self._finish()
        self.executor.reporter.run_started(self.id, self.runbook)
        self.recorder.audit(
            "run.started",
            run=self.id,
            runbook=self.runbook.name,
            params=self.params,
            mode=self._mode(),
            target=self.target,
            user=_user(),
            host=socket.gethostname(),
        )
        self.recorder.save(self._record(finished=False))
        try:
            await self._bounded(first)
        except asyncio.CancelledError:
            self.outcome, self.reason = "aborted", "interrupted"
            self._release(lease)
            self._finish()
            raise
        self._release(lease)
        return self._finish()

    async def escalate_only(self, reason: str) -> RunResult:
        self.executor.reporter.run_started(self.id, self.runbook)
        self.recorder.audit(
            "run.started",
            run=self.id,
            runbook=self.runbook.name,
            params=self.params,
            mode={"kind": "escalate-only"},
            user=_user(),
            host=socket.gethostname(),
        )
        self.reason = reason
        await self._escalate()
        return self._finish()

    def _acquire(self) -> Lease:
        guards = self.runbook.guards
        assert guards is not None
        try:
            self.target = str(render(guards.lock, self.scope)) if guards.lock else self.runbook.name
        except TemplateError as err:
            raise RunbookInvalid([Problem(self.runbook.file, "guards/lock", str(err), None)]) from None
        return self.executor.guard_store.acquire(
            self.runbook.name,
            self.target,
            guards,
            self.id,
            self.executor.clock(),
            resuming=self.start_at is not None and self.only_step is None,
        )

    def _release(self, lease: Lease | None) -> None:
        if lease is not None:
            self.executor.guard_store.release(lease, self.executor.clock())

    async def _bounded(self, first: int) -> None:
        # Escalation runs outside the run's timeout: a run that ran out of time must still page someone,
        # and an escalation cut short by the timeout must not start over.
        escalate = False
        try:
            async with asyncio.timeout(self.runbook.timeout):
                escalate = await self._walk(first)
        except TimeoutError:
            self._record_interrupted_step(f"run timed out after {format_duration(self.runbook.timeout)}")
            self.reason = f"the run exceeded its timeout of {format_duration(self.runbook.timeout)}"
            escalate = bool(self.runbook.escalate) and not self.only_step
            if not escalate:
                self.outcome = "failed"
        if escalate:
            await self._escalate()

    def _record_interrupted_step(self, why: str) -> None:
        if self.current is None:
            return
        step, started, started_iso = self.current
        self._store(
            StepResult(
                step.id,
                step.action,
                "failed",
                started_iso,
                _ms(started),
                error=why,
                error_kind="timeout",
                mutates=step.mutates,
            )
        )

    async def _walk(self, index: int) -> bool:
        """Follow the transitions; True when the run must escalate."""
        steps = self.runbook.steps
        # jumps back may loop; a runaway loop ends the run instead of spinning forever
        budget = 20 * len(steps)
        while index < len(steps):
            budget -= 1
            if budget < 0:
                self.outcome, self.reason = "failed", "too many transitions: the `on:` targets form a loop"
                return False
            step = steps[index]
            result = await self._run_step(step, lenient=False)
            self._store(result)
            if result.error_kind == "approval":
                self.outcome, self.reason = "aborted", f"approval denied at step {step.id!r}"
                return False
            if self.only_step:
                self.outcome = "success" if result.outcome != "failed" else "failed"
                self.reason = result.error or ""
                return False
            target = self._transition(step, result)
            if target in ("next", "continue"):
                index += 1
            elif target == "end":
                break
            elif target == "abort":
                self.outcome = "failed" if result.outcome == "failed" else "aborted"
                self.reason = (
                    f"step {step.id!r} {result.outcome}: {result.error}"
                    if result.error
                    else f"aborted after step {step.id!r}"
                )
                return False
            elif target == "escalate":
                self.reason = f"step {step.id!r} {result.outcome}" + (
                    f": {result.error}" if result.error else ""
                )
                return True
            else:
                index = self.runbook.index(target)
        if self.counted_failures:
            self.outcome = "failed"
            self.reason = f"failed checks: {', '.join(self.counted_failures)}"
        return False

    def _transition(self, step: Step, result: StepResult) -> str:
        if result.outcome == "skipped":
            target = "next"
        elif result.outcome == "success":
            target = step.on_success
        else:
            target = step.on_failure
            if target == "continue":
                self.counted_failures.append(step.id)
        result.transition = target
        return target

    def _store(self, result: StepResult) -> None:
        self.current = None
        self.results.append(result)
        if result.outcome == "failed":
            self.failures.append(result.id)
            self.scope["run"]["failed"] = True
        self.scope["steps"][result.id] = {
            "output": result.output,
            "outcome": result.outcome,
            "error": result.error,
        }
        self.executor.reporter.step_finished(result)
        self.recorder.audit(
            "step.finished",
            run=self.id,
            step=result.id,
            action=result.action,
            outcome=result.outcome,
            attempts=result.attempts,
            error=result.error,
        )
        if result.mutates:
            # after a change the record is rewritten at once; read-only steps rely on the audit line
            self.recorder.save(self._record(finished=False))

    async def _escalate(self) -> None:
        self.outcome = "escalated"
        for step in self.runbook.escalate:
            result = await self._run_step(step, lenient=True)
            self.escalation.append(result)
            self.executor.reporter.step_finished(result)
            self.recorder.audit(
                "escalation.step",
                run=self.id,
                step=result.id,
                action=result.action,
                outcome=result.outcome,
                error=result.error,
            )

    # --- one step -----------------------------------------------------------------------------

    async def _run_step(self, step: Step, lenient: bool) -> StepResult:
        started, started_iso = time.monotonic(), now_iso()
        self.current = (step, started, started_iso)
        result = StepResult(step.id, step.action, "success", started_iso, mutates=step.mutates)
        self.executor.reporter.step_started(step)
        if step.when is not None:
            try:
                go = truthy(evaluate(step.when, self.scope))
            except ExpressionError as err:
                return self._failed(result, started, f"condition `{step.when_text}`: {err}", "condition")
            if not go:
                result.outcome = "skipped"
                result.duration_ms = _ms(started)
                return result
        spec = self.executor.registry.get(step.action)
        missing = UNAVAILABLE if lenient else None
        timeout = step.timeout or (ESCALATION_STEP_TIMEOUT if lenient else None)
        try:
            if step.foreach is None:
                await self._attempts(step, spec, self.scope, missing, timeout, result)
            else:
                await self._fan_out(step, spec, missing, timeout, result)
        except ApprovalDenied as denied:
            return self._failed(result, started, str(denied) or "approval denied", "approval")
        result.duration_ms = _ms(started)
        result.output = self.redact(result.output)
        result.error = self.redact(result.error) if result.error else None
        return result

    def _failed(self, result: StepResult, started: float, error: str, kind: str) -> StepResult:
        result.outcome, result.error, result.error_kind = "failed", self.redact(error), kind
        result.duration_ms = _ms(started)
        return result

    async def _fan_out(
        self, step: Step, spec: ActionSpec, missing: str | None, timeout: float | None, result: StepResult
    ) -> None:
        assert step.foreach is not None
        try:
            items = render(step.foreach.items, self.scope, missing)
        except TemplateError as err:
            result.outcome, result.error, result.error_kind = "failed", f"foreach.items: {err}", "input"
            return
        if not isinstance(items, list):
            result.outcome, result.error_kind = "failed", "input"
            result.error = f"foreach.items must resolve to a list, not {type(items).__name__}: {items!r}"
            return
        gate = asyncio.Semaphore(step.foreach.concurrency)

        async def one(item: Any) -> StepResult:
            async with gate:
                sub = StepResult(step.id, step.action, "success", now_iso())
                await self._attempts(step, spec, {**self.scope, "item": item}, missing, timeout, sub)
                return sub

        subs = await asyncio.gather(*(one(item) for item in items))
        failed = [s for s in subs if s.outcome == "failed"]
        result.attempts = sum(s.attempts for s in subs)
        result.params = [s.params for s in subs]
        result.output = {
            "results": [
                {
                    "item": item,
                    "outcome": s.outcome,
                    "output": s.output,
                    **({"error": s.error} if s.error else {}),
                }
                for item, s in zip(items, subs, strict=True)
            ],
            "succeeded": len(subs) - len(failed),
            "failed": len(failed),
        }
        if failed:
            result.outcome = "failed"
            result.error_kind = failed[0].error_kind
            result.error = f"{len(failed)} of {len(subs)} items failed; first: {failed[0].error}"

    async def _attempts(
        self,
        step: Step,
        spec: ActionSpec,
        scope: Mapping[str, Any],
        missing: str | None,
        timeout: float | None,
        result: StepResult,
    ) -> None:
        """Run the action with retries; fill `result` (never raises for action failures)."""
        try:
            params = render(step.with_, scope, missing)
        except TemplateError as err:
            result.outcome, result.error, result.error_kind = "failed", f"with: {err}", "input"
            return
        result.params = self.redact(params)
        problems = validate_with_schema(spec.params, params)
        if problems:
            result.outcome, result.error_kind = "failed", "input"
            result.error = f"with: {'; '.join(problems)} (after resolving templates)"
            return
        context = _StepContext(self, step.id)
        attempts = step.retry.attempts
        for attempt in range(1, attempts + 1):
            result.attempts = attempt
            error, kind, output = await self._one_attempt(spec, context, params, timeout)
            if error is None:
                result.outcome, result.output, result.error, result.error_kind = "success", output, None, None
                return
            result.outcome, result.output, result.error, result.error_kind = "failed", output, error, kind
            if kind not in ("temporary", "timeout") or attempt == attempts:
                return
            delay = step.retry.delay(attempt, self.executor.rand())
            self.executor.reporter.step_log(
                step.id,
                self.redact(
                    f"attempt {attempt}/{attempts} failed ({error}); retrying in {format_duration(delay)}"
                ),
            )
            await self.executor.sleep(delay)

    async def _one_attempt(
        self, spec: ActionSpec, context: _StepContext, params: Mapping[str, Any], timeout: float | None
    ) -> tuple[str | None, str, dict[str, Any]]:
        try:
            async with asyncio.timeout(timeout):
                output = await spec.run(context, params)
            return None, "", dict(output) if isinstance(output, Mapping) else {"value": output}
        except ApprovalDenied:
            raise
        except TemporaryError as err:
            return str(err), "temporary", dict(err.output)
        except ActionError as err:
            return str(err), "permanent", dict(err.output)
        except TimeoutError:
            return f"timed out after {format_duration(timeout or 0)}", "timeout", {}
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a bug in an action must not take the run (and its record) down with it
            return f"action {spec.name} crashed: {type(err).__name__}: {err}", "permanent", {}

    async def approve(self, step_id: str, prompt: str) -> bool:
        async with self._approval_lock:  # foreach items ask one at a time
            if self.executor.assume_yes:
                decision, how = True, "--yes"
            elif self.executor.prompt is not None:
                decision, how = (
                    await asyncio.to_thread(self.executor.prompt, self.redact(prompt)),
                    "interactive",
                )
            else:
                decision, how = False, "no terminal to ask and no --yes"
        self.recorder.audit(
            "approval", run=self.id, step=step_id, prompt=prompt, approved=decision, how=how, user=_user()
        )
        return decision

    # --- the record ---------------------------------------------------------------------------

    def _mode(self) -> dict[str, str]:
        if self.only_step:
            return {"kind": "step", "step": self.only_step}
        if self.start_at:
            return {"kind": "from", "step": self.start_at}
        return {"kind": "run"}

    def _record(self, finished: bool) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": self.id,
            "runbook": self.runbook.name,
            "title": self.runbook.title,
            "severity": self.runbook.severity,
            "file": self.runbook.file,
            "sha256": self.runbook.raw.get("sha256"),
            "mode": self._mode(),
            "params": self.params,
            "profile": self.profile,
            "trigger": self.scope["trigger"],
            "target": self.target,
            "user": _user(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "steps": [r.as_dict() for r in self.results],
            "escalation": [r.as_dict() for r in self.escalation],
        }
        if finished:
            record.update(
                finished_at=now_iso(), outcome=self.outcome, exit_code=self.exit_code(), reason=self.reason
            )
        return record

    def exit_code(self) -> int:
        if self.outcome == "aborted" and self.reason.startswith("approval denied"):
            return EXIT_DENIED
        return EXIT_CODES[self.outcome]

    def _finish(self) -> RunResult:
        path = self.recorder.save(self._record(finished=True))
        self.recorder.audit(
            "run.finished",
            run=self.id,
            runbook=self.runbook.name,
            outcome=self.outcome,
            exit_code=self.exit_code(),
            reason=self.reason,
        )
        result = RunResult(
            self.id,
            self.runbook.name,
            self.outcome,
            self.exit_code(),
            self.started_at,
            now_iso(),
            self.redact(self.reason),
            self.results,
            self.escalation,
            path,
        )
        self.executor.reporter.run_finished(result)
        return result


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
