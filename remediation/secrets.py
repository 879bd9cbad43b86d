"""Secrets come from the environment (or a mounted Secret directory in-cluster) and never leave memory.

Every value handed out is registered with the Redactor, which the executor applies to everything it
prints or writes: progress lines, run records, the audit log, error messages and step outputs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remediation.errors import PermanentError

SECRETS_DIR_ENV = "REMEDIATION_SECRETS_DIR"  # where the Job mounts its Secret (one file per key)
MASK = "***"


class Redactor:
    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str) -> None:
        if value:
            self._values.add(value)

    def text(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text

    def __call__(self, value: Any) -> Any:
        """A copy of `value` with every secret replaced by ***, in keys and values, at any depth."""
        if not self._values:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        return value


class SecretSource:
    def __init__(self, redactor: Redactor, environ: Mapping[str, str] | None = None) -> None:
        self.redactor = redactor
        self.environ = os.environ if environ is None else environ

    def get(self, name: str) -> str:
        value = self.environ.get(name)
        if value is None:
            directory = self.environ.get(SECRETS_DIR_ENV)
            candidate = Path(directory, name) if directory else None
            if candidate is not None and candidate.is_file():
                value = candidate.read_text(encoding="utf-8").strip()
        if not value:
            raise PermanentError(
                f"secret {name} is not set: export {name}=... (or mount it under ${SECRETS_DIR_ENV})"
            )
        self.redactor.add(value)
        return value
