"""The seed tools as an operator meets them: preflight says INCOMPLETE (exit 6) when checks could
not run, `pcm dump` reads the lab's own .INS files, the README's sample PCMDUMP file ships,
`sendcode --list` fits 100 columns, and the fleet question shows each site's action count."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, Workspace, copy_project, run_cli
from deployer.simulator.fleet_lab import write_fleet_inventory
from deployer.sms.pcm import dumptext, yamlform
from test_terminal import Terminal

INS = Path("LOGON.SRV") / "PCMINS.BOX" / "DMO00005.INS"


def test_preflight_is_incomplete_when_checks_could_not_run_and_passed_only_when_all_did(ws: Workspace):
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 6 and r.out.rstrip().endswith("cannot be checked. INCOMPLETE"), r.text
    data = json.loads(ws.cli("preflight", "--site", "DEMO", "-f", "json").out)
    assert data["status"] == "incomplete" and data["passed"] is False
    # every check made: PASSED, exit 0 (the site patched, a marker, a record with every property)
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes").code == 0
    inv = yaml.safe_load(ws.inventory.read_text())
    inv["sites"]["DEMO"]["preflight"] = {"backup_marker": "BACKUP\\LASTBACKUP.OK", "backup_max_age_hours": 24}
    ws.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
    for server in ("DEMOSRV", "DEMOLOG1", "DEMOAXP1"):
        (ws.server(server) / "BACKUP").mkdir()
        (ws.server(server) / "BACKUP" / "LASTBACKUP.OK").write_text("backed up")
    f = dumptext.parse((ROOT / "playbooks" / "mdm00005.txt").read_text())
    rec = f.records[3].model_copy(update={"automated_command_line": True, "background_task": True})
    record = ws.path / "one.yaml"
    record.write_text(yamlform.to_yaml(f.model_copy(update={"records": [rec]})))
    book = ws.path / "playbooks" / "distribute.yaml"
    book.write_text("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: ../payloads/q241656\nsteps:\n"
                    "  - sendcode: {service: SMS_SITE_CONFIG_MANAGER, code: 192}\n")
    r = ws.cli("preflight", "--site", "DEMO", book, "--pcm-record", record)
    assert r.code == 0 and r.out.rstrip().endswith("0 cannot be checked. PASSED"), r.text


def test_pcm_dump_reads_the_ins_files_the_lab_makes(ws: Workspace):
    for server, root in (("DEMOSRV", "C/SMS"), ("DEMOLOG1", "D/SMS")):
        ins = ws.site / server / root / INS
        r = ws.cli("pcm", "dump", ins)
        assert r.code == 0, r.text
        assert "   RequestID       : DMO001M" in r.out and "   Run Command     : audit.bat" in r.out
        assert ws.cli("pcm", "dump", ins, "--decode").code == 0
        r = ws.cli("pcm", "lint", ins, "--now", "1999-12-01 00:00:00", "-f", "json")
        assert r.code == 3 and "not-mandatory" in r.out  # read, then judged: an optional audit job
        r = ws.cli("pcm", "convert", ins, "-o", ws.path / f"{server}.yaml")
        assert r.code == 0, r.text
    # the same record through preflight --pcm-record
    r = ws.cli("preflight", "--site", "DEMO", "--pcm-record", ws.site / "DEMOSRV" / "C/SMS" / INS)
    assert r.code == 3 and "DMO001M" in r.out


def test_a_field_out_of_pcmdumps_layout_is_named_as_such(tmp_path: Path):
    old = tmp_path / "OLD.INS"
    old.write_bytes(b"PCM Version     : Beta 455\r\nSiteID          : DMO\r\n")
    r = run_cli("pcm", "dump", old)
    assert r.code == 2
    assert "'PCM Version' is not where PCMDUMP prints it: each field line starts with three spaces" in r.err


def test_the_readmes_sample_pcmdump_file_ships_and_its_commands_run(ws: Workspace):
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"--pcm-record (\S+)", readme)) | set(re.findall(r"pcm_record: (\S+?)[,}]", readme))
    assert {n for n in named if not n.isupper()} == {"playbooks/mdm00005.txt", "mdm00005.txt"}  # FILE: a placeholder
    sample = ROOT / "playbooks" / "mdm00005.txt"
    assert run_cli("pcm", "dump", sample).out == sample.read_text()
    shutil.copy(sample, ws.path / "playbooks")
    r = ws.cli("preflight", "--site", "DEMO", ws.playbook, "--pcm-record", "playbooks/mdm00005.txt",
               "--request", "BPC005Q")
    assert r.code == 6, r.text  # as the README runs it: read, nothing failed, some checks not possible
    book = ws.path / "playbooks" / "step.yaml"
    book.write_text(ws.playbook.read_text().replace(
        "steps:\n", "steps:\n  - preflight: {pcm_record: mdm00005.txt, request: BPC005Q}\n", 1))
    assert ws.cli("plan", book, "--site", "DEMO").code == 0


def test_sendcode_list_fits_100_columns(ws: Workspace):
    r = ws.cli("sendcode", "--list")
    assert r.code == 0
    assert max(map(len, r.out.splitlines())) <= 100, max(r.out.splitlines(), key=len)
    text = " ".join(r.out.split())
    for service in ("SMS_PACKAGE_COMMAND_MANAGER_NT", "SMS_CLIENT_CONFIG_MANAGER", "SMS_INVENTORY_AGENT_NT"):
        assert service in text  # nothing dropped to fit
    assert "132 toggle net pause support to: SMS_SITE_CONFIG_MANAGER, SMS_EXECUTIVE" in text


@pytest.fixture
def three_sites(tmp_path: Path) -> Path:
    base = copy_project(tmp_path)
    write_fleet_inventory(base / "sites.yaml", 3)
    assert run_cli("lab", "init", "--all", "-i", base / "sites.yaml", cwd=base).code == 0
    return base


def test_the_fleet_question_shows_each_sites_action_count(three_sites: Path):
    base = three_sites
    pb = base / "playbooks" / "q241656.yaml"
    assert run_cli("apply", pb, "--site", "SITE002", "--yes", cwd=base).code == 0
    shutil.rmtree(base / "lab" / "SITE003" / "SRV003")  # its site server's folder gone: it cannot be planned
    t = Terminal("apply", pb, "--all", "--fleet-dir", base / "fleets", cwd=base)
    seen = " ".join(t.expect("[y/N]").split())
    t.send("n\n")
    assert t.finish() == 0
    assert "SITE001: 16 actions, SITE002: nothing to do, SITE003: cannot be planned (" in seen, seen
    assert "(16 actions in all; 1 with nothing to do; 1 cannot be planned" in seen
    assert not (base / "fleets").exists() or not any((base / "fleets").iterdir())  # declined: nothing recorded
