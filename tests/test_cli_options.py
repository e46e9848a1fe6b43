"""Options every command shares: -q, -v, the log file."""

from __future__ import annotations

from pathlib import Path

from conftest import Workspace


def test_quiet_apply_shows_the_result_and_logs_the_narrative(ws: Workspace, tmp_path: Path):
    log = tmp_path / "apply.log"
    r = ws.cli("-q", "--log", log, "apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "[1/14]" not in r.out and "Plan:" not in r.out  # neither the plan nor the steps
    assert "Applied Q241656 to site DEMO" in r.out and "PASSED" in r.out
    text = log.read_text()
    assert "[14/14] reset site" in text  # what -q kept off the terminal is in the log
    assert '"event": "committed"' in text  # and the debug detail: every journal event
    assert "Log:" not in r.err  # -q: not even the log's path
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_verbose_shows_debug_detail_and_every_logged_command_names_its_log(ws: Workspace, command_logs: Path):
    r = ws.cli("-v", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "debug: deployer:" in r.err
    line = next(x for x in r.err.splitlines() if x.startswith("Log: "))
    path = Path(line[5:])
    assert path.is_file() and command_logs in path.parents
    assert "Plan: 14 actions" in path.read_text()


def test_quiet_and_verbose_together_are_refused(ws: Workspace):
    r = ws.cli("-q", "-v", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2 and "contradict" in r.err


def test_no_log_writes_none(ws: Workspace, tmp_path: Path):
    r = ws.cli("--no-log", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0 and "Log:" not in r.err


def test_an_unwritable_log_is_a_warning_not_a_failure(ws: Workspace, tmp_path: Path):
    (tmp_path / "file").write_text("x")
    r = ws.cli("--log", tmp_path / "file" / "sub.log", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "warning: no log written" in r.err
