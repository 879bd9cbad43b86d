"""Every error the remediation executor raises, in one tree.

    RemediationError        base: catch this to catch everything we raise
    ├── RunbookInvalid      a runbook (or profile, or --param) is wrong; carries every Problem at once
    ├── GuardRefused        cooldown, budget, lock or circuit breaker said "not now"; nothing was done
    ├── ApprovalDenied      a human (or the absence of --yes) refused a manual approval
    └── ActionError         an action failed while running
        ├── TemporaryError  worth retrying: timeouts, refused connections, 5xx, conflicts
        │   └── ThresholdCrossed  a live measurement (latency, connections, hit rate) is past its limit
        └── PermanentError  retrying cannot help: wrong status, 4xx, forbidden, an expiring certificate

Retry policy lives in one place (the executor): it retries TemporaryError only, and an ActionError
that is neither kind is treated as permanent. Every message says what to do next.
"""

from __future__ import annotations

from dataclasses import dataclass


class RemediationError(Exception):
    """Base of every error this package raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file: where it is, what is wrong, and what would be valid."""

    file: str
    path: str  # JSON-pointer-like location inside the document, e.g. "steps/2/on/failure"
    message: str
    line: int | None = None
    hint: str | None = None  # what would be valid, or a "did you mean ...?"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: {self.path or '(document)'}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class RunbookInvalid(RemediationError):
    """A runbook, profile or parameter failed validation. All problems are reported together."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class GuardRefused(RemediationError):
    """A guard stopped a mutating run before it did anything.

    `reason` is one of cooldown, budget, lock, breaker."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


class ApprovalDenied(RemediationError):
    """A manual approval was refused, or no human could be asked (non-interactive run without --yes)."""


class ActionError(RemediationError):
    """An action failed. `output` carries what the action observed before failing (kept in the run record)."""

    def __init__(self, message: str, output: dict[str, object] | None = None) -> None:
        self.output = output or {}
        super().__init__(message)


class TemporaryError(ActionError):
    """The failure may go away by itself: the executor retries it if the step allows retries."""


class PermanentError(ActionError):
    """Retrying cannot help: the step fails at once and its `on.failure` transition is taken."""


class ThresholdCrossed(TemporaryError):
    """A live measurement is past its limit. It may recover by itself (a scale-out taking effect, a pool
    draining), so a step with `retry` polls it until it holds; a step without retries fails at once."""
