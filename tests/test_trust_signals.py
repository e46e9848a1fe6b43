"""Signal matrix: SIGHUP (the operator's SSH session drops), SIGTERM (a supervisor), SIGINT
(Ctrl-C) and SIGPIPE (the reader of the output went away) delivered to `deployer` itself at
every action boundary of an apply and of a rollback, in-process (a fail point's callback
signals this very process, as the kernel would). After each, the site is fully patched or
byte-identical to before, no lock is left, and a plain `apply` (no --break-lock) works."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from conftest import Workspace
from deployer import failpoints

ACTIONS = 19  # the whole article's playbook on DEMO
CANCELLING = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
# the boundary before each action, and the one after the last (the run is verifying)
APPLY_BOUNDARIES = [f"apply.action.{n}.before" for n in range(1, ACTIONS + 1)] + ["apply.verify"]


def _apply(ws: Workspace):
    return ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)


def _send(*sigs: signal.Signals):
    def callback(name: str) -> None:
        for sig in sigs:
            os.kill(os.getpid(), sig)
    return callback


@pytest.fixture(scope="module")
def reference(workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    ws = Workspace(tmp_path_factory.mktemp("sigref") / "ws")
    shutil.copytree(workspace_template, ws.path, symlinks=True)
    before = ws.state()
    assert _apply(ws).code == 0
    return before, ws.state()


def _settled(ws: Workspace) -> list[str]:
    """Why a plain apply would refuse: a lock, or a run nobody finished."""
    problems = []
    if (ws.server("DEMOSRV") / ".deployer" / "lock").exists():
        problems.append("a lock was left")
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    problems += [f"run {r['run']} is {r['state']}" for r in runs if r["state"] in ("interrupted", "rollback_failed")]
    return problems


def test_every_signal_at_every_apply_boundary(workspace_template: Path, tmp_path: Path, reference,
                                              capsys: pytest.CaptureFixture):
    before, after = reference
    tried, outcomes, problems = 0, {"rolled back": 0, "patched": 0}, []
    for sig in CANCELLING:
        for point in APPLY_BOUNDARIES:
            ws = Workspace(tmp_path / f"{sig.name}-{point}")
            shutil.copytree(workspace_template, ws.path, symlinks=True)
            failpoints.reset()
            failpoints.arm(point, "call", _send(sig))
            r = _apply(ws)
            failpoints.reset()
            tried += 1
            state = ws.state()
            where = f"{sig.name} at {point}"
            if r.code == 1 and state == before:
                outcomes["rolled back"] += 1
                if f"interrupted ({sig.name})" not in r.err:
                    problems.append(f"{where}: the failure does not say which signal: {r.err[-300:]}")
            elif r.code == 0 and state == after:
                outcomes["patched"] += 1
            else:
                problems.append(f"{where}: exit {r.code}, site neither before nor after:\n{r.text[-800:]}")
                continue
            problems += [f"{where}: {p}" for p in _settled(ws)]
            again = _apply(ws)
            if again.code != 0 or ws.state() != after:
                problems.append(f"{where}: a plain apply afterwards failed (exit {again.code}): {again.err[-300:]}")
    with capsys.disabled():
        print(f"\n{tried} signal points tried in apply ({len(CANCELLING)} signals x {len(APPLY_BOUNDARIES)} "
              f"boundaries): {outcomes}")
    assert not problems, "\n".join(problems)
    # a signal at a boundary takes effect at the next action; once the last has begun the run completes
    assert outcomes["rolled back"] == len(CANCELLING) * (ACTIONS - 1)


def test_sigpipe_at_every_apply_boundary_is_ignored_even_when_the_parent_left_it_fatal(
        workspace_template: Path, tmp_path: Path, reference, capsys: pytest.CaptureFixture):
    """A shell may start deployer with SIGPIPE at its default action (terminate); a run must
    not die half-way because a reader went away: deployer ignores it and its writes fail
    with EPIPE instead, which the console renderer survives."""
    _, after = reference
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(workspace_template, ws.path, symlinks=True)
    points = [f"apply.action.{n}.{w}" for n in range(1, ACTIONS + 1) for w in ("before", "after")] + ["apply.verify"]
    for point in points:
        failpoints.arm(point, "call", _send(signal.SIGPIPE))
    previous = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        r = _apply(ws)
    finally:
        signal.signal(signal.SIGPIPE, previous)
    hit = [p for p in failpoints.hits() if p in points]
    with capsys.disabled():
        print(f"\n{len(hit)} SIGPIPE points tried in one apply")
    assert len(hit) == len(points)
    assert r.code == 0, r.text
    assert ws.state() == after
    assert _settled(ws) == []


def test_every_signal_at_every_rollback_boundary_cannot_cut_it_short(workspace_template: Path, tmp_path: Path,
                                                                    reference, capsys: pytest.CaptureFixture):
    before, after = reference
    ws = Workspace(tmp_path / "ws")
    shutil.copytree(workspace_template, ws.path, symlinks=True)
    assert _apply(ws).code == 0
    points = [f"undo.action.{n}.before" for n in range(1, ACTIONS + 1)]
    for point in points:
        failpoints.arm(point, "call", _send(signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE))
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    hit = [p for p in failpoints.hits() if p in points]
    with capsys.disabled():
        print(f"\n{len(hit) * 4} signal points tried in one rollback (4 signals x {len(hit)} boundaries)")
    assert len(hit) == ACTIONS
    assert r.code == 0, r.text
    for sig in CANCELLING:
        assert r.out.count(f"{sig.name} received: the rollback finishes first") == ACTIONS
    assert ws.state() == before
    assert _settled(ws) == []
    failpoints.reset()
    again = _apply(ws)
    assert again.code == 0, again.text
    assert ws.state() == after


def test_sighup_while_staging_rolls_back_like_sigterm(ws: Workspace):
    """The operator's SSH session drops while the hotfix files are uploaded: the staged files
    and backups are undone, as for SIGTERM, and no lock is left."""
    before = ws.state()
    failpoints.arm("apply.stage.3", "call", _send(signal.SIGHUP))
    r = _apply(ws)
    assert r.code == 1 and "interrupted (SIGHUP)" in r.err  # staging is a change of the site: rolled back
    assert ws.state() == before
    assert _settled(ws) == []
