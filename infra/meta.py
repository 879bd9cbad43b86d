"""Labels, metadata and the hardened pod/container security settings every workload shares.

Specs are written as plain dictionaries with the Kubernetes (camelCase) field names, exactly as the API and
the CRDs spell them: one style for built-in kinds and custom resources (a Rollout's pod template is the same
dictionary a CronJob's is), easy to compare with upstream documentation.
"""

from __future__ import annotations

from typing import Any, cast

import pulumi

PART_OF = "shorts-platform"
TMP = "/tmp"  # the only writable path: the root filesystem is read-only

Obj = dict[str, Any]


def spec(value: Obj | list[Obj] | list[dict[str, str]]) -> Any:
    """A camelCase dictionary handed to a typed pulumi-kubernetes resource (it passes such keys through)."""
    return value


def labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def metadata(name: str, namespace: pulumi.Input[str] | None, component: str, **extra: Any) -> Any:
    meta: Obj = {"name": name, "labels": labels(name, component), **extra}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def pod_security() -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Obj:
    return {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> tuple[Obj, Obj]:
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        {"name": "tmp", "mountPath": TMP},
    )


def custom_resource_name(resource: pulumi.CustomResource) -> pulumi.Output[str]:
    """metadata.name of a CustomResource: its outputs are untyped, set on the instance at run time."""
    return cast(pulumi.Output[Any], cast(Any, resource).metadata).apply(lambda m: str(m["name"]))
