"""Lab stand-ins: recognisable, never uploaded to a real server, and lab init never overwrites
a payload it did not write (issue 19, item 2)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import Workspace, services, snapshot
from hotfix import vendor_payloads
from servers.sshd import SshTestServer
from test_e2e_ssh import SITE, ssh_inventory

from deployer.targets import standin


def _payload(ws: Workspace, rel: str = "x86/Base.dll") -> Path:
    return ws.path / "payloads" / "q241656" / rel


@pytest.mark.parametrize("force", [False, True])
def test_lab_init_never_overwrites_a_real_hotfix_file(ws: Workspace, force: bool):
    p = _payload(ws)
    vendor_payloads(ws.path / "payloads")  # the operator put the vendor's files in place
    real, st = p.read_bytes(), p.stat()
    r = ws.cli("lab", "init", "DEMO", *(["--force"] if force else []), "-i", ws.inventory)
    assert r.code == 0, r.text
    assert p.read_bytes() == real and p.stat().st_mtime_ns == st.st_mtime_ns
    assert f"Kept {p}: not a stand-in lab wrote" in r.out


def test_lab_init_force_rewrites_only_its_own_stand_ins_and_records_them(ws: Workspace):
    own = _payload(ws, "x86/Pcmsvc32.exe")
    other = _payload(ws)
    vendor_payloads(ws.path / "payloads")
    real = other.read_bytes()
    own.write_bytes(b"")  # lab's file, damaged: --force writes it again ...
    os.remove(own)
    r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert standin.marked(own.read_bytes()) and other.read_bytes() == real  # ... and keeps the real one
    record = json.loads((ws.path / "payloads" / "q241656" / standin.RECORD).read_text())
    assert record["files"]["x86/Pcmsvc32.exe"] == standin.file_sha256(own)
    assert "x86/Base.dll" not in record["files"]


def test_a_stand_in_is_recognised_by_its_marker_or_by_the_lab_record(ws: Workspace, tmp_path: Path):
    p = _payload(ws)
    assert standin.reason(p) and "marker" in standin.reason(p)
    copy = tmp_path / "cache" / "x86" / "Base.dll"  # as a worker's payload cache holds it: no record there
    copy.parent.mkdir(parents=True)
    shutil.copy2(p, copy)
    assert "marker" in standin.reason(copy)
    # the marker gone, the record still names the bytes lab wrote
    data = p.read_bytes()
    rec_dir = ws.path / "payloads" / "q241656"
    record = standin.load_record(rec_dir)
    p.write_bytes(b"XX" + data[2:])
    record["x86/Base.dll"] = standin.file_sha256(p)
    standin.save_record(rec_dir, record)
    assert "lab init" in standin.reason(p)


def test_a_stand_in_is_never_uploaded_over_ssh_plan_apply_or_saved_plan(ws: Workspace, sshd: SshTestServer):
    inventory = ssh_inventory(ws, sshd, vendor=False)
    before, svc = snapshot(ws.site, include_state=True), services(ws.site)
    planned = ws.cli("plan", ws.playbook, "--site", SITE, "-i", inventory, "-o", ws.path / "plan.json")
    assert "apply will refuse this plan: lab stand-ins would be uploaded to real servers" in planned.text
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 2, r.text
    assert "lab stand-ins would be uploaded to real servers" in r.err and "DEMOSRV" in r.err
    saved = ws.cli("apply", ws.path / "plan.json", "--yes", "-i", inventory)
    assert saved.code == 2 and "stand-ins" in saved.err, saved.text
    assert snapshot(ws.site, include_state=True) == before and services(ws.site) == svc  # not even the lock


def test_the_vendor_files_go_to_a_real_server_and_stand_ins_still_go_to_the_mock(ws: Workspace,
                                                                                sshd: SshTestServer):
    mock = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes")
    assert mock.code == 0, mock.text  # the lab's own site takes its stand-ins
    shutil.rmtree(ws.site)
    assert ws.cli("lab", "init", "DEMO", "-i", ws.inventory).code == 0
    vendor_payloads(ws.path / "payloads")
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", ssh_inventory(ws, sshd))
    assert r.code == 0, r.text


def test_lab_init_never_deletes_or_fills_a_folder_it_did_not_make(ws: Workspace):
    text = ws.inventory.read_text()
    mine = ws.path / "important"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    ws.inventory.write_text(text.replace("mock: {path: lab/DEMO}", "mock: {path: important}"))
    for extra in ([], ["--force"]):
        r = ws.cli("lab", "init", "DEMO", *extra, "-i", ws.inventory)
        assert r.code == 2 and "not a mock site" in r.err, r.text
        assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
