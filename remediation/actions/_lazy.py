"""Import a heavy client library on first use, not when the registry loads every action module.

`remediation validate` and `plan` load all action modules to know their schemas; importing the
kubernetes client alone took over a second of that start-up, for commands that never call it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)
