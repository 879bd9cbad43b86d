"""Durations as runbooks write them: "100ms", "5s", "10m", "1h", "30d" (one number, one unit)."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$")

EXAMPLES = "100ms, 5s, 10m, 1h or 30d"


def is_duration(text: object) -> bool:
    return isinstance(text, str) and _PATTERN.match(text) is not None


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError (saying what is valid) when it is not a duration."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a duration (write a number and a unit: {EXAMPLES})")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of `seconds`, for messages (e.g. 600 -> "10m")."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and (seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"
