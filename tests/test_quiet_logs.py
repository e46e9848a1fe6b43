"""-q prints the outcome line only, -v is readable, help/version/completion write no log, logs
are kept to a bound, and every report and saved plan is written with one mode (0644 under the
usual umask, as a shell's `>` would)."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import pytest

from conftest import Workspace, run_subprocess


def test_quiet_prints_only_the_outcome_line(ws: Workspace):
    r = ws.cli("-q", "plan", ws.playbook, "--site", "DEMO")
    assert r.code == 0 and r.out.splitlines() == [r.out.strip()] and r.out.startswith("Plan: 19 actions:"), r.out
    r = ws.cli("-q", "verify", ws.playbook, "--site", "DEMO")
    assert r.code == 3 and r.out == "Verification of Q241656 on site DEMO: 0 of 31 files match: FAILED\n"
    r = ws.cli("-q", "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0 and len(r.out.splitlines()) == 1 and r.out.startswith("Applied Q241656 to site DEMO"), r.out
    r = ws.cli("-q", "verify", ws.playbook, "--site", "DEMO")
    assert r.code == 0 and r.out == "Verification of Q241656 on site DEMO: 31 of 31 files match: PASSED\n"
    r = ws.cli("-q", "rollback", "--site", "DEMO", "--yes")
    assert r.code == 0 and len(r.out.splitlines()) == 1 and "rolled back" in r.out, r.out
    # errors still reach stderr
    r = ws.cli("-q", "plan", ws.playbook, "--site", "DEMOO")
    assert r.code == 2 and r.out == "" and "no site named 'DEMOO'" in r.err


def test_verbose_shows_journal_records_as_words(ws: Workspace):
    r = ws.cli("-v", "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    debug = [line for line in r.err.splitlines() if line.startswith("debug: deployer.journal")]
    assert debug and not any('{"' in line for line in debug), debug[:3]
    assert any(re.search(r": #1 run: actions 19, command apply", line) for line in debug), debug[:2]
    assert any(re.search(r"#\d+ backup: action 3, backup .*, server DEMOSRV, sha256 [0-9a-f]{12}\.\.\.", line)
               for line in debug)
    log = Path(next(line for line in r.err.splitlines() if line.startswith("Log: "))[5:])
    assert '"event": "backup"' in log.read_text()  # the file keeps the records whole


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("plan", "--help"), ("apply", "-h"), ("verify", "-h"),
                                  ("--version",), ("sendcode", "--help"), ("-v", "plan", "-h")])
def test_help_and_version_write_no_log(args, tmp_path: Path):
    state = tmp_path / "state"
    r = run_subprocess(*args, cwd=tmp_path, env={"XDG_STATE_HOME": str(state)})
    assert r.code == 0, r.text
    assert not (state / "deployer" / "logs").exists() or not any((state / "deployer" / "logs").iterdir())
    assert "Log:" not in r.err


def test_completion_writes_no_log(ws: Workspace, tmp_path: Path):
    state = tmp_path / "state"
    for words in ("deployer pl", "deployer plan --si", "deployer rollback --site DEMO "):
        env = {"XDG_STATE_HOME": str(state), "_DEPLOYER_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(len(words.split(" ")) - 1)}
        r = run_subprocess(cwd=ws.path, env=env)
        assert r.code == 0 and "Log:" not in r.err, r.text
    assert not (state / "deployer" / "logs").exists() or not any((state / "deployer" / "logs").iterdir())


def _old_logs(folder: Path, count: int, age_days: float = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        p = folder / f"2026010{1 + i // 100}T{i % 100:02d}0000-{1000 + i}-plan.log"
        p.write_text("old\n")
        when = time.time() - age_days * 86400 - (count - i)
        os.utime(p, (when, when))
        made.append(p)
    return made


def test_logs_are_kept_to_fifty_by_default_and_as_configured(ws: Workspace, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "state" / "deployer" / "logs"
    old = _old_logs(folder, 60)
    mine = folder / "notes.txt"
    mine.write_text("the operator's own file\n")
    assert ws.cli("plan", ws.playbook, "--site", "DEMO").code == 0
    left = sorted(p.name for p in folder.glob("*.log"))
    assert len(left) == 50 and left[0] == old[11].name  # the newest 50, the new log among them
    assert mine.exists()
    monkeypatch.setenv("DEPLOYER_LOG_KEEP", "5")
    assert ws.cli("plan", ws.playbook, "--site", "DEMO").code == 0
    assert len(list(folder.glob("*.log"))) == 5
    # by age: older than DEPLOYER_LOG_DAYS days goes, whatever the count
    monkeypatch.setenv("DEPLOYER_LOG_KEEP", "0")
    monkeypatch.setenv("DEPLOYER_LOG_DAYS", "7")
    recent = set(folder.glob("*.log"))
    aged = _old_logs(folder, 3, age_days=10)
    assert ws.cli("plan", ws.playbook, "--site", "DEMO").code == 0
    assert not any(p.exists() for p in aged) and recent <= set(folder.glob("*.log"))
    # a --log FILE is the operator's: never pruned, even in that folder
    own = folder / "20200101T000000-1-apply.log"
    r = ws.cli("--log", own, "plan", ws.playbook, "--site", "DEMO")
    assert r.code == 0 and own.exists()


def test_every_report_and_saved_plan_is_written_with_one_mode(ws: Workspace):
    previous = os.umask(0o022)
    try:
        out = ws.path / "out"
        out.mkdir()
        written = []
        for args, name in ((("plan", ws.playbook, "--site", "DEMO", "-o"), "plan.json"),
                           (("verify", ws.playbook, "--site", "DEMO", "-f", "html", "-o"), "verify.html"),
                           (("verify", ws.playbook, "--site", "DEMO", "-f", "junit", "-o"), "verify.xml"),
                           (("verify", ws.playbook, "--site", "DEMO", "-o"), "verify.txt"),
                           (("apply", ws.playbook, "--site", "DEMO", "--yes", "-f", "html", "-o"), "apply.html"),
                           (("apply", ws.playbook, "--site", "DEMO", "--yes", "-f", "json", "-o"), "apply.json"),
                           (("schema", "sites", "-o"), "sites.json")):
            r = ws.cli(*args, out / name)
            assert r.code in (0, 3), r.text
            written.append(out / name)
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
        assert set(modes.values()) == {"0o644"}, modes
    finally:
        os.umask(previous)


def test_quiet_on_a_fleet_prints_the_totals_and_only_the_sites_that_need_attention(tmp_path: Path):
    from conftest import copy_project, run_cli
    from deployer.simulator.fleet_lab import write_fleet_inventory

    base = copy_project(tmp_path)
    write_fleet_inventory(base / "sites.yaml", 3)
    assert run_cli("lab", "init", "--all", cwd=base).code == 0
    pb = base / "playbooks" / "q241656.yaml"
    assert run_cli("apply", pb, "--site", "SITE001,SITE002", "--yes", "--fleet-dir", base / "f", cwd=base).code == 0
    r = run_cli("-q", "verify", pb, "--all", cwd=base)
    assert r.code == 3
    lines = [line for line in r.out.splitlines() if line.strip()]
    assert lines[0].startswith("SITE003: ") and "FAILED" in lines[0]  # the one that needs attention
    assert lines[1].startswith("Fleet: 3 sites") and lines[2] == "  Files do not match: SITE003"
    assert len(lines) == 3 and "SITE001:" not in r.out
