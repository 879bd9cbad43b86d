"""The `render` stack (`make render`): production's settings written to a directory, and the helper that
tells tools/render.sh where the files go and which of them are gone."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from infra.evaluate import STACKS_DIR, Evaluation, raw_settings, stack_config

ROOT = Path(__file__).resolve().parents[3]


def load_rendered() -> ModuleType:
    # tools/pulumi is a folder of scripts, not a package (a package named `pulumi` would shadow the SDK).
    spec = importlib.util.spec_from_file_location("rendered", ROOT / "tools" / "pulumi" / "rendered.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rendered = load_rendered()


def test_render_stack_has_every_production_setting_and_a_directory() -> None:
    production = raw_settings(stack_config("production"))
    render = raw_settings(stack_config("render"))
    assert render.pop("renderDirectory") == "build/manifests/render"
    assert render == production


def test_render_stack_provider_writes_files_and_ignores_kubeconfig(
    evaluations: dict[str, Evaluation],
) -> None:
    (provider,) = [r for r in evaluations["render"].resources if r.type == "pulumi:providers:kubernetes"]
    # An empty kubeconfig: the SDK would otherwise pass $KUBECONFIG, refused next to renderYamlToDirectory.
    assert provider.inputs["renderYamlToDirectory"] == "build/manifests/render"
    assert provider.inputs["kubeconfig"] == ""
    (cluster_provider,) = [
        r for r in evaluations["local"].resources if r.type == "pulumi:providers:kubernetes"
    ]
    assert "renderYamlToDirectory" not in cluster_provider.inputs
    assert "kubeconfig" not in cluster_provider.inputs


def test_render_directory_is_relative_to_the_project(tmp_path: Path) -> None:
    assert rendered.render_directory(STACKS_DIR / "Pulumi.render.yaml", tmp_path) == (
        tmp_path / "build" / "manifests" / "render"
    )


def test_a_stack_without_render_directory_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(rendered.RenderError) as raised:
        rendered.render_directory(STACKS_DIR / "Pulumi.local.yaml", tmp_path)
    message = str(raised.value)
    assert "Pulumi.local.yaml" in message
    assert "shorts-platform:renderDirectory is not set" in message
    assert "would deploy to a cluster" in message


def test_an_unreadable_stack_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "Pulumi.render.yaml"
    bad.write_text("config: [unclosed\n", encoding="utf-8")
    with pytest.raises(rendered.RenderError, match=r"Pulumi\.render\.yaml: cannot be read as YAML"):
        rendered.render_directory(bad, tmp_path)


def obj(api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


@pytest.mark.parametrize(
    ("manifest", "path"),
    [
        (obj("v1", "Namespace", "shorts"), "1-manifest/v1-namespace-default-shorts.yaml"),
        (
            obj("argoproj.io/v1alpha1", "Rollout", "api", "shorts"),
            "1-manifest/argoproj.io_v1alpha1-rollout-shorts-api.yaml",
        ),
        (
            obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "rollouts.argoproj.io"),
            "0-crd/apiextensions.k8s.io_v1-customresourcedefinition-default-rollouts.argoproj.io.yaml",
        ),
        (obj("v1", "ConfigMap", "a:b", "shorts"), "1-manifest/v1-configmap-shorts-a_b.yaml"),
    ],
)
def test_file_names_follow_the_provider(manifest: dict[str, Any], path: str, tmp_path: Path) -> None:
    assert rendered.file_for(manifest, tmp_path) == tmp_path / path


def export(*objects: dict[str, Any]) -> dict[str, Any]:
    resources: list[dict[str, Any]] = [
        {"type": "pulumi:pulumi:Stack", "custom": False, "outputs": {}},
        {"type": "pulumi:providers:kubernetes", "custom": True, "outputs": {"renderYamlToDirectory": "x"}},
        {"type": "shorts:web:WebService", "custom": False, "outputs": {}},
    ]
    resources += [{"type": f"kubernetes:x:{o['kind']}", "custom": True, "outputs": o} for o in objects]
    return {"deployment": {"resources": resources}}


def test_missing_lists_only_the_rendered_files_that_are_gone(tmp_path: Path) -> None:
    namespace, rollout = (
        obj("v1", "Namespace", "shorts"),
        obj("argoproj.io/v1alpha1", "Rollout", "api", "shorts"),
    )
    state = export(namespace, rollout)
    for o in (namespace, rollout):
        rendered.file_for(o, tmp_path).parent.mkdir(parents=True, exist_ok=True)
        rendered.file_for(o, tmp_path).write_text(yaml.safe_dump(o), encoding="utf-8")
    assert rendered.missing(state, tmp_path) == []
    assert len(rendered.manifests(tmp_path)) == 2

    rendered.file_for(rollout, tmp_path).unlink()
    assert rendered.missing(state, tmp_path) == [rendered.file_for(rollout, tmp_path)]
    assert rendered.missing(export(), tmp_path) == []  # a new stack: nothing rendered yet, nothing missing


def test_cli_missing_reads_the_export_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(export(obj("v1", "Namespace", "shorts")))))
    assert rendered.main(["missing", str(tmp_path)]) == 1
    assert capsys.readouterr().out.strip() == str(
        tmp_path / "1-manifest" / "v1-namespace-default-shorts.yaml"
    )
    assert rendered.main(["directory", str(STACKS_DIR / "Pulumi.local.yaml"), str(tmp_path)]) == 2
    assert "renderDirectory is not set" in capsys.readouterr().err
    assert rendered.main(["bogus"]) == 2
