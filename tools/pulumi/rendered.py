"""What `make render` (tools/render.sh) needs besides the engine: where a stack renders to, and whether the
files that the stack's state says were rendered are still there.

pulumi-kubernetes' render-to-directory writes a file only when a resource is created or updated, so a file a
user deleted is not written again by a no-change `pulumi up`; tools/render.sh resets the stack when this finds
one missing. The file layout mirrors the provider's own (renderPathForResource in pkg/provider/provider.go):
<dir>/0-crd/ for CustomResourceDefinitions, <dir>/1-manifest/ for everything else, each file named
<apiVersion>-<kind>-<namespace or "default">-<name>.yaml with "/" and ":" replaced by "_".

Usage: rendered.py directory STACK_FILE PROJECT    prints the absolute render directory of that stack
       rendered.py missing DIRECTORY < EXPORT_JSON  prints each rendered file that is gone; exit 1 if any
       rendered.py count DIRECTORY                  prints how many manifests DIRECTORY holds
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

SETTING = "shorts-platform:renderDirectory"
SUBDIRS = ("0-crd", "1-manifest")


class RenderError(Exception):
    """A user mistake, reported as one line naming the file and the setting."""


def render_directory(stack_file: Path, project_dir: Path) -> Path:
    """The stack's renderDirectory setting; relative to the project when relative, as the provider sees it."""
    try:
        document = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise RenderError(f"{stack_file}: cannot be read as YAML ({error})") from None
    value = (document.get("config") or {}).get(SETTING)
    if not isinstance(value, str) or not value:
        raise RenderError(
            f"{stack_file}: {SETTING} is not set, so `pulumi up` of this stack would deploy to a cluster "
            f"instead of writing files; set it (e.g. `build/manifests/render`) or use the `render` stack"
        )
    return (project_dir / value).resolve()


def file_for(obj: dict[str, Any], directory: Path) -> Path:
    """Where the provider writes this object (apiVersion, kind and metadata as in its state)."""
    api_version, kind = obj["apiVersion"], obj["kind"]
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    name = f"{api_version}-{kind.lower()}-{namespace}-{metadata['name']}.yaml"
    name = name.replace("/", "_").replace(":", "_")
    crd = kind == "CustomResourceDefinition" and api_version.startswith("apiextensions.k8s.io/")
    return directory / SUBDIRS[0 if crd else 1] / name


def rendered_objects(export: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The Kubernetes objects of a `pulumi stack export`: custom kubernetes:* resources (not providers)."""
    for resource in (export.get("deployment") or {}).get("resources") or []:
        if resource.get("custom") and str(resource.get("type", "")).startswith("kubernetes:"):
            outputs = resource.get("outputs") or {}
            name = (outputs.get("metadata") or {}).get("name")
            if outputs.get("apiVersion") and outputs.get("kind") and name:
                yield outputs


def missing(export: dict[str, Any], directory: Path) -> list[Path]:
    return [path for obj in rendered_objects(export) if not (path := file_for(obj, directory)).is_file()]


def manifests(directory: Path) -> list[Path]:
    return sorted(p for sub in SUBDIRS for p in (directory / sub).glob("*.yaml"))


def main(argv: list[str]) -> int:
    try:
        match argv:
            case ["directory", stack_file, project]:
                print(render_directory(Path(stack_file), Path(project)))
            case ["missing", directory]:
                gone = missing(json.load(sys.stdin), Path(directory))
                print("\n".join(map(str, gone)))
                return 1 if gone else 0
            case ["count", directory]:
                print(len(manifests(Path(directory))))
            case _:
                print(__doc__, file=sys.stderr)
                return 2
    except RenderError as error:
        print(error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
