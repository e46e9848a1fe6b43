"""Logon.srv: verify and plan make one judgement (issue 19, item 16), every LOGON.SRV of the site is
Maintenance Manager's, the site server's included (item 17), and a long wait says it is waiting."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from conftest import Workspace

LOGON_X86 = ("LOGON.SRV", "X86.BIN")


def _apply(ws: Workspace, book=None):
    return ws.cli("apply", book or ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)


def _sha(p) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_a_damaged_logon_srv_copy_with_a_newer_time_fails_verify_as_plan_would_replace_it(ws: Workspace):
    assert _apply(ws).code == 0
    copy = ws.server("DEMOLOG1").joinpath(*LOGON_X86, "PCMWIN32.EXE")
    data = bytearray(copy.read_bytes())
    data[1000:1010] = b"0123456789"  # damaged in place ...
    st = copy.stat()
    copy.write_bytes(bytes(data))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))  # ... and written an hour later
    plan = json.loads(ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    waits = [a for a in plan["actions"] if a["kind"] == "wait_for_replication"]
    assert [c["path"] for a in waits for c in a["copies"]] == ["LOGON.SRV\\X86.BIN\\PCMWIN32.EXE"]
    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 3, r.text  # was: "newer", PASSED
    (bad,) = [f for f in json.loads(r.out)["files"] if not f["passed"]]
    assert bad["server"] == "DEMOLOG1" and bad["status"] == "mismatch"
    assert "differs from DEMOSRV" in bad["detail"] and "CLIENT.SRC" in bad["detail"].upper()
    assert "Maintenance Manager replaces it" in bad["detail"]


def test_when_verify_passes_plan_has_nothing_to_do_even_if_a_copy_list_is_behind(ws: Workspace):
    assert _apply(ws).code == 0
    cl = ws.server("DEMOLOG1").joinpath(*LOGON_X86, "CL_NT.TXT")
    st = cl.stat()
    os.utime(cl, ns=(st.st_atime_ns, st.st_mtime_ns - 86400 * 10**9))  # not the Client.src copy's attributes
    v = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert v.code == 0, v.text
    p = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert p.code == 0 and "Plan: nothing to do." in p.out, p.out
    assert "only files no manifest lists differ on Logon.srv (CL_NT.TXT)" in p.out


def test_the_site_servers_logon_srv_is_replicated_verified_and_rolled_back(ws: Workspace):
    mine = ws.server("DEMOSRV").joinpath(*LOGON_X86, "PCMWIN32.EXE")
    before = _sha(mine), mine.stat().st_mtime_ns
    plan = json.loads(ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    (wait,) = [a for a in plan["actions"] if a["kind"] == "wait_for_replication"]
    assert {c["server"] for c in wait["copies"]} == {"DEMOSRV", "DEMOLOG1", "DEMOAXP1"}
    (force,) = [a for a in plan["actions"] if a["kind"] == "force_client_update"]
    assert "DEMOSRV" in force["logon_servers"]
    r = _apply(ws)
    assert r.code == 0, r.text
    assert "DEMOSRV: 5 client files replicated to Logon.srv" in r.out
    assert _sha(mine) == _sha(ws.path / "payloads" / "q241656" / "x86" / "Pcmwin32.exe")
    v = json.loads(ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert v["passed"] is True
    assert r"C:\SMS\LOGON.SRV\X86.BIN\PCMWIN32.EXE" in {f["path"] for f in v["files"] if f["server"] == "DEMOSRV"}
    assert ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    assert (_sha(mine), mine.stat().st_mtime_ns) == before


def test_a_site_server_without_logon_srv_is_not_a_logon_server(ws: Workspace):
    import shutil

    shutil.rmtree(ws.server("DEMOSRV") / "LOGON.SRV")
    plan = json.loads(ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    (wait,) = [a for a in plan["actions"] if a["kind"] == "wait_for_replication"]
    assert {c["server"] for c in wait["copies"]} == {"DEMOLOG1", "DEMOAXP1"}
    assert _apply(ws).code == 0
    assert not (ws.server("DEMOSRV") / "LOGON.SRV").exists()  # Maintenance Manager made none


def test_a_long_wait_says_it_is_waiting(ws: Workspace, monkeypatch: pytest.MonkeyPatch):
    from deployer.run import apply as applymod

    monkeypatch.setattr(applymod, "HEARTBEAT", 0.3)
    text = ws.playbook.read_text().replace("wait_for_replication: {timeout: 600}", "wait_for_replication: {timeout: 2}")
    book = ws.playbook.with_name("short.yaml")
    book.write_text(text)
    folder = ws.server("DEMOLOG1").joinpath(*LOGON_X86)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # Maintenance Manager cannot copy there: the wait runs out
    try:
        r = _apply(ws, book)
    finally:
        folder.chmod(0o755)
    assert r.code == 1, r.text
    beats = [line for line in r.out.splitlines() if "DEMO: waiting for replication to" in line]
    assert beats and all("DEMOLOG1" in b and " s of 2" in b for b in beats), r.out
