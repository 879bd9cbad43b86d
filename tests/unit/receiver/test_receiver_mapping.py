"""Which runbook an alert starts and on which target."""

from __future__ import annotations

from pathlib import Path

from remediation.receiver.mapping import Target, load_index, parse_duration, runbook_params, target_of
from remediation.receiver.payload import Alert


def alert(**labels: str) -> Alert:
    return Alert(
        "firing",
        {"alertname": "APIHealthCheckFailed", **labels},
        {},
        "2026-11-26T06:00:00Z",
        "0001-01-01T00:00:00Z",
        "abc",
    )


def test_triggers_map_an_alert_to_its_runbook(runbooks_dir: Path) -> None:
    index = load_index(runbooks_dir)
    assert index.runbooks_for(alert()) == (["api-restart"], None)
    assert index.runbooks_for(alert(alertname="TrafficOverload")) == (["scale-out"], None)


def test_the_runbook_label_wins_over_triggers(runbooks_dir: Path) -> None:
    index = load_index(runbooks_dir)
    assert index.runbooks_for(alert(runbook="cache-flush-warm")) == (["cache-flush-warm"], None)


def test_unknown_runbook_label_and_unmapped_alert_are_problems(runbooks_dir: Path) -> None:
    index = load_index(runbooks_dir)
    names, problem = index.runbooks_for(alert(runbook="reboot-everything"))
    assert names == [] and "'reboot-everything' names no runbook" in str(problem)
    names, problem = index.runbooks_for(alert(alertname="DiskFull"))
    assert names == [] and "no runbook has a trigger for alert 'DiskFull'" in str(problem)


def test_a_broken_runbook_file_is_skipped_with_its_name(runbooks_dir: Path) -> None:
    (runbooks_dir / "broken.yaml").write_text("metadata: [not, a, mapping]\n", encoding="utf-8")
    (runbooks_dir / "dup.yaml").write_text("metadata: {name: scale-out}\n", encoding="utf-8")
    index = load_index(runbooks_dir)
    assert set(index.runbooks) == {"api-restart", "scale-out", "cache-flush-warm"}
    assert any("broken.yaml: skipped: metadata" in w for w in index.warnings)
    assert any("dup.yaml: metadata.name 'scale-out' already used" in w for w in index.warnings)


def test_target_comes_from_the_target_label_then_object_labels_then_the_runbook() -> None:
    assert target_of(alert(target="rollout/api"), "shorts", "api-restart") == Target(
        "shorts", "Rollout", "api"
    )
    assert target_of(alert(deployment="app", namespace="web"), "shorts", "x") == Target(
        "web", "Deployment", "app"
    )
    assert target_of(alert(), "shorts", "p0-incident") == Target("shorts", "", "p0-incident")
    assert Target("shorts", "Rollout", "api").key == "shorts/rollout/api"
    assert Target("shorts", "Rollout", "api").label_value == "shorts.rollout.api"
    assert len(Target("shorts", "Rollout", "x" * 100).label_value) <= 63


def test_only_declared_params_are_passed(runbooks_dir: Path) -> None:
    info = load_index(runbooks_dir).runbooks["api-restart"]
    params = runbook_params(info, alert(deployment="api", namespace="shorts", instance="10.0.0.1:80"))
    assert params == {"deployment": "api", "namespace": "shorts"}


def test_durations() -> None:
    assert [parse_duration(t) for t in ("100ms", "5s", "10m", "1.5h", "30d")] == [
        0.1,
        5,
        600,
        5400,
        2_592_000,
    ]


def test_the_projects_own_runbooks_are_understood(runbooks_dir: Path) -> None:
    """The receiver reads runbooks/ without the executor's loader: every file must map cleanly."""
    project_runbooks = Path(__file__).resolve().parents[3] / "runbooks"
    index = load_index(project_runbooks)
    assert index.warnings == []
    assert {Path(info.file).stem for info in index.runbooks.values()} == set(index.runbooks)
    assert index.runbooks_for(alert())[0] == ["api-restart"]
