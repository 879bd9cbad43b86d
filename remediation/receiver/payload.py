"""Alertmanager webhook payloads (version 4): validation against the JSON Schema and typed alerts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

# The repository's schemas/ directory; an installed image may point elsewhere with REMEDIATION_SCHEMAS_DIR.
SCHEMAS_DIR = Path(
    os.environ.get("REMEDIATION_SCHEMAS_DIR") or Path(__file__).resolve().parents[2] / "schemas"
)
SCHEMA_PATH = SCHEMAS_DIR / "alertmanager-webhook.schema.json"


class PayloadError(ValueError):
    """The request body is not a valid version-4 webhook payload; the message names the field."""


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str
    generator_url: str = ""

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def dedupe_id(self) -> str:
        """One firing episode of one alert: Alertmanager replicas (HA) send it with the same pair."""
        return f"{self.fingerprint}@{self.starts_at}"


@dataclass(frozen=True)
class Notification:
    group_key: str
    status: str
    receiver: str
    alerts: list[Alert]
    truncated_alerts: int = 0
    group_labels: dict[str, str] = field(default_factory=dict)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _field_name(error: ValidationError) -> str:
    """`alerts[0].labels.alertname`-style location of a schema error, for a human."""
    parts: list[str] = []
    for item in error.absolute_path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    if error.validator == "required" and isinstance(error.instance, dict):
        required: Any = error.validator_value
        missing = [name for name in required if name not in error.instance]
        if missing:
            parts.append(f".{missing[0]}" if parts else missing[0])
    return "".join(parts) or "(body)"


def _describe(error: ValidationError) -> str:
    where = _field_name(error)
    if error.validator == "required":
        return f"{where}: required field is missing"
    if error.validator == "const" and where == "version":
        return f'version: expected "4" (Alertmanager webhook payload version 4), got {error.instance!r}'
    if error.validator == "pattern" and where.endswith(("startsAt", "endsAt")):
        return f"{where}: {error.instance!r} is not an RFC 3339 time like 2026-01-02T03:04:05Z"
    if error.validator == "enum":
        values: Any = error.validator_value
        allowed = ", ".join(repr(v) for v in values)
        return f"{where}: {error.instance!r} is not one of {allowed}"
    return f"{where}: {error.message}"


def parse_notification(body: bytes) -> Notification:
    """Decode and validate one webhook body. Raises PayloadError with every problem (max 5) named by field."""
    try:
        data: Any = json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError("body: not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise PayloadError("; ".join(_describe(e) for e in errors[:5]))
    return Notification(
        group_key=data["groupKey"],
        status=data["status"],
        receiver=data["receiver"],
        truncated_alerts=int(data.get("truncatedAlerts", 0)),
        group_labels=dict(data["groupLabels"]),
        alerts=[
            Alert(
                status=a["status"],
                labels=dict(a["labels"]),
                annotations=dict(a["annotations"]),
                starts_at=a["startsAt"],
                ends_at=a["endsAt"],
                fingerprint=a["fingerprint"],
                generator_url=a.get("generatorURL", ""),
            )
            for a in data["alerts"]
        ],
    )
