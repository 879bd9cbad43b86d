"""Helpers for tools/cluster that are easier in Python than in shell.

bootstrap.py ports P1 P2 ...     print one free loopback port per argument (P if it is free; 0 = any)
bootstrap.py bootstrap --kubeconfig F --crds DIR [--timeout S]
    creates the kwok fake nodes, applies every CRD file under DIR/<project>/*.yaml (server-side apply),
    waits until each CRD is Established, the nodes are Ready and the `default` ServiceAccount exists.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

FIELD_MANAGER = "shorts-cluster"
FAKE_NODES = [("kwok-node-0", "zone-a"), ("kwok-node-1", "zone-b"), ("kwok-node-2", "zone-c")]


class BootstrapError(Exception):
    """A step of the bootstrap failed; the message says which and why."""


# ---------------------------------------------------------------- ports


def free_ports(wanted: list[int]) -> list[int]:
    """Keeps each wanted port that can be bound now; replaces the others (and 0) with fresh free ports.

    All sockets stay open until every port is chosen, so the same port is never handed out twice."""
    chosen: list[int] = []
    with ExitStack() as stack:
        for port in wanted:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.bind(("127.0.0.1", 0))
            chosen.append(sock.getsockname()[1])
    return chosen


# ---------------------------------------------------------------- bootstrap


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the API may still be settling: retry until the deadline
            last_error = f" (last error: {exc})"
        time.sleep(0.5)
    raise BootstrapError(f"timed out after {timeout:.0f}s waiting for {what}{last_error}")


def fake_node(name: str, zone: str) -> dict[str, Any]:
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            # kwok manages only nodes carrying this annotation (see --manage-nodes-with-annotation-selector).
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "node-role.kubernetes.io/agent": "",
                "topology.kubernetes.io/region": "local",
                "topology.kubernetes.io/zone": zone,
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def yaml_loader() -> Any:
    """The C-accelerated safe loader (the CRD files are megabytes), minus PyYAML's YAML 1.1 `=` value tag:
    CRD schemas contain enum values such as `=`, which must stay plain strings."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    return Loader


def crd_documents(crds_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    import yaml

    loader = yaml_loader()
    files = sorted(crds_dir.glob("*/*.yaml")) + sorted(crds_dir.glob("*/*.yml"))
    if not files:
        raise BootstrapError(f"{crds_dir}: no <project>/*.yaml files to apply")
    for path in files:
        try:
            docs = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
        except yaml.YAMLError as exc:
            raise BootstrapError(f"{path}: not valid YAML: {exc}") from None
        for doc in docs:
            if not doc:
                continue
            if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                raise BootstrapError(f"{path}: a document without kind/apiVersion cannot be applied")
            yield path, doc


def is_established(crd: dict[str, Any]) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def node_ready(node: Any) -> bool:
    conditions = node.status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def bootstrap(kubeconfig: str, crds_dir: Path | None, timeout: float) -> None:
    from kubernetes import client, config, dynamic
    from kubernetes.client.rest import ApiException

    api_client = config.new_client_from_config(config_file=kubeconfig)
    core = client.CoreV1Api(api_client)
    dyn = dynamic.DynamicClient(api_client)

    nodes = dyn.resources.get(api_version="v1", kind="Node")
    for name, zone in FAKE_NODES:
        try:
            nodes.create(body=fake_node(name, zone))
        except ApiException as exc:
            if exc.status != 409:  # 409: it exists already (the cluster was up before)
                raise BootstrapError(f"creating node {name}: {exc.status} {exc.reason}") from exc

    applied: list[str] = []
    for path, doc in crd_documents(crds_dir) if crds_dir else ():
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        name = doc["metadata"]["name"]
        try:
            dyn.server_side_apply(resource, body=doc, field_manager=FIELD_MANAGER, force_conflicts=True)
        except ApiException as exc:
            raise BootstrapError(
                f"{path}: applying {doc['kind']} {name} failed: {exc.status} {exc.body}"
            ) from exc
        if doc["kind"] == "CustomResourceDefinition":
            applied.append(name)

    crd_api = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    wait_until(
        f"{len(applied)} CRDs to be Established",
        lambda: all(is_established(crd_api.get(name=n).to_dict()) for n in applied),
        timeout,
    )
    wait_until(
        "the fake nodes to be Ready (kwok)",
        lambda: all(node_ready(core.read_node(n)) for n, _ in FAKE_NODES),
        timeout,
    )
    wait_until(
        "the default ServiceAccount",
        lambda: bool(core.read_namespaced_service_account("default", "default")),
        timeout,
    )
    crds = f"{len(applied)} CRDs applied and Established" if crds_dir else "CRDs applied before"
    print(f"bootstrap: {len(FAKE_NODES)} kwok nodes Ready, {crds}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bootstrap.py")
    sub = parser.add_subparsers(dest="command", required=True)
    ports = sub.add_parser("ports")
    ports.add_argument("wanted", nargs="+", type=int)
    boot = sub.add_parser("bootstrap")
    boot.add_argument("--kubeconfig", required=True)
    boot.add_argument("--crds", type=Path)
    boot.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    if args.command == "ports":
        print(" ".join(str(p) for p in free_ports(args.wanted)))
        return 0
    try:
        bootstrap(args.kubeconfig, args.crds, args.timeout)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # e.g. the API server went away: one line, not a traceback
        print(f"bootstrap: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
