"""Thresholds: an observed number compared with a limit, as prometheus.query's `threshold: {op, value}`."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
OPS = tuple(_OPS)

THRESHOLD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The condition the observed value must satisfy, e.g. {op: '<', value: 0.8}.",
    "additionalProperties": False,
    "required": ["op", "value"],
    "properties": {
        "op": {"enum": list(OPS), "description": "How the observed value compares with `value`."},
        "value": {"type": "number", "description": "The limit."},
    },
}


def holds(observed: float, threshold: Mapping[str, Any]) -> bool:
    """True when `observed op value`. NaN never holds: an undefined value is not a healthy one."""
    if math.isnan(observed):
        return False
    return _OPS[threshold["op"]](observed, float(threshold["value"]))


def text(threshold: Mapping[str, Any]) -> str:
    return f"{threshold['op']} {threshold['value']}"
