"""Issue 19 item 18: without a terminal to ask on, a command that would change a site or
delete data needs --yes (exit 2, nothing touched), as Terraform does without -auto-approve.
Plans, dry runs and commands with nothing to do need no --yes. (run_cli has no terminal.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Workspace, lab_project, run_cli, run_subprocess, snapshot


def _refused(r, before: dict, after: dict) -> None:
    assert r.code == 2, r.text
    assert "--yes" in r.err and "no terminal" in r.err and "Traceback" not in r.text
    assert after == before


def _cli(ws: Workspace, *args):
    return ws.cli(*args, "-i", ws.inventory)


def test_apply_without_yes_and_without_a_terminal_is_refused_and_touches_nothing(ws: Workspace, tmp_path: Path):
    before = snapshot(ws.site)
    _refused(_cli(ws, "apply", ws.playbook, "--site", "DEMO"), before, snapshot(ws.site))
    r = _cli(ws, "apply", ws.playbook, "--site", "DEMO", "-f", "json")
    _refused(r, before, snapshot(ws.site))
    assert json.loads(r.out)["exit_code"] == 2
    # the fleet path (rollout options with one site) and a saved plan ask the same way
    _refused(_cli(ws, "apply", ws.playbook, "--site", "DEMO", "--batch", "1", "--fleet-dir", tmp_path / "f"),
             before, snapshot(ws.site))
    saved = tmp_path / "plan.json"
    assert _cli(ws, "plan", ws.playbook, "--site", "DEMO", "--out", saved).code == 0  # a plan needs no --yes
    _refused(_cli(ws, "apply", saved), before, snapshot(ws.site))
    r = _cli(ws, "apply", ws.playbook, "--site", "DEMO", "--dry-run")
    assert r.code == 0 and "Nothing was done" not in r.out, r.text
    assert snapshot(ws.site) == before
    # once applied, a second apply has nothing to ask: no --yes needed
    assert _cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes").code == 0
    r = _cli(ws, "apply", ws.playbook, "--site", "DEMO")
    assert r.code == 0 and "Nothing to do" in r.out, r.text


def test_rollback_prune_and_recover_without_yes_are_refused(ws: Workspace):
    for args in (["apply", ws.playbook, "--site", "DEMO", "--yes"], ["rollback", "--site", "DEMO", "--yes"],
                 ["apply", ws.playbook, "--site", "DEMO", "--yes"]):
        assert _cli(ws, *args).code == 0
    everything = snapshot(ws.site, include_state=True)  # not even a lock is left behind
    _refused(_cli(ws, "rollback", "--site", "DEMO"), everything, snapshot(ws.site, include_state=True))
    _refused(_cli(ws, "prune", "--site", "DEMO", "--keep", "0"), everything, snapshot(ws.site, include_state=True))
    r = _cli(ws, "prune", "--site", "DEMO", "--keep", "0", "--dry-run")
    assert r.code == 0 and "would remove" in r.out, r.text

    # an interrupted run: recover would change the site
    assert _cli(ws, "rollback", "--site", "DEMO", "--yes", "--force").code == 0
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": "apply.action.3.after=kill"})
    assert r.code != 0
    half = snapshot(ws.site)
    r = _cli(ws, "recover", "--site", "DEMO", "--break-lock")
    _refused(r, half, snapshot(ws.site))
    assert "Recover run" in r.err
    runs = json.loads(_cli(ws, "runs", "--site", "DEMO", "-f", "json").out)
    assert runs[-1]["state"] == "interrupted"  # neither finished nor rolled back


@pytest.fixture
def fleet3(tmp_path: Path) -> Path:
    return lab_project(tmp_path / "fleet", 3)


def test_fleet_apply_rollback_and_recover_without_yes_are_refused(fleet3: Path):
    def cli(*args):
        return run_cli(*args, "-i", fleet3 / "sites.yaml", "--fleet-dir", fleet3 / "fleets", cwd=fleet3)

    pb = fleet3 / "playbooks" / "q241656.yaml"
    before = snapshot(fleet3 / "lab", include_state=True)
    _refused(cli("apply", pb, "--all"), before, snapshot(fleet3 / "lab", include_state=True))
    assert not (fleet3 / "fleets").exists() or not list((fleet3 / "fleets").glob("*.json"))  # no journal either
    assert cli("apply", pb, "--all", "--yes").code == 0
    before = snapshot(fleet3 / "lab", include_state=True)
    _refused(cli("rollback", "--all"), before, snapshot(fleet3 / "lab", include_state=True))
    _refused(cli("recover", "--all"), before, snapshot(fleet3 / "lab", include_state=True))
    shutil.rmtree(fleet3 / "fleets", ignore_errors=True)
