"""The action registry: every action a runbook step may name, with its typed parameters.

An action is a frozen `ActionSpec`: a name (`system.verb`), a JSON Schema for its `with:` parameters,
whether it changes anything (mutating actions are guarded and only *planned* in a dry run), a coroutine
that does the work, and a function that describes in one line what the work would be.

Each system's module (`http`, `postgres`, ...) registers its actions at import time with `@action(...)`.
`load_all()` imports every module in `MODULES`; an import error is fatal and loud (never skipped), and a
second registration of the same name is refused with a message naming both definitions.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from remediation.errors import RemediationError

Params = Mapping[str, Any]
Output = dict[str, Any]


class ActionContext(Protocol):
    """What the executor hands an action. Actions never read the environment or files directly."""

    @property
    def dry_run(self) -> bool: ...

    @property
    def profile(self) -> Mapping[str, Any]:
        """Connection settings (URLs, DSNs, kube context) from the profile file; never secrets."""
        ...

    def secret(self, name: str) -> str:
        """The secret `name` (an environment variable, or a key of the mounted Secret in-cluster).

        The value is registered for redaction: it never reaches logs, run records or the audit log.
        Raises PermanentError naming the variable to set when it is missing.
        """
        ...

    async def approve(self, prompt: str) -> bool:
        """Ask a human (or honour --yes). False means refused."""
        ...

    def log(self, message: str) -> None:
        """A progress line shown under the running step (redacted)."""
        ...


Run = Callable[[ActionContext, Params], Awaitable[Output]]
Describe = Callable[[Params], str]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    summary: str
    params: Mapping[str, Any]  # JSON Schema (Draft 2020-12) of the step's `with:`
    mutates: bool
    run: Run
    describe: Describe  # one line: what `run` would do with these params (the dry-run plan)
    outputs: tuple[str, ...] = ()  # documented output keys, for templates that refer to them
    defined_at: str = field(default="", compare=False)


class DuplicateAction(RemediationError):
    """Two modules registered the same action name."""


class UnknownAction(RemediationError):
    """A name that no module registered."""


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[str, ActionSpec] = {}

    def register(self, spec: ActionSpec) -> ActionSpec:
        existing = self._actions.get(spec.name)
        if existing is not None:
            raise DuplicateAction(
                f"action {spec.name!r} is defined twice: at {existing.defined_at} and at {spec.defined_at}; "
                "rename one of them (names are `system.verb`)"
            )
        self._actions[spec.name] = spec
        return spec

    def get(self, name: str) -> ActionSpec:
        try:
            return self._actions[name]
        except KeyError:
            raise UnknownAction(
                f"no action named {name!r}; known actions: {', '.join(sorted(self))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._actions

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def items(self) -> Mapping[str, ActionSpec]:
        return MappingProxyType(self._actions)


REGISTRY = ActionRegistry()

# One module per system. A module that fails to import stops everything: a runbook must never find
# one of its actions silently missing.
MODULES = (
    "http",
    "tls",
    "postgres",
    "redis",
    "cache",
    "prometheus",
    "notify",
    "manual",
    "wait",
    "kubernetes",
)


def action(
    name: str,
    *,
    summary: str,
    params: Mapping[str, Any],
    mutates: bool,
    describe: Describe,
    outputs: tuple[str, ...] = (),
    registry: ActionRegistry = REGISTRY,
) -> Callable[[Run], Run]:
    """Decorator: register the decorated coroutine as action `name`."""

    def wrap(fn: Run) -> Run:
        where = f"{inspect.getsourcefile(fn)}:{inspect.getsourcelines(fn)[1]}"
        registry.register(ActionSpec(name, summary, params, mutates, fn, describe, outputs, defined_at=where))
        return fn

    return wrap


_loaded = False


def load_all() -> ActionRegistry:
    """Import every action module once and return the filled registry."""
    global _loaded
    if not _loaded:
        for module in MODULES:
            importlib.import_module(f"remediation.actions.{module}")
        _loaded = True
    return REGISTRY
