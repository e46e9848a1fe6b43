"""`plan --detailed-exitcode` (exit 5: changes pending) and `deployer validate` (offline checks
of playbooks, manifests and inventories with the messages load time gives)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, Workspace, copy_project, run_cli
from deployer.simulator.fleet_lab import write_fleet_inventory

PENDING = 5


def test_plan_detailed_exitcode_says_whether_a_site_has_changes_pending(ws: Workspace):
    assert ws.cli("plan", ws.playbook, "--site", "DEMO").code == 0  # without the flag: 0, as before
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "--detailed-exitcode")
    assert r.code == PENDING, r.text
    assert "PCMSVC32.EXE" in r.out and "Plan: 19 actions" in r.out  # the plan is still shown
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "--detailed-exitcode", "-f", "json")
    assert r.code == PENDING and json.loads(r.out)["actions"]
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes").code == 0
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "--detailed-exitcode")
    assert r.code == 0, r.text
    # errors keep their own codes: bad input is 2, never "no changes"
    assert ws.cli("plan", ws.path / "nope.yaml", "--site", "DEMO", "--detailed-exitcode").code == 2
    assert ws.cli("plan", ws.playbook, "--site", "NOPE", "--detailed-exitcode").code == 2


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = copy_project(tmp_path_factory.mktemp("detailed-fleet"))
    write_fleet_inventory(base / "sites.yaml", 3)
    assert run_cli("lab", "init", "--all", "-i", base / "sites.yaml", cwd=base).code == 0
    return base


def test_plan_detailed_exitcode_over_a_fleet(small_fleet: Path, tmp_path: Path):
    base = tmp_path / "f"
    shutil.copytree(small_fleet, base, symlinks=True)
    pb, inv = base / "playbooks" / "q241656.yaml", base / "sites.yaml"

    def plan(*args: str) -> int:
        return run_cli("plan", pb, "-i", inv, *args, cwd=base).code

    assert plan("--all") == 0
    assert plan("--all", "--detailed-exitcode") == PENDING
    assert plan("--all", "--detailed-exitcode", "-f", "json") == PENDING
    assert run_cli("apply", pb, "-i", inv, "--site", "SITE001,SITE002", "--yes", "--fleet-dir", base / "fl",
                   cwd=base).code == 0
    assert plan("--all", "--detailed-exitcode") == PENDING  # SITE003 still has changes
    assert plan("--site", "SITE001,SITE002", "--detailed-exitcode") == 0  # nothing left on these two
    assert plan("--site", "SITE001,NOPE*", "--detailed-exitcode") == 2


# --- deployer validate -------------------------------------------------------------------------------


def test_validate_accepts_every_shipped_playbook_manifest_and_inventory():
    files = [*sorted((ROOT / "playbooks").glob("*.yaml")), *sorted((ROOT / "manifests").glob("*.yaml")),
             ROOT / "sites.yaml"]
    r = run_cli("validate", *files, cwd=ROOT)
    assert r.code == 0, r.text
    assert r.out.count(": valid ") == len(files)
    assert "valid playbook Q241656: 9 steps" in r.out and "valid inventory: 1 site" in r.out
    data = json.loads(run_cli("validate", "-f", "json", *files, cwd=ROOT).out)
    assert data["valid"] and {f["kind"] for f in data["files"]} == {"playbook", "manifest", "inventory"}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_gives_load_time_messages_for_every_kind_and_exits_2(ws: Workspace):
    pb = _write(ws.path / "playbooks" / "bad.yaml", (
        "kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: ../payloads/q241656\nsteps:\n"
        "  - sendcode: {service: SMS_EXECUTIVE, code: 194}\n"))
    manifest = _write(ws.path / "manifests" / "bad.yaml", (
        "kb: Q241656\nfiles:\n  - {date: 11/31/94, time: 7:00PM, size: 524KB, name: Base.dll, platform: I386}\n"))
    inv = _write(ws.path / "bad-sites.yaml", (
        "sites:\n  DEMO:\n    code: TOOLONG\n    mock: {path: lab/DEMO}\n"
        "    servers:\n      SRV: {role: site_server, platform: x86}\n"))
    other = _write(ws.path / "other.yaml", "name: something else\n")
    r = ws.cli("validate", ws.playbook, pb, manifest, inv, other, ws.path / "missing.yaml")
    assert r.code == 2, r.text
    assert f"{ws.playbook}: valid playbook" in r.out
    assert "1 of 6 files valid; 5 with errors." in r.out
    # the same words, file and line as when plan loads them
    for args in (("plan", pb, "--site", "DEMO"), ("verify", manifest, "--site", "DEMO"),
                 ("plan", ws.playbook, "-i", inv, "--site", "DEMO")):
        loaded = ws.cli(*args)
        assert loaded.code == 2
        message = next(line for line in loaded.err.splitlines() if line.startswith("deployer: "))
        assert message in r.err.splitlines(), (message, r.err)
    assert f"deployer: {pb}:5:" in r.err and "194" in r.err
    assert f"deployer: {manifest}:3:" in r.err
    assert f"deployer: {inv}:3:" in r.err
    assert f"deployer: {other}:1:1: is not a playbook, a manifest or an inventory" in r.err
    assert f"deployer: {ws.path / 'missing.yaml'}: file not found" in r.err
    data = json.loads(ws.cli("validate", "-f", "json", pb, other).out)
    assert not data["valid"] and [f["kind"] for f in data["files"]] == ["playbook", None]
    assert all(f["errors"] for f in data["files"])


def test_validate_reports_a_playbooks_step_errors_and_its_missing_manifest_together(ws: Workspace):
    pb = _write(ws.path / "playbooks" / "two.yaml", (
        "kb: Q241656\nmanifest: ../manifests/nope.yaml\npayloads: x\nsteps:\n  - stopp: [SMS_EXECUTIVE]\n"))
    r = ws.cli("validate", pb)
    assert r.code == 2
    assert f"{pb}:5:" in r.err and "unknown step 'stopp'" in r.err
    assert f"{pb}:2:" in r.err and "manifest 'manifests/nope.yaml'" not in r.err and "not found" in r.err


def test_validate_reads_nothing_of_a_site_and_writes_no_log(ws: Workspace, command_logs: Path):
    before = sorted(command_logs.rglob("*"))
    shutil.rmtree(ws.site)  # no mock site at all: validate still answers
    r = ws.cli("validate", ws.playbook, ws.inventory)
    assert r.code == 0, r.text
    assert sorted(command_logs.rglob("*")) == before and "Log:" not in r.err
