"""Every manifest rendered from every stack passes a server-side dry run (dryRun=All) on the real API server.

A server-side dry run goes through the whole admission chain (defaulting, OpenAPI/CRD schema validation,
admission plugins) without storing anything; with fieldValidation=Strict a field the API server or a CRD does
not know fails here too, instead of being dropped with a warning.

Namespaced objects can only be dry-run into a namespace that exists. The stacks' Namespace manifest is
itself dry-run first; then, if the namespace does not exist yet, it is created for real from that very
manifest and deleted again at the end (waiting until it is gone, so a later `pulumi up` of the same stack
in this session can create it). A namespace that already exists is used as it is and left alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from tools.render import render

pytestmark = pytest.mark.e2e


def untyped(api: object) -> Any:
    """The generated client's stubs want model objects; plain dicts (what the API takes) are simpler here."""
    return api


STACKS = ("local", "staging", "production")


def load(paths: list[Path]) -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(paths)]


def describe(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata", {})
    return f"{manifest['kind']} {meta.get('namespace', '')}/{meta.get('name')}".replace(" /", " ")


def dry_run(api: dynamic.DynamicClient, manifest: dict[str, Any]) -> str | None:
    """None when the API server accepts `manifest` in a dry run; otherwise its rejection, verbatim."""
    try:
        resource = api.resources.get(api_version=manifest["apiVersion"], kind=manifest["kind"])
    except dynamic.exceptions.ResourceNotFoundError:
        return f"{describe(manifest)}: the API server has no {manifest['apiVersion']} {manifest['kind']}"
    namespace = manifest.get("metadata", {}).get("namespace") if resource.namespaced else None
    # Strict: an unknown or duplicate field is an error, not a warning (or, for a CRD, silently pruned).
    query = [("dryRun", "All"), ("fieldValidation", "Strict")]
    request = api.client.param_serialize(
        "POST",
        resource.path(namespace=namespace),
        query_params=query,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=manifest,
        auth_settings=["BearerToken"],
    )
    try:
        answer = api.client.call_api(*request)
        answer.read()
        api.client.response_deserialize(answer, {})  # raises ApiException for a non-2xx answer
    except ApiException as exc:
        return f"{describe(manifest)}: {exc.status} {exc.body}"
    return None


def namespaces_of(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in manifests if m["kind"] == "Namespace"]


@pytest.fixture
def core(k8s: client.ApiClient) -> Any:
    return untyped(client.CoreV1Api(k8s))


def ensure_namespace(core: Any, manifest: dict[str, Any]) -> bool:
    """Creates the stack's namespace from its manifest unless it exists; True when this call created it."""
    try:
        core.read_namespace(manifest["metadata"]["name"])
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    core.create_namespace(manifest)
    return True


def delete_namespace(core: Any, name: str, timeout: float = 120) -> None:
    core.delete_namespace(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(0.5)
    pytest.fail(f"namespace {name} was not deleted within {timeout}s")


@pytest.mark.parametrize("stack", STACKS)
def test_every_manifest_passes_a_server_side_dry_run(
    stack: str, k8s: client.ApiClient, core: Any, tmp_path: Path
) -> None:
    manifests = load(render(stack, tmp_path / stack))
    namespaces = namespaces_of(manifests)
    assert len(manifests) > len(namespaces) >= 1, f"{stack}: nothing rendered"
    kinds = {m["kind"] for m in manifests}
    assert {
        "Rollout",
        "IngressRoute",
        "PrometheusRule",
        "HorizontalPodAutoscaler",
    } <= kinds  # custom kinds too

    api = dynamic.DynamicClient(k8s)
    rejections = [r for m in namespaces if (r := dry_run(api, m)) is not None]
    created = [m["metadata"]["name"] for m in namespaces if ensure_namespace(core, m)]
    try:
        rejections += [
            r for m in manifests if m["kind"] != "Namespace" and (r := dry_run(api, m)) is not None
        ]
    finally:
        for name in created:
            delete_namespace(core, name)

    assert rejections == [], (
        f"{stack}: {len(rejections)} of {len(manifests)} manifests rejected:\n" + "\n".join(rejections)
    )


def test_a_misspelt_field_is_rejected(k8s: client.ApiClient, namespace: str) -> None:
    """The check above can fail: a Rollout with `replica` for `replicas` is refused, naming the field."""
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "api", "namespace": namespace},
        "spec": {
            "replica": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "api", "image": "registry.invalid/api:1.0"}]},
            },
        },
    }
    rejection = dry_run(dynamic.DynamicClient(k8s), rollout)
    assert rejection is not None and "spec.replica" in rejection, rejection
    custom = untyped(client.CustomObjectsApi(k8s))
    assert (
        custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "rollouts")["items"] == []
    )
