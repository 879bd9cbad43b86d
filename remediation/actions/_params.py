"""Building blocks for the actions' parameter schemas, and their defaults applied in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def params_schema(
    properties: Mapping[str, Any], required: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    """A Draft 2020-12 object schema that refuses unknown keys (a typo must never be silently ignored)."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": dict(properties),
    }
    if required:
        schema["required"] = list(required)
    schema.update(extra)
    return schema


def string(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": description, **extra}


def secret_name(description: str, default: str | None = None) -> dict[str, Any]:
    """A parameter ending in `_secret`: the NAME of an environment variable, never the value itself."""
    schema = {
        "type": "string",
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
        "description": f"{description} The name of the secret (an environment variable), never its value.",
    }
    if default is not None:
        schema["default"] = default
    return schema


def with_defaults(schema: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with every top-level default of `schema` filled in (JSON Schema validation does not do it)."""
    merged = {
        name: prop["default"]
        for name, prop in schema.get("properties", {}).items()
        if isinstance(prop, Mapping) and "default" in prop
    }
    merged.update(params)
    return merged
