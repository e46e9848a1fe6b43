"""Backup retention: `deployer prune` removes old runs' backups from every server, never those
of the last committed run or of an unfinished one; `runs` shows the space each run holds."""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import Workspace, diff, run_subprocess, snapshot
from deployer.run import prune
from deployer.run.journal import RunInfo

SERVERS = ("DEMOSRV", "DEMOLOG1", "DEMOAXP1")


def _apply(ws: Workspace) -> None:
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0 and "Applied" in r.out, r.text


def _age_a_file(ws: Workspace) -> None:
    """Make the next apply replace something again (a new committed run on top of the last)."""
    f = next(p for p in ws.server("DEMOSRV").rglob("*") if p.name.casefold() == "pcmwin16.exe"
             and "client.src" in str(p).casefold())
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - 86_400 * 10**9))


def _runs(ws: Workspace) -> list[dict]:
    r = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    return json.loads(r.out)


def _run_dir(ws: Workspace, server: str, run: str) -> Path | None:
    state = next((p for p in ws.server(server).iterdir() if p.name.casefold() == ".deployer"), None)
    if state is None:
        return None
    runs = next((p for p in state.iterdir() if p.name.casefold() == "runs"), None)
    return next((p for p in runs.iterdir() if p.name == run), None) if runs else None


def _backup_bytes_on_disk(ws: Workspace, run: str) -> dict[str, int]:
    out = {}
    for s in SERVERS:
        d = _run_dir(ws, s, run)
        backup = next((p for p in d.iterdir() if p.name.casefold() == "backup"), None) if d else None
        if backup is not None:
            out[s] = sum(p.stat().st_size for p in backup.rglob("*") if p.is_file())
    return out


def _three_runs(ws: Workspace) -> list[str]:
    """Three runs: committed, committed (replacing a file aged since), rolled back. The second
    is the last committed run."""
    _apply(ws)
    _age_a_file(ws)
    _apply(ws)
    _age_a_file(ws)
    _apply(ws)
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    runs = _runs(ws)
    assert [x["state"] for x in runs] == ["committed", "committed", "rolled_back"]
    return [x["run"] for x in runs]


def test_runs_shows_the_space_each_run_holds(ws: Workspace):
    first, second, third = _three_runs(ws)
    runs = {x["run"]: x for x in _runs(ws)}
    for run in (first, second, third):
        on_disk = _backup_bytes_on_disk(ws, run)
        assert runs[run]["backup_servers"] == on_disk and runs[run]["backup_bytes"] == sum(on_disk.values())
    assert "DEMOSRV" in runs[first]["backup_servers"] and runs[first]["backup_bytes"] > 0
    assert "DEMOSRV" in runs[second]["backup_servers"]  # and, with the whole article, the logon servers' Logon.srv copies
    text = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory).out
    assert "Backups" in text and re.search(r"\d+\.\d MB on \d servers?", text)


