"""The `render` stack with the real engine: pulumi-kubernetes' render-to-directory writes one YAML file per
object, with no cluster and no kubeconfig.

Two ways in, both in a scratch copy of the project (symlinks to this tree, its own stacks/, state and
output): the Automation API (what a CI job would use), and tools/render.sh, the script `make render` runs.
Neither needs the local cluster: KUBECONFIG points at a file that does not exist.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pulumi import automation as auto

from infra.evaluate import Evaluation, evaluate, stack_config
from tests.e2e.conftest import PROJECT_DIR, pinned_versions
from tests.integration.test_manifests_validate import (  # noqa: F401 (crd_schemas is a fixture)
    crd_schemas,
    is_custom,
    pinned_kubernetes_version,
)
from tools.render import manifest

pytestmark = pytest.mark.e2e

STACK = "render"
# What a scratch project needs from this tree: the program, its inputs, the policy pack, tools/ and the venv.
LINKED = ("Pulumi.yaml", "__main__.py", "infra", "schemas", "runbooks", "policy", "tools", ".venv")
OUT = Path("build") / "manifests" / "render"  # stacks/Pulumi.render.yaml's renderDirectory


def scratch_project(root: Path) -> Path:
    root.mkdir(parents=True)
    for name in LINKED:
        (root / name).symlink_to(PROJECT_DIR / name)
    (root / "stacks").mkdir()
    shutil.copy(PROJECT_DIR / "stacks" / f"Pulumi.{STACK}.yaml", root / "stacks")
    return root


def offline_env(home: Path) -> dict[str, str]:
    """What tools/pulumi/paths.sh exports, with a private home and backend; the kubeconfig does not exist."""
    return {
        "PULUMI_HOME": str(home / "home"),
        "PULUMI_BACKEND_URL": f"file://{home / 'backend'}",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_CONFIG_PASSPHRASE": "",
        "KUBECONFIG": str(home / "no-such-kubeconfig"),
    }


def engine_bin_dir() -> Path:
    script = PROJECT_DIR / "tools" / "build-pulumi.sh"
    bin_dir = Path(
        subprocess.run([str(script), "--bin-dir"], capture_output=True, text=True, check=True).stdout.strip()
    )
    if not (bin_dir / "pulumi").is_file():
        pytest.fail(f"the Pulumi engine is not built ({bin_dir}): run `make tools`", pytrace=False)
    return bin_dir


def files_of(directory: Path) -> dict[Path, tuple[bytes, int]]:
    """Every file under directory, with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.rglob("*")) if p.is_file()}


def documents(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> the one document of each rendered file."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.rglob("*.yaml")):
        (doc,) = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in out, f"{key} rendered twice"
        out[key] = doc
    return out


def declared(evaluation: Evaluation) -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> the manifest the program declares, from infra's own evaluation under mocks."""
    return {(r.kind, r.inputs["metadata"]["name"]): manifest(r) for r in evaluation.kubernetes()}


def changes(summary: auto.UpdateSummary) -> dict[str, int]:
    """resource_changes by operation name ("create", "same", ...)."""
    return {str(getattr(op, "value", op)): n for op, n in (summary.resource_changes or {}).items()}


@dataclass(frozen=True)
class Rendered:
    project: Path
    out: Path
    first: auto.UpResult
    files_after_first: dict[Path, tuple[bytes, int]]
    second: auto.UpResult
    files_after_second: dict[Path, tuple[bytes, int]]
    evaluation: Evaluation


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """Two `pulumi up`s of the render stack through the Automation API, with the policy pack."""
    base = tmp_path_factory.mktemp("render-api")
    project = scratch_project(base / "project")
    bin_dir, env = engine_bin_dir(), offline_env(base)
    (base / "backend").mkdir()
    install = [str(bin_dir / "pulumi"), "plugin", "install", "resource", "kubernetes"]
    install += [
        pinned_versions()["PULUMI_KUBERNETES_VERSION"],
        "--file",
        str(bin_dir / "pulumi-resource-kubernetes"),
    ]
    subprocess.run(install, env={**os.environ, **env}, check=True, capture_output=True)
    workspace = auto.LocalWorkspaceOptions(
        work_dir=str(project),
        env_vars=env,
        pulumi_home=env["PULUMI_HOME"],
        pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent)),
    )
    stack = auto.create_or_select_stack(stack_name=STACK, work_dir=str(project), opts=workspace)
    policy = [str(PROJECT_DIR / "policy")]
    out = project / OUT
    first = stack.up(policy_packs=policy, color="never")
    after_first = files_of(out)
    second = stack.up(policy_packs=policy, color="never")
    evaluation = evaluate(STACK, config=stack_config(STACK, project / "stacks"))
    yield Rendered(project, out, first, after_first, second, files_of(out), evaluation)


def test_render_writes_one_file_per_object_the_program_declares(rendered: Rendered) -> None:
    assert rendered.first.summary.result == "succeeded"
    written, expected = documents(rendered.out), declared(rendered.evaluation)
    assert len(rendered.files_after_first) == len(written) == len(expected)
    assert set(written) == set(expected)
    assert changes(rendered.first.summary).get("create", 0) > len(expected)  # plus components, provider


