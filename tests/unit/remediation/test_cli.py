"""The `remediation` command as a user meets it: exit codes, messages, --param, --profile, --step, --from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remediation.cli import main

from .conftest import Script, make_registry
from .helpers import write


@pytest.fixture
def books(tmp_path: Path) -> Path:
    directory = tmp_path / "runbooks"
    write(
        directory,
        [
            {
                "id": "look",
                "action": "t.step",
                "with": {"key": "look", "value": "${params.count}"},
                "on": {"failure": "abort"},
            },
            {
                "id": "change",
                "action": "t.change",
                "with": {"key": "change", "value": "${steps.look.output.key}"},
            },
            {"id": "verify", "action": "t.step", "with": {"key": "verify"}, "on": {"failure": "escalate"}},
        ],
        name="fix-it",
        params={
            "count": {"type": "integer", "default": 2},
            "force": {"type": "boolean", "default": False},
            "hosts": {"type": "list", "default": ["a"]},
        },
        guards={"cooldown": "10m", "lock": "thing/${params.count}"},
        escalate=[{"action": "t.step", "with": {"key": "page", "value": "${run.failures}"}}],
    )
    write(
        directory,
        [
            {"id": "approve", "action": "manual.approve", "with": {"prompt": "go on?"}},
            {"id": "after", "action": "t.step", "with": {"key": "after"}},
        ],
        name="gate",
    )
    write(
        directory,
        [{"id": "h", "action": "http.check", "with": {"url": "${profile.api_url}/health"}}],
        name="needs-profile",
    )
    return directory


def cli(script: Script, books: Path, tmp_path: Path, *argv: str) -> int:
    command, rest = argv[0], list(argv[1:])
    extra = ["--runbooks-dir", str(books)] if command in ("run", "plan") else []
    if command == "run":
        extra += ["--state-dir", str(tmp_path / "state")]
    return main([command, *rest, *extra], registry=make_registry(script))


def test_run_succeeds_with_exit_0_and_prints_progress(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "fix-it") == 0
    out = capsys.readouterr().out
    assert "✔ look" in out and "✔ verify" in out and "SUCCESS (exit 0)" in out
    assert [k for k, _ in script.calls] == ["look", "change", "verify"]
    assert script.calls[1][1]["value"] == "look"


def test_failed_run_exits_1(script, books, tmp_path, capsys):
    script.failures["look"] = ["perm"]
    assert cli(script, books, tmp_path, "run", "fix-it") == 1
    assert "FAILED (exit 1): step 'look' failed: look: permanent trouble" in capsys.readouterr().out


def test_escalated_run_exits_3(script, books, tmp_path, capsys):
    script.failures["verify"] = ["perm"]
    assert cli(script, books, tmp_path, "run", "fix-it") == 3
    assert script.calls[-1][1]["value"] == ["verify"]


def test_guard_refusal_exits_4(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "fix-it") == 0
    assert cli(script, books, tmp_path, "run", "fix-it") == 4
    assert "REFUSED (exit 4): cooldown: fix-it ran on thing/2" in capsys.readouterr().out
    assert cli(script, books, tmp_path, "run", "fix-it", "--param", "count=3") == 0  # another target


def test_denied_approval_exits_4(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "gate") == 4  # stdin is not a terminal and no --yes
    assert "approval denied" in capsys.readouterr().out
    assert script.calls == []
    assert cli(script, books, tmp_path, "run", "gate", "--yes") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--param", "count=two"], "--param: count: 'two' is not an integer (count is a integer)"),
        (["--param", "cuont=2"], "runbook 'fix-it' has no parameter 'cuont' (did you mean 'count'?)"),
        (["--param", "force=maybe"], "'maybe' is not a boolean (write true or false)"),
        (["--param", "count"], "expected NAME=VALUE"),
        (["--step", "verfy"], "runbook 'fix-it' has no step 'verfy' (did you mean 'verify'?)"),
    ],
)
def test_bad_run_input_exits_2_with_a_clear_message(script, books, tmp_path, capsys, args, message):
    assert cli(script, books, tmp_path, "run", "fix-it", *args) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert "Traceback" not in out + err
    assert script.calls == []


def test_params_are_typed(script, books, tmp_path):
    assert cli(script, books, tmp_path, "run", "fix-it", "--param", "count=7", "--param", "hosts=x,y") == 0
    assert script.calls[0][1]["value"] == 7


def test_unknown_runbook_name_suggests_the_closest(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "fix-t") == 2
    assert "no runbook named 'fix-t' (did you mean 'fix-it'?)" in capsys.readouterr().err


def test_a_runbook_can_be_given_by_path(script, books, tmp_path):
    assert (
        main(
            ["run", str(books / "fix-it.yaml"), "--state-dir", str(tmp_path / "s")],
            registry=make_registry(script),
        )
        == 0
    )


def test_profile_is_validated(script, books, tmp_path, capsys):
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "api_url: not-a-url\napi_uri: http://x\npostgres_dsn: host=db user=app password=hunter2\n"
    )
    assert cli(script, books, tmp_path, "run", "needs-profile", "--profile", str(profile)) == 2
    err = capsys.readouterr().err
    assert f"{profile}:1: api_url: 'not-a-url' does not match" in err
    assert "unknown field 'api_uri' (did you mean 'api_url'?)" in err
    assert "the DSN contains a password (remove it; set PGPASSWORD in the environment instead)" in err
    assert "hunter2" not in err  # the password itself is never echoed


def test_missing_profile_key_exits_2_before_running(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "needs-profile") == 2
    assert "api_url is not set, but step 'h' needs it" in capsys.readouterr().err
    profile = tmp_path / "profile.yaml"
    profile.write_text("api_url: http://127.0.0.1:1\n")
    assert cli(script, books, tmp_path, "run", "needs-profile", "--profile", str(profile)) == 0
    assert script.calls[0][1]["url"] == "http://127.0.0.1:1/health"


def test_json_output_is_the_result(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "run", "fix-it", "--output", "json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "success" and [s["id"] for s in result["steps"]] == [
        "look",
        "change",
        "verify",
    ]
    assert Path(result["record"]).exists()


def test_single_step_and_resume(script, books, tmp_path, capsys):
    script.failures["change"] = ["perm"]
    assert cli(script, books, tmp_path, "run", "fix-it") == 3  # a failed change escalates by default
    script.calls.clear()
    # resume at the failed step: `look`'s output comes from the last record of fix-it
    assert cli(script, books, tmp_path, "run", "fix-it", "--from", "change", "--param", "count=5") == 0
    assert [k for k, _ in script.calls] == ["change", "verify"]
    assert script.calls[0][1]["value"] == "look"
    script.calls.clear()
    assert cli(script, books, tmp_path, "run", "fix-it", "--step", "verify") == 0
    assert [k for k, _ in script.calls] == ["verify"]


def test_plan_shows_every_step_and_executes_nothing(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "plan", "fix-it", "--param", "count=4") == 0
    out = capsys.readouterr().out
    assert script.calls == []
    assert not (tmp_path / "state").exists()
    assert "guards: target thing/4, cooldown 10m" in out
    assert "[CHANGES] change: t.change" in out
    assert "would t.change with {'key': 'change', 'value': '<steps.look.output.key>'}" in out
    assert "would t.step with {'key': 'look', 'value': 4}" in out
    assert "Nothing was executed." in out


def test_plan_json(script, books, tmp_path, capsys):
    assert cli(script, books, tmp_path, "plan", "needs-profile", "--output", "json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["executed"] is False and plan["unresolved_profile"] == ["api_url"]


def test_escalate_only_runs_just_the_escalation(script, books, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REMEDIATION_ESCALATION_REASON", "receiver guard: budget exhausted")
    assert cli(script, books, tmp_path, "run", "fix-it", "--escalate-only") == 3
    assert [k for k, _ in script.calls] == ["page"]
    assert "receiver guard: budget exhausted" in capsys.readouterr().out


def test_trigger_from_the_environment(script, tmp_path, monkeypatch):
    books = tmp_path / "rb"
    write(
        books,
        [{"id": "a", "action": "t.step", "with": {"key": "a", "value": "${trigger.labels.service}"}}],
        name="labelled",
    )
    monkeypatch.setenv("REMEDIATION_TRIGGER", json.dumps({"labels": {"service": "api"}, "annotations": {}}))
    assert (
        main(
            ["run", "labelled", "--runbooks-dir", str(books), "--state-dir", str(tmp_path / "s")],
            registry=make_registry(script),
        )
        == 0
    )
    assert script.calls[0][1]["value"] == "api"


def test_actions_lists_the_registry(script, capsys):
    assert main(["actions"], registry=make_registry(script)) == 0
    out = capsys.readouterr().out
    assert "kubernetes.scale  (mutating)" in out and "* by: integer" in out


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: RUNBOOK" in capsys.readouterr().err


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for line in ("0  success", "1  the run failed", "2  invalid input", "3  the run escalated", "4  refused"):
        assert line in out


def test_progress_on_a_terminal_rewrites_the_running_line(registry, script, tmp_path):
    import io

    from remediation.executor import Executor
    from remediation.progress import TextReporter

    from .helpers import build, run

    book = build(registry, [{"id": "a", "action": "t.step", "with": {"key": "a", "log": "working"}}])
    tty, plain = io.StringIO(), io.StringIO()
    run(Executor(registry, state=tmp_path / "s1", reporter=TextReporter(tty, tty=True)), book)
    run(Executor(registry, state=tmp_path / "s2", reporter=TextReporter(plain, tty=False)), book)
    assert "… a" in tty.getvalue() and "\r\x1b[K" in tty.getvalue()
    assert "\x1b" not in plain.getvalue() and "… a" not in plain.getvalue()
    for text in (tty.getvalue(), plain.getvalue()):
        assert "      a: working" in text and "✔ a" in text and "SUCCESS (exit 0)" in text


def test_an_unwritable_state_directory_is_an_error_not_a_traceback(script, books, tmp_path, capsys):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    code = main(
        ["run", "fix-it", "--runbooks-dir", str(books), "--state-dir", str(blocker / "state")],
        registry=make_registry(script),
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert f"error: {blocker}" in err and "Traceback" not in out + err
    assert script.calls == []
