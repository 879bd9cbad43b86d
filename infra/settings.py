"""Typed stack settings: read from `pulumi.Config`, checked against schemas/stack-settings.schema.json and the
manual's rules, and turned into frozen dataclasses.

A wrong or missing setting never surfaces as a stack trace: every problem is collected and reported at once,
each naming the stack file, the key, the bad value, what is allowed and the `pulumi config` command that
fixes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import jsonschema
import pulumi

from infra.manual import MANUAL_VALUES

PROJECT = "shorts-platform"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "stack-settings.schema.json"
SERVICE_NAMES = ("api", "app", "admin")


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory: str


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    image: str
    port: int
    health_path: str
    min_replicas: int
    max_replicas: int
    requests: Resources
    limits: Resources


@dataclass(frozen=True)
class Autoscaling:
    cpu_target_percent: int
    memory_target_percent: int
    scale_up_pods: int
    scale_down_stabilization_seconds: int


@dataclass(frozen=True)
class Canary:
    weights: tuple[int, ...]
    pause: str
    analysis_interval: str
    failure_limit: int
    max_error_ratio: float
    max_p95_latency_seconds: float


@dataclass(frozen=True)
class RateLimits:
    period: str
    anonymous: int
    authenticated: int
    premium: int
    tier_header: str
    identity_header: str
    client_ip_depth: int

    def tiers(self) -> dict[str, int]:
        return {"anonymous": self.anonymous, "authenticated": self.authenticated, "premium": self.premium}


@dataclass(frozen=True)
class Caching:
    static_path_prefix: str
    static_max_age_seconds: int
    trending_max_age_seconds: int
    search_max_age_seconds: int


@dataclass(frozen=True)
class Compression:
    gzip_level: int
    min_bytes: int


@dataclass(frozen=True)
class Alerts:
    error_ratio: float
    p95_latency_seconds: float
    youtube_daily_quota_units: int
    youtube_quota_ratio: float
    certificate_min_days: int
    db_max_connections: int
    cache_max_memory_ratio: float


@dataclass(frozen=True)
class Schedules:
    time_zone: str
    morning_check: str
    afternoon_check: str
    evening_check: str
    weekly_db_maintenance: str


@dataclass(frozen=True)
class Remediation:
    image: str
    profile: tuple[tuple[str, str], ...]  # sorted (key, value) pairs: frozen and hashable


@dataclass(frozen=True)
class PodSelector:
    """Pods of one namespace, selected by labels (a NetworkPolicy peer)."""

    namespace: str
    labels: tuple[tuple[str, str], ...]  # sorted (name, value) pairs: frozen and hashable


@dataclass(frozen=True)
class Receiver:
    """The alert receiver (`remediation serve`): size, guard defaults and the network peers it may talk to.

    The bearer token is never a setting: `token_secret` names an existing Secret (see docs/alertmanager.md).
    """

    replicas: int
    port: int
    token_secret: str
    token_key: str
    job_deadline: str
    cooldown: str
    budget: str
    breaker_failures: int
    max_body_bytes: int
    requests: Resources
    limits: Resources
    alertmanager: PodSelector
    prometheus: PodSelector
    dns: PodSelector
    api_server_cidrs: tuple[str, ...]
    api_server_ports: tuple[int, ...]


@dataclass(frozen=True)
class Settings:
    stack: str
    namespace: str
    domain: str
    prometheus_url: str
    render_directory: str | None
    services: tuple[ServiceSettings, ...]
    autoscaling: Autoscaling
    canary: Canary
    rate_limits: RateLimits
    caching: Caching
    compression: Compression
    alerts: Alerts
    schedules: Schedules
    remediation: Remediation
    receiver: Receiver

    def service(self, name: str) -> ServiceSettings:
        return next(s for s in self.services if s.name == name)


@dataclass(frozen=True)
class Problem:
    path: tuple[str | int, ...]
    value: str  # the bad value as the user wrote it, or "missing"
    allowed: str
    fix: str


class SettingsError(pulumi.RunError):
    """Bad stack settings. A RunError: the Pulumi language host prints its message without a stack trace."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        super().__init__(format_problems(stack, problems))


