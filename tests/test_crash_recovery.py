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

from conftest import Workspace, diff, run_subprocess, services, snapshot

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


def test_sigkill_at_every_kill_point_then_recover(workspace_template, tmp_path, reference):
    before, after = reference
    outcomes: Counter[str] = Counter()
    problems = []
    for i, point in enumerate(KILL_POINTS):
        ws = Workspace(tmp_path / f"k{i}")
        shutil.copytree(workspace_template, ws.path, symlinks=True)
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
    print(f"\ntried {len(KILL_POINTS)} kill points: {outcomes['finished']} finished, "
          f"{outcomes['rolled back']} rolled back")
    assert not problems, "\n".join(problems)
    assert sum(outcomes.values()) == len(KILL_POINTS)
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
