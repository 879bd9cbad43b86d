"""YAML documents with line numbers: every value's JSON-pointer-like path maps to the line it starts on.

PyYAML's composer keeps marks on nodes; we build plain Python data from the node graph ourselves so
that (1) each path remembers its line for error messages, (2) duplicate keys are an error instead of a
silent overwrite, (3) mapping keys stay the text the author wrote (YAML 1.1 would turn the key `on:`
into the boolean True), and (4) recursive aliases and absurd nesting are reported, not crashed on.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml

from remediation.errors import Problem

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAX_DEPTH = 64
_MAX_NODES = 200_000


@dataclass
class Document:
    """Parsed data plus where each path starts (1-based lines)."""

    file: str
    data: Any
    lines: dict[str, int] = field(default_factory=dict)

    def line(self, path: str) -> int | None:
        """Line of `path`, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path.rpartition("/")[0]


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()
        self._count = 0

    def build(self, node: yaml.Node, path: str, depth: int) -> Any:
        self._count += 1
        if self._count > _MAX_NODES:
            raise _Abort(Problem(self.file, path, "document is too large", node.start_mark.line + 1))
        if depth > _MAX_DEPTH:
            raise _Abort(
                Problem(self.file, path, f"nesting deeper than {_MAX_DEPTH} levels", node.start_mark.line + 1)
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self._active:
            raise _Abort(
                Problem(
                    self.file,
                    path,
                    "recursive YAML alias",
                    node.start_mark.line + 1,
                    "a value may not contain itself",
                )
            )
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, f"{path}/{i}", depth + 1) for i, item in enumerate(node.value)]
            return self._scalar(node, path)
        finally:
            self._active.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[str, Any]:
        self._constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Problem(self.file, path, "a mapping key must be plain text", key_node.start_mark.line + 1)
                )
                continue
            key = str(key_node.value)
            child = f"{path}/{key}" if path else key
            if key in result:
                self.problems.append(
                    Problem(
                        self.file,
                        child,
                        f"duplicate key {key!r}",
                        key_node.start_mark.line + 1,
                        "each key may appear once",
                    )
                )
                continue
            self.lines[child] = key_node.start_mark.line + 1
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def _scalar(self, node: yaml.Node, path: str) -> Any:
        value = self._constructor.construct_object(node, deep=True)
        if isinstance(value, datetime.date | datetime.datetime):
            return value.isoformat()  # JSON has no dates: keep what the author wrote, as text
        if isinstance(value, bytes | bytearray | set):
            self.problems.append(
                Problem(
                    self.file,
                    path,
                    "binary and set values are not supported",
                    node.start_mark.line + 1,
                    "write plain text, numbers or lists",
                )
            )
            return None
        return value


class _Abort(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def parse(text: str, file: str) -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document. Returns (document, problems); document is None when it cannot be read."""
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        message = (err.problem or err.context or "invalid YAML").strip()
        return None, [Problem(file, "", f"YAML syntax error: {message}", line, "fix the YAML syntax")]
    except yaml.YAMLError as err:
        return None, [Problem(file, "", f"YAML error: {err}", None, "fix the YAML syntax")]
    if node is None:
        return None, [
            Problem(file, "", "the file is empty", 1, "a runbook starts with `apiVersion: shorts.ops/v1`")
        ]
    builder = _Builder(file)
    try:
        data = builder.build(node, "", 0)
    except _Abort as abort:
        return None, [*builder.problems, abort.problem]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [
            Problem(
                file,
                "",
                f"YAML error: {getattr(err, 'problem', None) or err}",
                line,
                "use plain YAML values (no tags)",
            )
        ]
    except (RecursionError, ValueError, OverflowError) as err:
        return None, [Problem(file, "", f"YAML value cannot be read: {err}", None)]
    return Document(file, data, builder.lines), builder.problems
