"""The whole of Q241656 on the mock: site server, reset, replication to every logon server's
Logon.srv, the forced client update and the PCM service workstation; planned, applied,
verified and rolled back, a logon server whose replication fails, a workstation that is off."""

from __future__ import annotations

import json
import stat

from conftest import Workspace, diff

LOGON_SERVERS = ("DEMOLOG1", "DEMOAXP1")
WKS_EXE = ("DEMOWKS1", "C", "PCMSVC", "PCMSVC32.EXE")


def apply(ws: Workspace, playbook=None):
    return ws.cli("apply", playbook or ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)


def playbook_with(ws: Workspace, old: str, new: str):
    text = ws.playbook.read_text()
    assert old in text
    p = ws.playbook.with_name("variant.yaml")
    p.write_text(text.replace(old, new))
    return p


def copy_list_versions(ws: Workspace) -> dict[str, set[int]]:
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    out: dict[str, set[int]] = {}
    for c in json.loads(r.out)["copy_lists"]:
        out.setdefault(c["server"], set()).add(c["version"])
    return out


def test_the_whole_article_planned_applied_verified_and_rolled_back(ws: Workspace):
    before = ws.state()
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert r"DEMOLOG1 D:\SMS\LOGON.SRV\X86.BIN\PCMWIN32.EXE: 468,912 bytes" in r.out
    assert r"DEMOAXP1 C:\SMS\LOGON.SRV\ALPHA.BIN\PCMWIN32.EXE: 1,173,264 bytes" in r.out
    assert "force a site-wide client update (Q166771): give DEMOSRV SYSTEM.MAP a new timestamp" in r.out
    assert "stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOWKS1: running -> stopped" in r.out
    assert r"replace DEMOWKS1 C:\PCMSVC\PCMSVC32.EXE" in r.out

    r = apply(ws)
    assert r.code == 0, r.text
    for server in LOGON_SERVERS:
        assert f"{server}: 5 client files replicated to Logon.srv (Maintman.log: worked on {server}" in r.out
        assert f"{server}: clients compare against CopyListVersion 2 (was 1)" in r.out
    assert "PASSED" in r.out

    # the verification report lists every logon server's client files and the workstation
    v = json.loads(ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert v["passed"] is True
    by_server: dict[str, set[str]] = {}
    for f in v["files"]:
        by_server.setdefault(f["server"], set()).add(f["path"])
    for server, root in (("DEMOLOG1", "D:"), ("DEMOAXP1", "C:")):
        assert {p for p in by_server[server] if "LOGON.SRV" in p} == {
            rf"{root}\SMS\LOGON.SRV\X86.BIN\{n}" for n in ("PCMWIN32.EXE", "PCMWIN16.EXE", "PCMDOS_2.EXE",
                                                         "PCMDOS_4.EXE")} | {rf"{root}\SMS\LOGON.SRV\ALPHA.BIN\PCMWIN32.EXE"}
    assert by_server["DEMOWKS1"] == {r"C:\PCMSVC\PCMSVC32.EXE"}
    payload = (ws.path / "payloads" / "q241656" / "x86").joinpath
    assert ws.site.joinpath(*WKS_EXE).read_bytes() == payload("Pcmsvc32.exe").read_bytes()
    for server in LOGON_SERVERS:
        assert (ws.server(server) / "LOGON.SRV" / "X86.BIN" / "PCMWIN16.EXE").read_bytes() == \
            payload("Pcmwin16.exe").read_bytes()
    assert copy_list_versions(ws) == {"DEMOSRV": {2}, "DEMOLOG1": {2}, "DEMOAXP1": {2}}
    scm = json.loads((ws.site / "DEMOWKS1" / "scm.json").read_text())["services"]
    assert scm["SMS_PACKAGE_COMMAND_MANAGER_NT"]["state"] == "running"

    again = apply(ws)
    assert again.code == 0 and "Nothing to do" in again.out, again.text

    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    # byte for byte, write times included: Site.srv, Helper.srv, Logon.srv, System.map, the
    # copy lists and the workstation; every service as it was
    assert diff(before[0], ws.state()[0]) == []
    assert ws.state() == before
    assert copy_list_versions(ws) == {"DEMOSRV": {1}, "DEMOLOG1": {1}, "DEMOAXP1": {1}}


def test_a_logon_server_whose_replication_fails_is_reported_and_the_site_restored(ws: Workspace):
    book = playbook_with(ws, "wait_for_replication: {timeout: 600}", "wait_for_replication: {timeout: 1}")
    before = ws.state()
    folder = ws.server("DEMOLOG1") / "LOGON.SRV" / "X86.BIN"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # the share refuses Maintenance Manager's copies
    try:
        r = apply(ws, book)
    finally:
        folder.chmod(0o755)
    assert r.code == 1, r.text
    assert "Maintenance Manager did not replicate the client files within 1 s: DEMOLOG1:" in r.text
    assert "Maintman.log: Failed to perform replication on server DEMOLOG1" in r.text
    assert "DEMOAXP1:" not in r.text.split("did not replicate", 1)[1].splitlines()[0]  # it got its copies
    assert "failed and the site was restored" in r.err
    assert diff(before[0], ws.state()[0]) == []
    assert ws.state() == before


def test_a_workstation_that_is_off_is_reported_and_the_rest_is_patched(ws: Workspace):
    (ws.site / "DEMOWKS1" / "offline").touch()
    old_exe = ws.site.joinpath(*WKS_EXE).read_bytes()
    r = apply(ws)
    assert r.code == 0, r.text
    assert "update SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOWKS1: unreachable, not updated: cannot be reached" in r.out
    assert "Windows error 53" in r.out
    assert "NOT VERIFIED: DEMOWKS1" in r.out and "INCOMPLETE" in r.out and "PASSED" not in r.out
    assert ws.site.joinpath(*WKS_EXE).read_bytes() == old_exe
    # back on the network: the next run updates it, and only it
    (ws.site / "DEMOWKS1" / "offline").unlink()
    r = apply(ws)
    assert r.code == 0, r.text
    assert "stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOWKS1" in r.out
    assert "DEMOSRV (running -> stopped)" not in r.out  # the site server's services stay up
    assert r"replace DEMOWKS1 C:\PCMSVC\PCMSVC32.EXE" in r.out and "replace DEMOSRV" not in r.out
    assert ws.site.joinpath(*WKS_EXE).read_bytes() != old_exe


def test_a_playbook_can_require_every_workstation(ws: Workspace):
    book = playbook_with(ws, "unreachable: report", "unreachable: fail")
    (ws.site / "DEMOWKS1" / "offline").touch()
    before = ws.state()
    r = apply(ws, book)
    assert r.code == 1, r.text
    assert "PCM service host DEMOWKS1 cannot be reached" in r.err and "unreachable: fail" in r.err
    assert ws.state() == before


def test_a_workstation_whose_service_is_stopped_stays_stopped(ws: Workspace):
    from deployer.targets.mock import MockSite

    MockSite(ws.site).services("DEMOWKS1").stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    r = apply(ws)
    assert r.code == 0, r.text
    assert r"replace DEMOWKS1 C:\PCMSVC\PCMSVC32.EXE" in r.out
    assert "on DEMOWKS1 (stopped -> running)" not in r.out
    assert MockSite(ws.site).services("DEMOWKS1").query("SMS_PACKAGE_COMMAND_MANAGER_NT").state == "stopped"


def test_bad_workstation_steps_are_refused_at_their_line(ws: Workspace):
    for old, new, needle in (
        ("update_pcm_hosts: {files: [Pcmsvc32.exe], unreachable: report}",
         "update_pcm_hosts: {files: [Pcmsvc32.exe], hosts: [NOSUCHWS]}", "no PCM service host 'NOSUCHWS'"),
        ("update_pcm_hosts: {files: [Pcmsvc32.exe], unreachable: report}",
         "update_pcm_hosts: {files: [Rcmdsvc.exe]}", "Rcmdsvc.exe is not in the manifest"),
        ("update_pcm_hosts: {files: [Pcmsvc32.exe], unreachable: report}",
         "update_pcm_hosts: {files: [Pcmsvc32.exe], unreachable: ignore}", "unreachable"),
        ("wait_for_replication: {timeout: 600}", "wait_for_replication: {timeout: -5}", "timeout"),
    ):
        before = ws.state()
        r = ws.cli("apply", playbook_with(ws, old, new), "--site", "DEMO", "--yes", "-i", ws.inventory)
        assert r.code == 2, r.text
        assert "variant.yaml:" in r.err and needle in r.err, r.err
        assert "Traceback" not in r.text
        assert ws.state() == before
