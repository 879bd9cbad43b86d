"""Evaluate the program for a stack under Pulumi mocks: no engine, no cluster.

Used by the unit tests, the manifest validation and dry-run tests, and the benchmark (`make render` runs the
real engine). Every registered resource is captured with its type, name, parent and inputs (as the engine
would receive them); component outputs too.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc

from infra.settings import PROJECT, parse_settings

STACKS_DIR = Path(__file__).resolve().parent.parent / "stacks"


@dataclass
class Captured:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_kubernetes(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and not self.type.startswith("pulumi:")

    @property
    def kind(self) -> str:
        return self.type.rsplit(":", 1)[-1]


@dataclass
class Evaluation:
    stack: str
    resources: list[Captured]
    exports: dict[str, Any]

    def kubernetes(self) -> list[Captured]:
        return [r for r in self.resources if r.is_kubernetes]

    def of_kind(self, kind: str) -> list[Captured]:
        return [r for r in self.kubernetes() if r.kind == kind]

    def named(self, kind: str, name: str) -> Captured:
        matches = [r for r in self.of_kind(kind) if r.inputs.get("metadata", {}).get("name") == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} {kind} named {name!r} in stack {self.stack}")
        return matches[0]


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


class _CapturingMonitor(mocks.MockMonitor):
    """The mock monitor, also keeping each registration's parent and each component's registered outputs."""

    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.captured: dict[str, Captured] = {}

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.captured[response.urn] = Captured(
                request.type, request.name, response.urn, request.parent, bool(request.custom), _plain(inputs)
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        outputs = _plain(rpc.deserialize_properties(request.outputs))
        if request.urn in self.captured:
            self.captured[request.urn].outputs = outputs
        else:
            self.captured.setdefault(
                "stack-outputs", Captured("stack", "", request.urn, "", False, {}, outputs)
            )
        return super().RegisterResourceOutputs(request)


def _plain(value: Any) -> Any:
    """Wire values as a manifest would hold them: protobuf numbers are floats, 5.0 means 5."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def stack_config(stack: str, stacks_dir: Path = STACKS_DIR) -> dict[str, Any]:
    """The `config:` section of stacks/Pulumi.<stack>.yaml."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return dict(document.get("config") or {})


def raw_settings(config: dict[str, Any]) -> dict[str, Any]:
    prefix = f"{PROJECT}:"
    return {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}


def evaluate(stack: str, config: dict[str, Any] | None = None, stacks_dir: Path = STACKS_DIR) -> Evaluation:
    """Run the program for `stack` under mocks and return what it registered."""
    from infra.program import build_platform  # imported late: the mocks must be in place first

    config = stack_config(stack, stacks_dir) if config is None else config
    settings = parse_settings(raw_settings(config), stack)
    return run_under_mocks(stack, lambda: build_platform(settings), config)


def run_under_mocks(
    stack: str, program: Callable[[], dict[str, Any]], config: dict[str, Any] | None = None
) -> Evaluation:
    """Run any program function under mocks (the benchmark's empty baseline uses this too)."""
    # Pulumi's mocks run on the thread's current event loop; a caller that used asyncio.run() (any test
    # before this one, in the same process) leaves none behind, so each evaluation gets a fresh one.
    asyncio.set_event_loop(asyncio.new_event_loop())
    monitor = _CapturingMonitor()
    pulumi.runtime.set_mocks(_Mocks(), project=PROJECT, stack=stack, preview=False, monitor=monitor)
    config = config or {}
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    exports: dict[str, Any] = {}

    def run() -> Any:
        return pulumi.Output.from_input(program()).apply(exports.update)

    pulumi.runtime.test(run)()
    resources = [c for key, c in monitor.captured.items() if key != "stack-outputs"]
    return Evaluation(stack, resources, _plain(exports))


def stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(
        p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in stacks_dir.glob("Pulumi.*.yaml")
    )
