"""Prints what a stack runs (its Kubernetes objects by kind and namespace) from `pulumi stack export`."""

from __future__ import annotations

import json
import sys
from collections import Counter
from typing import Any


def kubernetes_objects(deployment: dict[str, Any]) -> Counter[tuple[str, str]]:
    """(namespace, kind) -> count for every Kubernetes object the stack created."""
    counts: Counter[tuple[str, str]] = Counter()
    for resource in deployment.get("deployment", {}).get("resources", []) or []:
        rtype: str = resource.get("type", "")
        # Components (shorts:...), the stack and providers (pulumi:...) are bookkeeping, not cluster objects.
        if not rtype.startswith("kubernetes:") or not resource.get("custom", False):
            continue
        outputs = resource.get("outputs", {})
        kind = outputs.get("kind") or rtype.rsplit(":", 1)[-1]
        namespace = (outputs.get("metadata") or {}).get("namespace") or "(cluster)"
        counts[(namespace, kind)] += 1
    return counts


def main() -> int:
    counts = kubernetes_objects(json.load(sys.stdin))
    if not counts:
        print("no Kubernetes objects in this stack")
        return 0
    width = max(len(kind) for _, kind in counts)
    for namespace in sorted({ns for ns, _ in counts}):
        print(f"namespace {namespace}:")
        for (ns, kind), count in sorted(counts.items()):
            if ns == namespace:
                print(f"  {kind:<{width}}  {count}")
    print(f"{sum(counts.values())} objects")
    return 0


if __name__ == "__main__":
    sys.exit(main())
