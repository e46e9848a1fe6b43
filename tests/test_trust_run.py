"""Trust, round 3, the run store: a run killed at each instant before its first change (run
folder made, plan.json empty or half-written, no journal, a torn first journal line, the
journal's first events, a backup folder made) is closed by `recover` and never blocks `apply`."""

from __future__ import annotations

import json
import shutil
import signal

import pytest

from conftest import Workspace, diff, run_subprocess

EARLY = ["run.create.folder", "run.create.plan.empty", "run.create.plan.partial", "run.create.plan.written",
         "apply.journal.run", "apply.journal.folders", "apply.backup.3"]


def _killed(ws: Workspace, point: str) -> None:
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": f"{point}=kill"})
    assert r.code == -signal.SIGKILL, f"{point}: {r.text[-500:]}"


def _run_folder(ws: Workspace):
    [run] = (ws.server("DEMOSRV") / ".deployer" / "runs").iterdir()
    return run


def _recovered_then_applied(ws: Workspace, before, what: str) -> list[str]:
    problems = []
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    if rec.code != 1 or "rolled back" not in rec.out or "Traceback" in rec.text:
        return [f"{what}: recover exited {rec.code}: {rec.text[-600:]}"]
    if ws.state() != before:
        problems.append(f"{what}: not the before state: {diff(before[0], ws.state()[0])[:3]}")
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    if [x["state"] for x in runs] != ["rolled_back"]:
        problems.append(f"{what}: journal states {runs}")
    again = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    if again.code != 0 or "Nothing to recover" not in again.out:
        problems.append(f"{what}: a second recover found more to do: {again.text[-300:]}")
    leftovers = [p for p in ws.site.rglob("*~dpl*") if ".deployer" not in p.parts]
    if leftovers:
        problems.append(f"{what}: temporary files left: {leftovers}")
    app = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    if app.code != 0:
        problems.append(f"{what}: apply after recover exited {app.code}: {app.text[-300:]}")
    return problems


def test_a_kill_before_the_first_change_is_closed_by_recover(workspace_template, tmp_path):
    problems = []
    before = None
    for i, point in enumerate(EARLY):
        ws = Workspace(tmp_path / f"k{i}")
        shutil.copytree(workspace_template, ws.path, symlinks=True)
        before = before or ws.state()
        _killed(ws, point)
        nxt = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        if nxt.code != 2 or "deployer recover" not in nxt.err:
            problems.append(f"{point}: apply did not point to recover: {nxt.text[-300:]}")
        problems += _recovered_then_applied(ws, before, point)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("journal", [b"", b'{"event": "run", "seq": 1, "ts": "2026-'])
def test_an_unflushed_plan_with_an_empty_or_torn_journal_is_nothing_done(ws: Workspace, journal: bytes):
    before = ws.state()
    _killed(ws, "run.create.plan.partial")
    run = _run_folder(ws)
    (run / "plan.json").write_bytes(b'{"actions": [{"kind": "rep')  # the bytes that reached the disk
    (run / "journal.jsonl").write_bytes(journal)
    problems = _recovered_then_applied(ws, before, repr(journal))
    assert not problems, "\n".join(problems)


def test_an_unreadable_plan_after_a_change_stays_an_error(ws: Workspace):
    """The other side: a journal that says an action began (or backups that say the run got
    far) keeps the unreadable plan an error, exit 4, the site untouched by recover."""
    _killed(ws, "apply.action.4.after")
    run = _run_folder(ws)
    (run / "plan.json").write_bytes(b"")
    state = ws.state()
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 4 and "the plan of run" in r.err, r.text
    (run / "journal.jsonl").write_bytes(b"")  # and the journal lost too: the backups still tell
    r = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 4 and "the run made backups" in r.err, r.text
    assert ws.state() == state
