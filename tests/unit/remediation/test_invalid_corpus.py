"""Every file in invalid/ fails `remediation validate` with exit code 2 and the messages its header expects.

A corpus file starts with comment lines:  `# expect: <text the output must contain>` (one or more) and
optionally `# line: N` (the first problem must point at that line).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from remediation.cli import main

from .conftest import Script, make_registry

CORPUS = sorted((Path(__file__).parent / "invalid").glob("*.yaml"))
REPO = Path(__file__).resolve().parents[3]


def header(path: Path) -> tuple[list[str], int | None]:
    expects, line = [], None
    for text in path.read_text(encoding="utf-8").splitlines():
        if text.startswith("# expect: "):
            expects.append(text.removeprefix("# expect: "))
        elif text.startswith("# line: "):
            line = int(text.removeprefix("# line: "))
    return expects, line


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert all(header(p)[0] for p in CORPUS), "every corpus file states what it expects"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_invalid_runbook_is_rejected_with_its_message(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expects, line = header(path)
    code = main(["validate", str(path)], registry=make_registry(Script()))
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    for expected in expects:
        assert expected in err, f"{path.name}: expected {expected!r} in:\n{err}"
    assert f"error: {path}" in err  # every problem names the file
    if line is not None:
        assert f"{path}:{line}:" in err.splitlines()[0]


def test_all_corpus_files_at_once_report_every_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", str(CORPUS[0].parent)], registry=make_registry(Script()))
    err = capsys.readouterr().err
    assert code == 2
    assert {p.name for p in CORPUS} <= {
        Path(line.split(":")[1].strip()).name for line in err.splitlines() if line.startswith("error: ")
    }


def test_json_output_lists_problems(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS[0].parent / "unknown-action.yaml"
    code = main(["validate", "--output", "json", str(path)], registry=make_registry(Script()))
    out = capsys.readouterr().out
    assert code == 2
    import json

    problems = json.loads(out)["problems"]
    assert problems[0]["path"] == "steps/0/action" and problems[0]["hint"] == "did you mean 'http.check'?"
    assert problems[0]["line"] == 11


@pytest.mark.parametrize(
    "name", ["yaml-syntax", "empty-file", "wrong-api-version", "recursive-alias", "duplicate-yaml-key"]
)
def test_the_installed_command_never_shows_a_traceback(name: str) -> None:
    path = CORPUS[0].parent / f"{name}.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "remediation.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stdout + proc.stderr
    assert header(path)[0][0] in proc.stderr


def test_missing_paths_are_invalid_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")], registry=make_registry(Script())) == 2
    assert "no such file or directory" in capsys.readouterr().err
