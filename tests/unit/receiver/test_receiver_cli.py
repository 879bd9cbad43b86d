"""`remediation serve` configuration mistakes: a clear message and exit code 2, never a stack trace."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from remediation.receiver.server import serve_main

from .builders import body, make_alert, make_payload


@pytest.fixture(autouse=True)
def _no_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REMEDIATION_RECEIVER_TOKEN", raising=False)
    monkeypatch.delenv("REMEDIATION_RECEIVER_TOKEN_FILE", raising=False)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = serve_main(["--store", "memory", "--launcher", "log", "--listen", "127.0.0.1:0", *argv])
    return code, capsys.readouterr().err


def test_no_token_anywhere(runbooks_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["--runbooks-dir", str(runbooks_dir)], capsys)
    assert code == 2
    assert (
        "no token: give --token-file, or set REMEDIATION_RECEIVER_TOKEN_FILE or REMEDIATION_RECEIVER_TOKEN"
        in err
    )


def test_missing_token_file(runbooks_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["--runbooks-dir", str(runbooks_dir), "--token-file", str(tmp_path / "nope")], capsys)
    assert (code, err.strip()) == (
        2,
        f"remediation serve: token file {tmp_path / 'nope'}: No such file or directory",
    )


def test_missing_runbooks_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(["--runbooks-dir", str(tmp_path / "none")], capsys)
    assert code == 2 and f"--runbooks-dir: {tmp_path / 'none'} is not a directory" in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--budget", "three", "--budget: 'three' is not RUNS/WINDOW like 3/1h"),
        ("--cooldown", "10 minutes", "'10 minutes' is not a duration like 100ms, 5s, 10m, 1h or 30d"),
        ("--listen", "localhost", "--listen: 'localhost' is not host:port"),
    ],
)
def test_bad_values_name_the_flag(
    runbooks_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    message: str,
) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    code, err = run(["--runbooks-dir", str(runbooks_dir), "--token-file", str(token), flag, value], capsys)
    assert code == 2 and message in err


def test_serve_runs_as_a_process_and_drains_on_sigterm(runbooks_dir: Path, tmp_path: Path) -> None:
    """The real entry point: listens, accepts an alert, and on SIGTERM finishes it before exiting 0."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "token").write_text("proc-token")
    log_path = tmp_path / "alerts.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "remediation.receiver.server", "--store", "memory", "--launcher", "log",
         "--listen", f"127.0.0.1:{port}", "--runbooks-dir", str(runbooks_dir),
         "--token-file", str(tmp_path / "token"), "--alert-log", str(log_path)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "remediation serve did not start"
                time.sleep(0.1)
        response = httpx.post(f"{url}/alerts", content=body(make_payload(make_alert())),
                              headers={"Authorization": "Bearer proc-token"})  # fmt: skip
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert [json.loads(line)["outcome"] for line in log_path.read_text().splitlines()] == ["started"]
    assert "proc-token" not in stderr