def test_prune_keeps_the_last_committed_run_and_removes_the_rest(ws: Workspace):
    first, second, third = _three_runs(ws)
    kept = _backup_bytes_on_disk(ws, second)
    site_before = ws.state()
    everything_before = snapshot(ws.site, include_state=True)

    r = ws.cli("prune", "--site", "DEMO", "--keep", "0", "--dry-run", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "would remove" in r.out and "Nothing was changed" in r.out
    assert diff(everything_before, snapshot(ws.site, include_state=True)) == []  # not even the lock was written

    freed = sum(_backup_bytes_on_disk(ws, first).values()) + sum(_backup_bytes_on_disk(ws, third).values())
    r = ws.cli("prune", "--site", "DEMO", "--yes", "--keep", "0", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "kept: the last committed run" in r.out and f"Pruned 2 runs: {prune.human(freed)} freed" in r.out
    assert _backup_bytes_on_disk(ws, first) == {} and _backup_bytes_on_disk(ws, third) == {}
    assert _backup_bytes_on_disk(ws, second) == kept and kept
    for s in ("DEMOLOG1", "DEMOAXP1"):  # nothing of a pruned run is left on the other servers
        assert _run_dir(ws, s, first) is None
    assert _run_dir(ws, "DEMOSRV", first) is not None  # the journal and plan stay: the history is kept
    runs = {x["run"]: x for x in _runs(ws)}
    assert [runs[x]["state"] for x in (first, second, third)] == ["committed", "committed", "rolled_back"]
    assert runs[first]["pruned"] and runs[third]["pruned"] and not runs[second]["pruned"]
    assert ws.state() == site_before  # the site's own files and services are untouched
    assert not [p for p in ws.site.rglob("*") if p.name.casefold() == "lock"]  # the site lock was released

    # a pruned run cannot be rolled back, and asking touches nothing
    r = ws.cli("rollback", "--site", "DEMO", first, "--yes", "-i", ws.inventory)
    assert r.code == 2 and "backups were pruned" in r.err, r.text
    assert ws.state() == site_before
    # the last committed run still can (forced: the file aged before run 3 differs from run 2's result)
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "--force", "-i", ws.inventory)
    assert r.code == 0 and f"Run {second} rolled back" in r.out, r.text

    r = ws.cli("prune", "--site", "DEMO", "--yes", "--keep", "0", "-i", ws.inventory)
    assert r.code == 0 and "pruned already" in r.out


def test_keep_and_older_than(ws: Workspace):
    first, second, third = _three_runs(ws)
    r = ws.cli("prune", "--site", "DEMO", "--yes", "--keep", "1", "--older-than", "1d", "-i", ws.inventory)
    assert r.code == 0 and "younger than 1 day" in r.out and "Nothing to prune" in r.out, r.text
    r = ws.cli("prune", "--site", "DEMO", "--yes", "--keep", "2", "-i", ws.inventory)
    assert r.code == 0 and "Pruned 1 run" in r.out, r.text
    assert _backup_bytes_on_disk(ws, first) == {} and _backup_bytes_on_disk(ws, third)


def test_an_unfinished_run_keeps_its_backups(ws: Workspace):
    _apply(ws)
    _age_a_file(ws)
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": "apply.action.3.after=kill"})
    assert r.code != 0
    runs = _runs(ws)
    assert [x["state"] for x in runs] == ["committed", "interrupted"]
    r = ws.cli("prune", "--site", "DEMO", "--yes", "--keep", "0", "-i", ws.inventory, "--break-lock")
    assert r.code == 0, r.text
    assert "unfinished (interrupted): recover needs its backups" in r.out
    assert _backup_bytes_on_disk(ws, runs[1]["run"])
    r = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code in (0, 1), r.text  # finished or rolled back, with the backups it needed


@pytest.mark.parametrize("args, message", [
    ((), "say what to keep: --keep N"),
    (("--older-than", "30 days"), "is not an age"),
    (("--keep", "-1"), "is negative"),
])
def test_bad_prune_arguments_are_refused(ws: Workspace, args: tuple[str, ...], message: str):
    before = snapshot(ws.site, include_state=True)
    r = ws.cli("prune", "--site", "DEMO", "-i", ws.inventory, *args)
    assert r.code == 2 and message in r.err, r.text
    assert diff(before, snapshot(ws.site, include_state=True)) == []


def _info(run: str, state: str, days_ago: float, now: datetime) -> RunInfo:
    started = (now - timedelta(days=days_ago)).isoformat()
    return RunInfo(run, state, "Q241656", "apply", started, None, "op@host", 1)


def test_the_choice_by_age_and_count():
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    runs = [_info("r1", "committed", 90, now), _info("r2", "rolled_back", 60, now), _info("r3", "rollback_failed", 45, now),
            _info("r4", "committed", 40, now), _info("r5", "committed", 10, now), _info("r6", "committed", 1, now)]
    spaces = {r.run: prune.RunSpace(r.run, {"SRV": 100}) for r in runs}
    spaces["r2"] = prune.RunSpace("r2", {}, pruned="2026-10-01")
    chosen = {c.run.run: c for c in prune.choose(runs, spaces, keep=None, older_than=timedelta(days=30), now=now)}
    assert [r for r, c in chosen.items() if c.remove] == ["r1", "r4"]
    assert chosen["r2"].why == "pruned already" and "unfinished" in chosen["r3"].why
    assert chosen["r5"].why == "younger than 30 days" and "last committed" in chosen["r6"].why
    chosen = {c.run.run: c for c in prune.choose(runs, spaces, keep=3, older_than=None, now=now)}
    assert [r for r, c in chosen.items() if c.remove] == ["r1"]  # r4, r5, r6 are the newest 3
    assert prune.parse_age("2w") == timedelta(weeks=2) and prune.parse_age("12h") == timedelta(hours=12)


def test_keep_more_than_there_are_runs_keeps_every_run():
    """`--keep 5` with three runs: all three are among the newest five (a negative slice once
    dropped the oldest from them and pruned it)."""
    now = datetime(2026, 11, 1, tzinfo=timezone.utc)
    runs = [_info("r1", "committed", 90, now), _info("r2", "rolled_back", 60, now), _info("r3", "committed", 1, now)]
    spaces = {r.run: prune.RunSpace(r.run, {"SRV": 100}) for r in runs}
    for keep in (3, 4, 5, 10**9):
        for older_than in (None, timedelta(days=30)):
            chosen = prune.choose(runs, spaces, keep=keep, older_than=older_than, now=now)
            assert [c.run.run for c in chosen if c.remove] == [], (keep, older_than)
            assert chosen[0].why == f"one of the newest {keep}" and chosen[1].why == f"one of the newest {keep}"
    # keep 0 and keep 1 with an age: only old runs beyond the newest go, never the last committed
    chosen = prune.choose(runs, spaces, keep=0, older_than=None, now=now)
    assert [c.run.run for c in chosen if c.remove] == ["r1", "r2"]
    chosen = prune.choose(runs, spaces, keep=1, older_than=timedelta(days=70), now=now)
    assert [c.run.run for c in chosen if c.remove] == ["r1"] and chosen[1].why == "younger than 70 days"


def test_prune_keep_beyond_the_runs_there_are_removes_nothing(ws: Workspace):
    first, second, third = _three_runs(ws)
    held = {run: _backup_bytes_on_disk(ws, run) for run in (first, second, third)}
    for args in (("--dry-run",), ()):
        r = ws.cli("prune", "--site", "DEMO", "--keep", "5", "-i", ws.inventory, *args)
        assert r.code == 0, r.text
        assert "Nothing to prune" in r.out and "would remove" not in r.out and "removed" not in r.out, r.out
        assert r.out.count("kept: one of the newest 5") == 2  # the third is the last committed run
    assert {run: _backup_bytes_on_disk(ws, run) for run in (first, second, third)} == held
    assert not any(x["pruned"] for x in _runs(ws))

