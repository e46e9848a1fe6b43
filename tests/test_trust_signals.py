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

from conftest import Workspace, copy_workspace
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


# The boundaries a sample must meet: the first, each kind of action a boundary leads into
# (stop, replace, start, reset_site, wait_for_replication, force_client_update) and out of, a
# boundary on the second server (17-19: the workstation), the last boundary that rolls back (18),
# the last action (19) and the verification after it. The plan (the whole article on DEMO):
#   1-2 stop, 3-11 replace, 12-13 start, 14 reset_site, 15 wait_for_replication,
#   16 force_client_update, 17 stop, 18 replace, 19 start (DEMOWKS1), then verify.
# Replace-to-replace boundaries 5-11 repeat 4's kind and are met in the full matrix only.
EDGES = ["apply.action.1.before", "apply.action.18.before", "apply.action.19.before", "apply.verify"]
KINDS_MET = [f"apply.action.{n}.before" for n in (2, 3, 4, 12, 13, 14, 15, 16, 17)]


def sampled_apply_points() -> list[tuple[signal.Signals, str]]:
    """Every signal at every edge, and each other kind of boundary once, the signals taking
    turns (so each signal meets a third of them): 21 of the 60 points, the same every run."""
    points = [(sig, point) for point in EDGES for sig in CANCELLING]
    points += [(CANCELLING[i % len(CANCELLING)], point) for i, point in enumerate(KINDS_MET)]
    return points


def _signal_matrix(workspace_template: Path, tmp_path: Path, reference, capsys, points) -> None:
    before, after = reference
    tried, outcomes, problems = 0, {"rolled back": 0, "patched": 0}, []
    for sig, point in points:
        ws = Workspace(copy_workspace(workspace_template, tmp_path / f"{sig.name}-{point}"))
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
        print(f"\n{tried} signal points tried in apply: {outcomes}")
    assert not problems, "\n".join(problems)
    # a signal at a boundary takes effect at the next action; once the last has begun the run completes
    rolls_back = [(sig, p) for sig, p in points if p.startswith("apply.action.") and int(p.split(".")[2]) < ACTIONS]
    assert outcomes["rolled back"] == len(rolls_back)


def test_the_sample_meets_every_kind_of_boundary_and_every_signal_meets_the_edges():
    points = sampled_apply_points()
    assert {p for _, p in points} >= set(EDGES) | set(KINDS_MET)
    assert all((sig, p) in points for p in EDGES for sig in CANCELLING)
    assert len(points) == len(set(points)) == len(EDGES) * len(CANCELLING) + len(KINDS_MET)


@pytest.mark.slow  # started first (tests/conftest.py)
@pytest.mark.parametrize("sig", CANCELLING, ids=lambda s: s.name)
def test_each_signal_at_a_sample_of_apply_boundaries(workspace_template: Path, tmp_path: Path, reference,
                                                     capsys: pytest.CaptureFixture, sig: signal.Signals):
    """The signal matrix, sampled deterministically (sampled_apply_points): each signal at the
    first boundary, at the last that rolls back, at the last action and at the verification,
    and every kind of boundary met by one signal or another (one test per signal, so that xdist
    workers share them). The whole matrix (3 signals x 20 boundaries) is
    test_every_signal_at_every_apply_boundary, run with -m full."""
    _signal_matrix(workspace_template, tmp_path, reference, capsys, [p for p in sampled_apply_points() if p[0] == sig])


@pytest.mark.full
def test_every_signal_at_every_apply_boundary(workspace_template: Path, tmp_path: Path, reference,
                                              capsys: pytest.CaptureFixture):
    _signal_matrix(workspace_template, tmp_path, reference, capsys,
                   [(sig, point) for sig in CANCELLING for point in APPLY_BOUNDARIES])


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
