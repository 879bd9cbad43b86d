"""Every rendered manifest of every stack is valid for the cluster it targets.

Built-in kinds: strictly (unknown fields rejected) against the Kubernetes OpenAPI schema of the pinned cluster
version, with kubernetes-validate. Custom kinds: against the openAPIV3Schema of the CRD their project
publishes,
taken from the projects' Go modules by tools/fetch-crds.sh (run here, as on a clean machine), made strict the
way the API server's strict field validation is: an object with declared properties accepts no other field.
"""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra.evaluate import stacks
from tools.render import render

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


class CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML, plus the YAML 1.1 `=` value some CRDs carry as an enum member (prometheus-operator)."""


CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def pinned_kubernetes_version() -> str:
    text = (ROOT / "tools" / "versions.env").read_text(encoding="utf-8")
    match = re.search(r"^KUBERNETES_VERSION=v?(\d+\.\d+\.\d+)", text, re.MULTILINE)
    assert match, "tools/versions.env pins no KUBERNETES_VERSION"
    return match.group(1)


@pytest.fixture(scope="module")
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema, for every CRD fetched by tools/fetch-crds.sh."""
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "fetch-crds.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    crd_dir = Path(result.stdout.strip().splitlines()[-1])
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(crd_dir.glob("*/*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=CrdLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                    schemas[key] = strict(version["schema"]["openAPIV3Schema"])
    assert len(schemas) >= 20, f"only {len(schemas)} CRD versions found in {crd_dir}"
    return schemas


def strict(schema: Any) -> Any:
    """Reject undeclared fields wherever the CRD declares its properties (and does not preserve unknowns)."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # metadata is the API server's to check (ObjectMeta); the CRD schema only says "object"
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


@pytest.fixture(scope="module", params=stacks())
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp(f"manifests-{request.param}")
    files = render(request.param, out)
    assert len(files) == len(list(out.glob("*.yaml"))) > 0
    return [yaml.safe_load(f.read_text(encoding="utf-8")) for f in files]


def is_custom(manifest: dict[str, Any]) -> bool:
    group = manifest["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def test_builtin_kinds_validate_strictly(rendered: list[dict[str, Any]]) -> None:
    version = pinned_kubernetes_version()
    builtins = [m for m in rendered if not is_custom(m)]
    assert {m["kind"] for m in builtins} >= {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Service",
        "CronJob",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }
    failures = []
    for m in builtins:
        try:
            kubernetes_validate.validate(m, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(
                f"{m['kind']}/{m['metadata']['name']}: {'.'.join(map(str, error.path))}: {error.message}"
            )
    assert failures == []


def test_custom_kinds_validate_against_their_crds(
    rendered: list[dict[str, Any]], crd_schemas: dict[tuple[str, str], dict[str, Any]]
) -> None:
    customs = [m for m in rendered if is_custom(m)]
    assert {m["kind"] for m in customs} == {
        "Rollout",
        "AnalysisTemplate",
        "TraefikService",
        "Middleware",
        "IngressRoute",
        "PrometheusRule",
        "ServiceMonitor",
    }
    failures = []
    for m in customs:
        schema = crd_schemas.get((m["apiVersion"], m["kind"]))
        if schema is None:
            failures.append(f"{m['apiVersion']} {m['kind']}: no CRD serves it")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(m):
            where = ".".join(map(str, error.absolute_path))
            failures.append(f"{m['kind']}/{m['metadata']['name']}: {where}: {error.message}")
    assert failures == []


def test_strict_crd_schema_rejects_a_misspelled_field(
    crd_schemas: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The CRD check is not a formality: a field the CRD does not declare fails."""
    schema = crd_schemas[("traefik.io/v1alpha1", "Middleware")]
    good = {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {"name": "x"},
        "spec": {"rateLimit": {"average": 100, "period": "15m"}},
    }
    bad = copy.deepcopy(good)
    bad["spec"]["rateLimit"]["avarage"] = bad["spec"]["rateLimit"].pop("average")
    assert list(jsonschema.Draft7Validator(schema).iter_errors(good)) == []
    assert any("avarage" in e.message for e in jsonschema.Draft7Validator(schema).iter_errors(bad))