def test_render_writes_the_custom_kinds(rendered: Rendered) -> None:
    kinds = {kind for kind, _ in documents(rendered.out)}
    assert kinds >= {"Rollout", "AnalysisTemplate", "IngressRoute", "Middleware", "TraefikService"}
    assert kinds >= {"PrometheusRule", "ServiceMonitor"}
    custom = {r.kind for r in rendered.evaluation.kubernetes() if is_custom(r.inputs)}
    assert custom <= kinds


def test_each_file_holds_exactly_what_the_program_declares(rendered: Rendered) -> None:
    """The engine writes the program's inputs unchanged: the manifest tests that read the mocks' output
    (strict validation, the server dry run) check what users get."""
    written, expected = documents(rendered.out), declared(rendered.evaluation)
    assert [key for key in expected if written.get(key) != expected[key]] == []


def test_a_second_render_changes_no_file(rendered: Rendered) -> None:
    assert rendered.second.summary.result == "succeeded"
    assert set(changes(rendered.second.summary)) == {"same"}, changes(rendered.second.summary)
    assert rendered.files_after_second == rendered.files_after_first


def test_rendered_builtin_kinds_validate_strictly(rendered: Rendered) -> None:
    version = pinned_kubernetes_version()
    failures = []
    builtins = [doc for doc in documents(rendered.out).values() if not is_custom(doc)]
    assert {doc["kind"] for doc in builtins} >= {"Namespace", "Role", "CronJob", "HorizontalPodAutoscaler"}
    for doc in builtins:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")
    assert failures == []


def test_rendered_custom_kinds_validate_against_their_crds(
    rendered: Rendered,
    crd_schemas: dict[tuple[str, str], dict[str, Any]],  # noqa: F811 (the fixture imported above)
) -> None:
    failures = []
    for doc in documents(rendered.out).values():
        if not is_custom(doc):
            continue
        schema = crd_schemas.get((doc["apiVersion"], doc["kind"]))
        if schema is None:
            failures.append(f"{doc['apiVersion']} {doc['kind']}: no CRD serves it")
            continue
        for error in jsonschema.Draft7Validator(schema).iter_errors(doc):
            failures.append(f"{doc['kind']}/{doc['metadata']['name']}: {error.message}")
    assert failures == []


# ---------------------------------------------------------------- `make render`'s script


def render_script(project: Path, *, stack: str = STACK) -> subprocess.CompletedProcess[str]:
    """tools/render.sh as `make render` runs it, in the scratch project (its state stays there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env |= {"KUBECONFIG": str(project / "no-such-kubeconfig"), "RENDER_STACK": stack}
    return subprocess.run(
        ["bash", str(project / "tools" / "render.sh")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def script_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scratch_project(tmp_path_factory.mktemp("render-script") / "project")


def test_make_render_writes_the_files_and_restores_a_deleted_one(script_project: Path) -> None:
    out = (script_project / OUT).resolve()
    first = render_script(script_project)
    assert first.returncode == 0, first.stderr[-3000:]
    count = len(evaluate(STACK, config=stack_config(STACK, script_project / "stacks")).kubernetes())
    assert f"wrote {count} manifests to {out}" in first.stderr
    before = files_of(out)
    assert len(before) == count

    # A no-change render writes nothing: the provider renders a file only on create or update.
    gone = sorted(before)[0]
    gone.unlink()
    second = render_script(script_project)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "rendering the stack afresh" in second.stderr
    after = files_of(out)
    assert sorted(after) == sorted(before)
    assert {p: content for p, (content, _) in after.items()} == {
        p: content for p, (content, _) in before.items()
    }


def test_make_render_names_a_bad_setting_without_a_trace(script_project: Path) -> None:
    document = yaml.safe_load(
        (script_project / "stacks" / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8")
    )
    document["config"]["shorts-platform:autoscaling"]["cpuTargetPercent"] = 150
    document["config"]["shorts-platform:renderDirectory"] = "build/manifests/broken"
    (script_project / "stacks" / "Pulumi.broken.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    result = render_script(script_project, stack="broken")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "stacks/Pulumi.broken.yaml" in output
    assert "shorts-platform:autoscaling.cpuTargetPercent is 150; allowed: an integer from 50 to 90" in output
    assert "Traceback" not in output
    assert list((script_project / "build" / "manifests" / "broken").rglob("*.yaml")) == []


def test_make_render_refuses_a_stack_that_would_deploy(script_project: Path) -> None:
    shutil.copy(PROJECT_DIR / "stacks" / "Pulumi.local.yaml", script_project / "stacks")
    result = render_script(script_project, stack="local")
    assert result.returncode == 2
    assert "Pulumi.local.yaml: shorts-platform:renderDirectory is not set" in result.stderr
    assert not (
        script_project / ".state" / "pulumi" / ".pulumi" / "stacks" / "shorts-platform" / "local.json"
    ).exists()
