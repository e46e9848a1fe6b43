"""Crash safety: `deployer apply` is killed with SIGKILL at every action boundary, in the
middle of a file copy, while verifying or committing, and in the middle of its own
rollback; the next command notices, and `deployer recover` leaves the site byte-identical
(write times included) to fully-before or fully-after, services consistent."""

from __future__ import annotations

import json
import shutil
import signal
from collections import Counter

import pytest

from conftest import Workspace, copy_workspace, diff, run_subprocess, services, snapshot

ACTIONS = 19  # the article to the end: replication, client update, the workstation (16-19)
REPLACES = [*range(3, 12), 18]  # 18: Pcmsvc32.exe on the workstation DEMOWKS1

KILL_POINTS = (
    [f"apply.action.{n}.{w}" for n in range(1, ACTIONS + 1) for w in ("before", "after")]
    + [f"apply.stage.{n}{w}" for n in REPLACES for w in ("", ".midcopy", ".written")]
    + ["apply.verify", "apply.commit"]
    # a failure, then a crash in the middle of undoing it
    + [f"apply.action.12.after=raise;undo.action.{n}.before" for n in (12, 9, 4, 1)]
)


@pytest.fixture(scope="module")
def reference(workspace_template, tmp_path_factory):
    """The site fully before and fully after a clean apply."""
    ws = Workspace(tmp_path_factory.mktemp("ref") / "ws")
    shutil.copytree(workspace_template, ws.path, symlinks=True)
    before = (snapshot(ws.site), services(ws.site))
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    after = (snapshot(ws.site), services(ws.site))
    return before, after


def _arm(point: str) -> str:
    *extra, last = point.split(";")
    return ";".join(extra + [f"{last}=kill"])


# A deterministic sample of KILL_POINTS, in groups that xdist workers can share:
SAMPLE_GROUPS = {
    # before and after the first action of each kind (stop, replace, start, reset_site,
    # wait_for_replication, force_client_update) on the site server
    "site-server-actions": [f"apply.action.{n}.{w}" for n in (1, 3, 12, 14, 15, 16) for w in ("before", "after")],
    # the second server (the workstation DEMOWKS1): around its replace, and after the last action;
    # each stage of a file's upload (started, mid-copy, written) on each server
    "workstation-and-uploads": ["apply.action.18.before", "apply.action.18.after", "apply.action.19.after"]
    + [f"apply.stage.{n}{w}" for n in (3, 18) for w in ("", ".midcopy", ".written")],
    # while verifying, while committing, and in the middle of undoing a failure (its first and last undo step)
    "verify-commit-undo": ["apply.verify", "apply.commit"]
    + [f"apply.action.12.after=raise;undo.action.{n}.before" for n in (12, 1)],
}
# Stops 2 and 17, replaces 4-11, starts 13 and 19 (before) repeat a sampled kind on the same
# server: they are killed in the full matrix only.
SAMPLED_KILL_POINTS = [p for group in SAMPLE_GROUPS.values() for p in group]
FINISHING = ("apply.verify", "apply.commit")  # every action has completed: recover finishes the run


def _kill_and_recover(workspace_template, tmp_path, reference, points) -> tuple[Counter[str], list[str]]:
    before, after = reference
    outcomes: Counter[str] = Counter()
    finished: list[str] = []
    problems = []
    for i, point in enumerate(points):
        ws = Workspace(copy_workspace(workspace_template, tmp_path / f"k{i}"))
        r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                           env={"DEPLOYER_FAILPOINTS": _arm(point)})
        if r.code != -signal.SIGKILL:
            problems.append(f"{point}: apply was not killed (exit {r.code}): {r.err[-300:]}")
            continue
        # the next command notices: the lock is stale, and behind it an unfinished run
        nxt = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
        if nxt.code != 2 or "stale: that process is gone" not in nxt.err:
            problems.append(f"{point}: the next apply did not report the stale lock: {nxt.err[-300:]}")
        nxt = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        if nxt.code != 2 or "unfinished run" not in nxt.err or "deployer recover" not in nxt.err:
            problems.append(f"{point}: apply went ahead on a half-done site: {nxt.text[-300:]}")
        warn = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
        if "unfinished run" not in warn.err:
            problems.append(f"{point}: plan did not warn about the unfinished run")
        rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        state = (snapshot(ws.site), services(ws.site))
        if rec.code == 0 and "finished" in rec.out:
            outcomes["finished"] += 1
            finished.append(point)
            if state != after:
                problems.append(f"{point}: finished, but not the after state: {diff(after[0], state[0])[:3]}")
        elif rec.code == 1 and "rolled back" in rec.out:
            outcomes["rolled back"] += 1
            if state != before:
                problems.append(f"{point}: rolled back, but not the before state: {diff(before[0], state[0])[:3]}")
        else:
            problems.append(f"{point}: recover exited {rec.code}: {rec.text[-400:]}")
            continue
        if "because" not in rec.out and "the run stopped" not in rec.out and "every action had completed" not in rec.out:
            problems.append(f"{point}: recover did not say why: {rec.out}")
        runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
        if [x["state"] for x in runs] not in (["committed"], ["rolled_back"]):
            problems.append(f"{point}: journal states {runs}")
        if ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory).out.find("Nothing to recover") < 0:
            problems.append(f"{point}: a second recover found more to do")
        leftovers = [p for p in ws.site.rglob("*~dpl*") if ".deployer" not in p.parts]
        if leftovers:
            problems.append(f"{point}: temporary files left: {leftovers}")
    print(f"\ntried {len(points)} kill points: {outcomes['finished']} finished, "
          f"{outcomes['rolled back']} rolled back")
    assert not problems, "\n".join(problems)
    assert sum(outcomes.values()) == len(points)
    return outcomes, finished


@pytest.mark.slow  # started first (tests/conftest.py)
@pytest.mark.parametrize("group", sorted(SAMPLE_GROUPS))
def test_sigkill_at_a_sample_of_kill_points_then_recover(workspace_template, tmp_path, reference, group):
    """The SIGKILL matrix, sampled deterministically (SAMPLE_GROUPS: every kind of kill point,
    on both servers; 25 of 61). The whole matrix is test_sigkill_at_every_kill_point_then_recover,
    run with -m full."""
    assert set(SAMPLED_KILL_POINTS) <= set(KILL_POINTS) and len(set(SAMPLED_KILL_POINTS)) == 25
    points = SAMPLE_GROUPS[group]
    outcomes, finished = _kill_and_recover(workspace_template, tmp_path, reference, points)
    assert finished == [p for p in points if p in FINISHING]  # and every other point rolled back
    assert outcomes["rolled back"] == len(points) - len(finished)


@pytest.mark.full
def test_sigkill_at_every_kill_point_then_recover(workspace_template, tmp_path, reference):
    outcomes, _ = _kill_and_recover(workspace_template, tmp_path, reference, KILL_POINTS)
    assert outcomes["finished"] >= 2 and outcomes["rolled back"] >= 50


def test_recover_on_a_clean_site_has_nothing_to_do(ws: Workspace):
    r = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0 and "Nothing to recover" in r.out
    assert not list(ws.site.rglob(".deployer"))  # not even the lock's folder is left behind


def test_recover_retries_a_rollback_that_could_not_complete(ws: Workspace):
    from deployer import failpoints

    before = ws.state()
    failpoints.arm("apply.action.8.after")
    failpoints.arm("undo.action.4.before")
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 4
    failpoints.reset()  # whatever broke is fixed now
    r = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 1, r.text
    assert "rolled back" in r.out and "after it failed, while undoing it" in r.out
    assert ws.state() == before
