"""`make render STACK=<stack>`: one YAML manifest per Kubernetes resource, in build/manifests/<stack>/.

The program runs under Pulumi mocks (no engine, no cluster); each manifest is the resource's inputs exactly as
the engine would receive them. File names start with an apply order (namespace, identities and config,
services, workloads, then what refers to workloads), so `kubectl apply -f` on the directory just works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.evaluate import STACKS_DIR, Captured, evaluate, stacks
from infra.settings import SettingsError

ROOT = Path(__file__).resolve().parent.parent
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="one of: " + ", ".join(stacks()))
    parser.add_argument("--out", type=Path, help="output directory (default: build/manifests/<stack>)")
    parser.add_argument(
        "--stacks-dir", type=Path, default=STACKS_DIR, help="where Pulumi.<stack>.yaml files are"
    )
    args = parser.parse_args(argv)
    known = stacks(args.stacks_dir)
    if args.stack not in known:
        print(
            f"unknown stack {args.stack!r}: {args.stacks_dir} has {', '.join(known) or 'none'}",
            file=sys.stderr,
        )
        return 2
    out_dir = args.out or ROOT / "build" / "manifests" / args.stack
    try:
        written = render(args.stack, out_dir, args.stacks_dir)
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {len(written)} manifests to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
