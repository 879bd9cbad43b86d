"""Manifests of a stack evaluated under Pulumi mocks (no engine, no cluster): for the tests only.

The tests that check every stack's manifests (strict schema validation, the API server's dry run) use this to
see what the program declares without running the engine. Users run `make render` (tools/render.sh), which
writes the `render` stack's files with the real engine (pulumi-kubernetes' render-to-directory); the e2e test
tests/e2e/test_pulumi_render.py checks that the engine writes exactly the objects this evaluation declares.

File names start with an apply order (namespace, identities and config, services, workloads, then what refers
to workloads), so `kubectl apply -f` on the directory works too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from infra.evaluate import STACKS_DIR, Captured, evaluate

ORDER = {
    "Namespace": 0,
    "ServiceAccount": 10,
    "Role": 10,
    "RoleBinding": 10,
    "ConfigMap": 10,
    "Service": 20,
    "Middleware": 20,
    "TraefikService": 20,
    "AnalysisTemplate": 20,
    "Rollout": 30,
    "CronJob": 30,
}
LATER = 40  # HPAs, PDBs, IngressRoutes, PrometheusRules: they refer to what comes before


def _sorted(value: Any) -> Any:
    """Keys in a stable order, so that re-rendering an unchanged stack changes no file."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def manifest(resource: Captured) -> dict[str, Any]:
    first = ("apiVersion", "kind", "metadata")
    body = {k: _sorted(resource.inputs[k]) for k in first if k in resource.inputs}
    body.update({k: _sorted(v) for k, v in sorted(resource.inputs.items()) if k not in first})
    return body


def file_name(resource: Captured) -> str:
    name = resource.inputs.get("metadata", {}).get("name", resource.name)
    return f"{ORDER.get(resource.kind, LATER):02d}-{resource.kind.lower()}-{name}.yaml"


def render(stack: str, out_dir: Path, stacks_dir: Path = STACKS_DIR) -> list[Path]:
    evaluation = evaluate(stack, stacks_dir=stacks_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    written = []
    for resource in evaluation.kubernetes():
        path = out_dir / file_name(resource)
        if path.exists():
            raise SystemExit(f"two resources would both be written to {path}")
        path.write_text(
            yaml.safe_dump(manifest(resource), sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        written.append(path)
    return written
