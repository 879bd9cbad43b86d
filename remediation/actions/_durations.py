"""The JSON Schema of a duration parameter; parsing itself lives in remediation.durations (one place)."""

from __future__ import annotations

from remediation.durations import EXAMPLES, parse_duration

__all__ = ["PATTERN", "duration_schema", "parse_duration"]

# The same grammar remediation.durations parses, spelled as a JSON Schema pattern.
PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h|d)$"


def duration_schema(description: str, default: str | None = None) -> dict[str, object]:
    """A duration parameter (a string such as "5s"), spelled alike by every action."""
    schema: dict[str, object] = {
        "type": "string",
        "pattern": PATTERN,
        "description": f"{description} A duration such as {EXAMPLES}.",
    }
    if default is not None:
        schema["default"] = default
    return schema