def format_problems(stack: str, problems: list[Problem]) -> str:
    where = f"stacks/Pulumi.{stack}.yaml"
    lines = [f"{where}: {len(problems)} invalid stack setting(s):"]
    for p in problems:
        lines.append(f"  - {config_key(p.path)} is {p.value}; allowed: {p.allowed}")
        lines.append(f"    fix: {p.fix}")
    return "\n".join(lines)


def config_key(path: tuple[str | int, ...]) -> str:
    """`shorts-platform:a.b[0]`: how the key reads in the stack file's `config:` section."""
    return f"{PROJECT}:{path_expr(path)}" if path else f"{PROJECT}:<settings>"


def path_expr(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# ---------------------------------------------------------------- reading


def raw_from_pulumi_config() -> dict[str, Any]:
    """Every `shorts-platform:*` key of the running stack; structured values arrive as JSON strings."""
    merged: dict[str, Any] = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    raw: dict[str, Any] = {}
    for key, value in merged.items():
        namespace, _, name = key.partition(":")
        if namespace == PROJECT and name:
            raw[name] = _decode(value)
    return raw


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load_settings() -> Settings:
    """The running stack's settings (raises SettingsError, shown by Pulumi without a stack trace)."""
    return parse_settings(raw_from_pulumi_config(), pulumi.get_stack())


# ---------------------------------------------------------------- validation


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def parse_settings(raw: Mapping[str, Any], stack: str) -> Settings:
    problems = schema_problems(raw, stack)
    if not problems:
        problems = semantic_problems(raw, stack)
    if problems:
        raise SettingsError(stack, problems)
    return _build(raw, stack)


def schema_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(_schema())
    problems: list[Problem] = []
    for error in validator.iter_errors(dict(raw)):
        problems.extend(_explain(error, stack))
    unique = {(p.path, p.value, p.allowed): p for p in problems}
    return sorted(unique.values(), key=lambda p: [str(x) for x in p.path])


def _explain(error: jsonschema.ValidationError, stack: str) -> list[Problem]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required":
        missing = str(error.message).split("'")[1]
        sub = _resolve(schema.get("properties", {}).get(missing, {}))
        full = (*path, missing)
        return [Problem(full, "missing", describe(sub), set_command(full, stack, sub))]
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        return [
            Problem(
                (*path, key),
                "an unknown key",
                "one of the keys " + ", ".join(known),
                f"pulumi config rm --path '{path_expr((*path, key))}' --stack {stack}",
            )
            for key in extra
        ]
    if "propertyNames" in error.schema_path:  # a bad key of a free-form map (labels): rename it
        key = str(error.instance)
        return [
            Problem(
                (*path, key),
                "an invalid key name",
                describe(schema),
                f"pulumi config rm --path '{path_expr((*path, key))}' --stack {stack}, then set a valid name",
            )
        ]
    if error.validator == "minItems":
        return [Problem(path, _show(error.instance), describe(schema), set_command(path, stack, schema))]
    sub = schema if "type" in schema or "description" in schema else {}
    return [Problem(path, _show(error.instance), describe(sub), set_command(path, stack, sub))]


def _resolve(schema: Mapping[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {
            **_schema()["$defs"][ref.removeprefix("#/$defs/")],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return dict(schema)


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "object": "a map of keys",
    "array": "a list",
    "boolean": "true or false",
}


def describe(schema: Mapping[str, Any]) -> str:
    """What a schema allows, in words a user reads in an error message."""
    schema = _resolve(schema)
    if "description" in schema and (schema.get("type") != "object" or "properties" not in schema):
        return str(schema["description"])
    kind = _TYPE_WORDS.get(str(schema.get("type")), "a value")
    if schema.get("type") == "array":
        item = describe(schema.get("items", {}))
        return f"a list of at least {schema.get('minItems', 0)} item(s), each {item}"
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if low is not None and high is not None:
        return f"{kind} from {low} to {high}"
    if xlow is not None and xhigh is not None:
        return f"{kind} greater than {xlow} and less than {xhigh}"
    if low is not None:
        return f"{kind} of at least {low}"
    if xlow is not None:
        return f"{kind} greater than {xlow}"
    if schema.get("type") == "object":
        return "a map with the keys " + ", ".join(sorted(schema.get("properties", {})))
    return kind


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def set_command(path: tuple[str | int, ...], stack: str, schema: Mapping[str, Any]) -> str:
    """The `pulumi config set` command(s) that put the manual's value (or a placeholder) at `path`."""
    dotted = path_expr(path)
    value = _suggestion(path)
    if value is None and _resolve(schema).get("type") in ("object", None) and path:
        leaves = [k for k in MANUAL_VALUES if k.startswith(dotted + ".")]
        if leaves:
            return " && ".join(_set_one(k, MANUAL_VALUES[k], stack) for k in leaves)
    if value is None:
        value = "<" + describe(schema) + ">"
    return _set_one(dotted, value, stack)


def _suggestion(path: tuple[str | int, ...]) -> Any:
    dotted = path_expr(path)
    if dotted in MANUAL_VALUES:
        return MANUAL_VALUES[dotted]
    if path and isinstance(path[-1], int):
        parent = MANUAL_VALUES.get(path_expr(path[:-1]))
        if isinstance(parent, list):
            return parent  # a bad list item: rewrite the whole list
    return None


def _set_one(dotted: str, value: Any, stack: str) -> str:
    if isinstance(value, list):
        base = dotted.rsplit("[", 1)[0] if dotted.endswith("]") else dotted
        sets = [_set_one(f"{base}[{i}]", item, stack) for i, item in enumerate(value)]
        return " && ".join([f"pulumi config rm --path '{base}' --stack {stack}", *sets])
    if isinstance(value, float):
        return f"pulumi config set --path '{dotted}' {value} --type float --stack {stack}"
    shown = value if isinstance(value, int) else f"'{value}'"
    return f"pulumi config set --path '{dotted}' {shown} --stack {stack}"


def semantic_problems(raw: Mapping[str, Any], stack: str) -> list[Problem]:
    """Rules a JSON Schema cannot say: weight order, replica bounds, mutable image tags."""
    problems: list[Problem] = []
    weights = list(raw["canary"]["weights"])
    path: tuple[str | int, ...] = ("canary", "weights")
    increasing = all(b > a for a, b in pairwise(weights))
    if not increasing or weights[-1] != 100:
        problems.append(
            Problem(
                path,
                _show(weights),
                "weights strictly increasing and ending at 100, such as [5, 25, 50, 100]",
                set_command(path, stack, {}),
            )
        )
    for name in SERVICE_NAMES:
        svc = raw["services"][name]
        if svc["minReplicas"] > svc["maxReplicas"]:
            where: tuple[str | int, ...] = ("services", name, "maxReplicas")
            problems.append(
                Problem(
                    where,
                    _show(svc["maxReplicas"]),
                    f"an integer of at least minReplicas ({svc['minReplicas']})",
                    _set_one(path_expr(where), svc["minReplicas"], stack),
                )
            )
    images: list[tuple[tuple[str | int, ...], str]] = [
        (("services", n, "image"), raw["services"][n]["image"]) for n in SERVICE_NAMES
    ]
    images.append((("remediation", "image"), raw["remediation"]["image"]))
    for where, image in images:
        if image.endswith(":latest"):
            problems.append(
                Problem(
                    where,
                    _show(image),
                    "an image with a fixed tag or digest; ':latest' changes under a running rollout",
                    _set_one(path_expr(where), image.removesuffix(":latest") + ":<version>", stack),
                )
            )
    return problems


# ---------------------------------------------------------------- building


def _resources(raw: Mapping[str, Any]) -> Resources:
    return Resources(cpu=str(raw["cpu"]), memory=str(raw["memory"]))


def _service(name: str, raw: Mapping[str, Any]) -> ServiceSettings:
    return ServiceSettings(
        name=name,
        image=raw["image"],
        port=raw["port"],
        health_path=raw["healthPath"],
        min_replicas=raw["minReplicas"],
        max_replicas=raw["maxReplicas"],
        requests=_resources(raw["requests"]),
        limits=_resources(raw["limits"]),
    )


def _pods(namespace: str, labels: Mapping[str, str]) -> PodSelector:
    return PodSelector(namespace, tuple(sorted(labels.items())))


def _receiver(raw: Mapping[str, Any]) -> Receiver:
    mon, api = raw["monitoring"], raw["apiServer"]
    return Receiver(
        replicas=raw["replicas"],
        port=raw["port"],
        token_secret=raw["tokenSecret"]["name"],
        token_key=raw["tokenSecret"]["key"],
        job_deadline=raw["jobDeadline"],
        cooldown=raw["cooldown"],
        budget=raw["budget"],
        breaker_failures=raw["breakerFailures"],
        max_body_bytes=raw["maxBodyBytes"],
        requests=_resources(raw["requests"]),
        limits=_resources(raw["limits"]),
        alertmanager=_pods(mon["namespace"], mon["alertmanagerLabels"]),
        prometheus=_pods(mon["namespace"], mon["prometheusLabels"]),
        dns=_pods(raw["dns"]["namespace"], raw["dns"]["labels"]),
        api_server_cidrs=tuple(api["cidrs"]),
        api_server_ports=tuple(api["ports"]),
    )


def _build(raw: Mapping[str, Any], stack: str) -> Settings:
    a, c, r = raw["autoscaling"], raw["canary"], raw["rateLimits"]
    k, z, al, s = raw["caching"], raw["compression"], raw["alerts"], raw["schedules"]
    return Settings(
        stack=stack,
        namespace=raw["namespace"],
        domain=raw["domain"],
        prometheus_url=raw["prometheusUrl"],
        render_directory=raw.get("renderDirectory"),
        services=tuple(_service(n, raw["services"][n]) for n in SERVICE_NAMES),
        autoscaling=Autoscaling(
            a["cpuTargetPercent"],
            a["memoryTargetPercent"],
            a["scaleUpPods"],
            a["scaleDownStabilizationSeconds"],
        ),
        canary=Canary(
            tuple(c["weights"]),
            c["pause"],
            c["analysisInterval"],
            c["failureLimit"],
            float(c["maxErrorRatio"]),
            float(c["maxP95LatencySeconds"]),
        ),
        rate_limits=RateLimits(
            r["period"],
            r["anonymous"],
            r["authenticated"],
            r["premium"],
            r["tierHeader"],
            r["identityHeader"],
            r.get("clientIpDepth", 0),
        ),
        caching=Caching(
            k["staticPathPrefix"],
            k["staticMaxAgeSeconds"],
            k["trendingMaxAgeSeconds"],
            k["searchMaxAgeSeconds"],
        ),
        compression=Compression(z["gzipLevel"], z["minBytes"]),
        alerts=Alerts(
            float(al["errorRatio"]),
            float(al["p95LatencySeconds"]),
            al["youtubeDailyQuotaUnits"],
            float(al["youtubeQuotaRatio"]),
            al["certificateMinDays"],
            al["dbMaxConnections"],
            float(al["cacheMaxMemoryRatio"]),
        ),
        schedules=Schedules(
            s["timeZone"], s["morningCheck"], s["afternoonCheck"], s["eveningCheck"], s["weeklyDbMaintenance"]
        ),
        remediation=Remediation(
            image=raw["remediation"]["image"], profile=tuple(sorted(raw["remediation"]["profile"].items()))
        ),
        receiver=_receiver(raw["receiver"]),
    )
