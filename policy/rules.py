"""The platform's policy rules as plain functions: (resource type, inputs) -> violation messages.

The CrossGuard pack (policy/pack.py, run by policy/__main__.py) wraps them; the unit tests call them directly
with good and bad inputs. Inputs are the Kubernetes objects as the engine sees them (camelCase keys); during a
preview some values may be unknown, so every rule reads defensively.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any, TypeGuard

Props = Mapping[str, Any]
ResourceRule = Callable[[str, Props], list[str]]

LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Rollout"}
HPA_MIN_PERCENT, HPA_MAX_PERCENT = 50, 90
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$")
_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _is_list(value: object) -> TypeGuard[Sequence[Any]]:
    """A list, or the read-only list proxy the policy engine hands rules (which is no `list`)."""
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def kind_of(resource_type: str) -> str:
    """`kubernetes:apps/v1:Deployment` -> `Deployment`."""
    return resource_type.rsplit(":", 1)[-1]


def _name(props: Props) -> str:
    meta = props.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return str(name) if isinstance(name, str) else "<unnamed>"


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_spec(kind: str, props: Props) -> Mapping[str, Any] | None:
    spec = {
        "Pod": _dig(props, "spec"),
        "Job": _dig(props, "spec", "template", "spec"),
        "CronJob": _dig(props, "spec", "jobTemplate", "spec", "template", "spec"),
    }.get(kind)
    if kind in LONG_RUNNING:
        spec = _dig(props, "spec", "template", "spec")
    return spec if isinstance(spec, Mapping) else None


def containers(kind: str, props: Props) -> list[Mapping[str, Any]]:
    spec = pod_spec(kind, props)
    if spec is None:
        return []
    found: list[Mapping[str, Any]] = []
    for key in ("initContainers", "containers"):
        items = spec.get(key)
        if _is_list(items):
            found.extend(c for c in items if isinstance(c, Mapping))
    return found


# ---------------------------------------------------------------- per-resource rules


def probes_and_resources(resource_type: str, props: Props) -> list[str]:
    """Every container has CPU and memory requests and limits; long-running ones also liveness and readiness
    probes (a Job's container ends by itself, so it needs none)."""
    kind = kind_of(resource_type)
    out: list[str] = []
    for c in containers(kind, props):
        where = f"{kind} {_name(props)}: container {c.get('name', '?')}"
        if kind in LONG_RUNNING:
            for probe in ("livenessProbe", "readinessProbe"):
                if not isinstance(c.get(probe), Mapping):
                    out.append(f"{where} has no {probe}")
        for section in ("requests", "limits"):
            values = _dig(c, "resources", section)
            for resource in ("cpu", "memory"):
                if not isinstance(values, Mapping) or values.get(resource) in (None, ""):
                    out.append(f"{where} has no resources.{section}.{resource}")
    return out


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def no_latest_images(resource_type: str, props: Props) -> list[str]:
    """Images carry a fixed tag or digest: `:latest` (or no tag) changes under a running rollout."""
    kind = kind_of(resource_type)
    out = []
    for c in containers(kind, props):
        image = c.get("image")
        if isinstance(image, str) and not image_is_pinned(image):
            out.append(
                f"{kind} {_name(props)}: container {c.get('name', '?')} uses image {image!r};"
                " pin a tag or digest"
            )
    return out


def hpa_targets_in_range(resource_type: str, props: Props) -> list[str]:
    """HPA utilization targets between 50 % and 90 %: lower wastes capacity, higher leaves no headroom."""
    if kind_of(resource_type) != "HorizontalPodAutoscaler":
        return []
    out = []
    metrics = _dig(props, "spec", "metrics")
    for metric in metrics if _is_list(metrics) else []:
        for source in ("resource", "containerResource"):
            target = _dig(metric, source, "target")
            percent = target.get("averageUtilization") if isinstance(target, Mapping) else None
            if isinstance(percent, int | float) and not HPA_MIN_PERCENT <= percent <= HPA_MAX_PERCENT:
                out.append(
                    f"HorizontalPodAutoscaler {_name(props)}: {_dig(metric, source, 'name')}"
                    f" target {percent:g} %"
                    f" is outside {HPA_MIN_PERCENT}-{HPA_MAX_PERCENT} %"
                )
    return out


def canary_steps_valid(resource_type: str, props: Props) -> list[str]:
    """Canary weights strictly increase and end at 100; every partial weight is followed by a pause."""
    if kind_of(resource_type) != "Rollout":
        return []
    steps = _dig(props, "spec", "strategy", "canary", "steps")
    if not _is_list(steps):
        return []
    name = _name(props)
    weights = [
        (i, s["setWeight"]) for i, s in enumerate(steps) if isinstance(s, Mapping) and "setWeight" in s
    ]
    out = []
    if not weights:
        out.append(f"Rollout {name}: canary steps set no weight")
    for (_, before), (_, after) in pairwise(weights):
        if not after > before:
            out.append(f"Rollout {name}: canary weight {after} does not increase on {before}")
    if weights and weights[-1][1] != 100:
        out.append(f"Rollout {name}: canary weights end at {weights[-1][1]}, not 100")
    for index, weight in weights:
        following = steps[index + 1] if index + 1 < len(steps) else None
        if weight < 100 and not (isinstance(following, Mapping) and "pause" in following):
            out.append(f"Rollout {name}: canary weight {weight} is not followed by a pause")
    return out


def no_wildcard_rbac(resource_type: str, props: Props) -> list[str]:
    """Roles name their verbs, resources and API groups: a wildcard grants what nobody reviewed."""
    kind = kind_of(resource_type)
    if kind not in ("Role", "ClusterRole"):
        return []
    out = []
    rules = props.get("rules")
    for i, rule in enumerate(rules if _is_list(rules) else []):
        for field in ("verbs", "resources", "apiGroups"):
            values = rule.get(field) if isinstance(rule, Mapping) else None
            if _is_list(values) and any(isinstance(v, str) and "*" in v for v in values):
                out.append(f"{kind} {_name(props)}: rules[{i}].{field} has a wildcard {list(values)}")
    return out


def duration_seconds(value: Any) -> float | None:
    """Traefik's period: an integer (seconds) or a Go duration string; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _SECONDS[match.group(2)]
    return None


def rate_limits_positive(resource_type: str, props: Props) -> list[str]:
    """A rateLimit middleware has a positive average and an explicit positive period (0 means no limit)."""
    if kind_of(resource_type) != "Middleware":
        return []
    limit = _dig(props, "spec", "rateLimit")
    if not isinstance(limit, Mapping):
        return []
    name, out = _name(props), []
    average = limit.get("average")
    if not (isinstance(average, int | float) and not isinstance(average, bool) and average > 0):
        out.append(f"Middleware {name}: rateLimit.average is {average!r}; it must be a positive number")
    period = duration_seconds(limit.get("period"))
    if period is None or period <= 0:
        out.append(
            f"Middleware {name}: rateLimit.period is {limit.get('period')!r}; it must be a positive duration"
        )
    return out


RESOURCE_RULES: dict[str, tuple[str, ResourceRule]] = {
    "containers-have-probes-and-resources": (
        "Probes and resource requests/limits on every container",
        probes_and_resources,
    ),
    "no-latest-images": ("Images are pinned to a tag or digest, never :latest", no_latest_images),
    "hpa-targets-50-90": ("HPA utilization targets between 50 % and 90 %", hpa_targets_in_range),
    "canary-steps": (
        "Canary weights strictly increase, end at 100, each partial weight followed by a pause",
        canary_steps_valid,
    ),
    "no-wildcard-rbac": ("No wildcard verbs, resources or API groups in Roles", no_wildcard_rbac),
    "rate-limits-positive": ("Rate limits have a positive average and period", rate_limits_positive),
}


# ---------------------------------------------------------------- stack rules


def hpa_owned_without_replicas(resources: Iterable[tuple[str, Props]]) -> list[str]:
    """A workload an HPA scales sets no `replicas`: both would own the field (server-side apply conflicts,
    and every deploy would reset the count the HPA chose)."""
    items = list(resources)
    targets = set()
    for resource_type, props in items:
        if kind_of(resource_type) == "HorizontalPodAutoscaler":
            ref = _dig(props, "spec", "scaleTargetRef")
            if isinstance(ref, Mapping):
                targets.add((ref.get("kind"), ref.get("name"), _namespace(props)))
    out = []
    for resource_type, props in items:
        kind = kind_of(resource_type)
        replicas = _dig(props, "spec", "replicas")
        if (
            kind in LONG_RUNNING
            and replicas is not None
            and _owned(kind, _name(props), _namespace(props), targets)
        ):
            out.append(
                f"{kind} {_name(props)} sets replicas={replicas} but a HorizontalPodAutoscaler scales it"
            )
    return out


def _namespace(props: Props) -> str | None:
    namespace = _dig(props, "metadata", "namespace")
    return namespace if isinstance(namespace, str) else None  # unknown during a preview


def _owned(kind: str, name: str, namespace: str | None, targets: set[tuple[Any, Any, str | None]]) -> bool:
    return any(
        k == kind and n == name and (namespace is None or ns is None or ns == namespace)
        for k, n, ns in targets
    )


STACK_RULES: dict[str, tuple[str, Callable[[Iterable[tuple[str, Props]]], list[str]]]] = {
    "hpa-owned-workloads-set-no-replicas": (
        "Workloads scaled by an HPA set no replicas",
        hpa_owned_without_replicas,
    ),
}
