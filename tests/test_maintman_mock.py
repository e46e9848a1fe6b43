"""Maintenance Manager on the mock site: Client.src replicated to every logon server's Logon.srv,
copy lists regenerated when System.map changes, Maintman.log as SMS writes it."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from conftest import Workspace

from deployer.simulator import maintman as mock_maintman
from deployer.targets.mock import MockSite
from deployer.simulator.fs import hold_open, write_json_atomic

SRC_X86 = Path("SITE.SRV/MAINCFG.BOX/CLIENT.SRC/X86.BIN")
LOGON_X86 = Path("LOGON.SRV/X86.BIN")
LOGON_ALPHA = Path("LOGON.SRV/ALPHA.BIN")
LOGON_SERVERS = ("DEMOLOG1", "DEMOAXP1")


def log_text(ws: Workspace) -> str:
    return (ws.server("DEMOSRV") / "LOGS" / "MAINTMAN.LOG").read_text()


def new_client_file(ws: Workspace, name: str = "PCMWIN32.EXE", data: bytes = b"MZ new client file",
                    mtime_ns: int = 1_000_000_000 * 10**9) -> Path:
    p = ws.server("DEMOSRV") / SRC_X86 / name
    p.write_bytes(data)
    os.utime(p, ns=(mtime_ns, mtime_ns))
    return p


def restart_executive(site: MockSite) -> None:
    scm = site.services("DEMOSRV")
    scm.stop("SMS_EXECUTIVE")
    scm.start("SMS_EXECUTIVE")


def copy_list_version(path: Path) -> int | None:
    return mock_maintman.parse_copy_list_version(path.read_bytes())


def test_lab_site_has_replicated_client_files_and_copy_lists(ws: Workspace):
    for server in LOGON_SERVERS:
        for folder_src, folder_dst in ((SRC_X86, LOGON_X86),
                                       (Path("SITE.SRV/MAINCFG.BOX/CLIENT.SRC/ALPHA.BIN"), LOGON_ALPHA)):
            src = ws.server("DEMOSRV") / folder_src
            for f in src.iterdir():
                dst = ws.server(server) / folder_dst / f.name
                assert dst.read_bytes() == f.read_bytes(), dst
                assert dst.stat().st_mtime_ns == f.stat().st_mtime_ns, dst
        assert copy_list_version(ws.server(server) / LOGON_X86 / "CL_NT.TXT") == 1
        assert copy_list_version(ws.server(server) / LOGON_ALPHA / "CL_NT.TXT") == 1
        assert {p.name for p in (ws.server(server) / LOGON_X86).glob("CL_*.TXT")} == \
            {"CL_NT.TXT", "CL_WIN95.TXT", "CL_WIN.TXT", "CL_DOS.TXT", "CL_OS2.TXT"}
    text = log_text(ws)
    assert "~Working on logon server DEMOLOG1" in text and "~Working on logon server DEMOAXP1" in text
    # a site server that carries LOGON.SRV is a logon server too (issue 19, item 17): fed like the others
    assert "~Working on logon server DEMOSRV" in text
    assert copy_list_version(ws.server("DEMOSRV") / LOGON_X86 / "CL_NT.TXT") == 1


def test_executive_start_replicates_to_every_logon_server_keeping_write_times(ws: Workspace):
    src = new_client_file(ws)
    site = MockSite(ws.site)
    restart_executive(site)
    for server in LOGON_SERVERS:
        dst = ws.server(server) / LOGON_X86 / "PCMWIN32.EXE"
        assert dst.read_bytes() == src.read_bytes()
        assert dst.stat().st_mtime_ns == src.stat().st_mtime_ns
        assert not list((ws.server(server) / LOGON_X86).glob("*.~mm"))  # no temporary copy left
    text = log_text(ws)
    cycle = text[text.rindex("(SMS_EXECUTIVE started)"):]
    assert cycle.index("~Working on logon server DEMOAXP1") < cycle.index("~Working on logon server DEMOLOG1")
    assert r"to \\DEMOLOG1\SMS_SHR\X86.BIN\PCMWIN32.EXE" in cycle


def test_no_cycle_while_the_executive_is_only_stopped_or_on_other_servers(ws: Workspace):
    new_client_file(ws)
    site = MockSite(ws.site)
    site.services("DEMOSRV").stop("SMS_EXECUTIVE")
    site.services("DEMOLOG1").stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    site.services("DEMOLOG1").start("SMS_PACKAGE_COMMAND_MANAGER_NT")
    old = ws.server("DEMOLOG1") / LOGON_X86 / "PCMWIN32.EXE"
    assert old.read_bytes() != (ws.server("DEMOSRV") / SRC_X86 / "PCMWIN32.EXE").read_bytes()


def test_never_deletes_from_logon_servers(ws: Workspace):
    extra = ws.server("DEMOLOG1") / LOGON_X86 / "LOCAL.BAT"
    extra.write_bytes(b"rem put there by an administrator\r\n")
    (ws.server("DEMOSRV") / SRC_X86 / "INVDOS.EXE").unlink()
    restart_executive(MockSite(ws.site))
    assert extra.exists()
    assert (ws.server("DEMOLOG1") / LOGON_X86 / "INVDOS.EXE").exists()


def test_a_file_in_use_is_skipped_and_updated_on_a_later_cycle(ws: Workspace):
    src = new_client_file(ws)
    site = MockSite(ws.site)
    held = ws.server("DEMOLOG1") / LOGON_X86 / "PCMWIN32.EXE"
    before = held.read_bytes()
    with hold_open(site.server_dir("DEMOLOG1"), r"LOGON.SRV\X86.BIN\PCMWIN32.EXE"):
        result = mock_maintman.run_cycle(site, "test")
    by_server = {o.server: o for o in result.servers}
    assert by_server["DEMOLOG1"].in_use == [r"LOGON.SRV\X86.BIN\PCMWIN32.EXE"]
    assert by_server["DEMOLOG1"].error is None
    assert held.read_bytes() == before  # not updated while in use
    assert (ws.server("DEMOAXP1") / LOGON_X86 / "PCMWIN32.EXE").read_bytes() == src.read_bytes()
    assert not list(held.parent.glob("*.~mm"))
    assert r"~File \\DEMOLOG1\SMS_SHR\X86.BIN\PCMWIN32.EXE is in use" in log_text(ws)
    result = mock_maintman.run_cycle(site, "test")
    assert held.read_bytes() == src.read_bytes()
    assert {o.server: o.copied for o in result.servers}["DEMOLOG1"] == [r"LOGON.SRV\X86.BIN\PCMWIN32.EXE"]


def test_a_failing_logon_server_gets_a_failure_line_and_the_others_are_updated(ws: Workspace):
    src = new_client_file(ws)
    folder = ws.server("DEMOLOG1") / LOGON_X86
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # the mock refuses writes to a read-only folder, as Windows does
    try:
        result = mock_maintman.run_cycle(MockSite(ws.site), "test")
    finally:
        folder.chmod(0o755)
    by_server = {o.server: o for o in result.servers}
    assert by_server["DEMOLOG1"].error and "access is denied" in by_server["DEMOLOG1"].error
    assert by_server["DEMOAXP1"].error is None
    assert (ws.server("DEMOAXP1") / LOGON_X86 / "PCMWIN32.EXE").read_bytes() == src.read_bytes()
    assert "Failed to perform replication on server DEMOLOG1" in log_text(ws)
    assert "Failed to perform replication on server DEMOAXP1" not in log_text(ws)


def test_a_new_system_map_timestamp_regenerates_the_copy_lists(ws: Workspace):
    site = MockSite(ws.site)
    result = mock_maintman.run_cycle(site, "test")
    assert result.copy_list_version is None  # System.map unchanged: the copy lists stay as they are
    assert copy_list_version(ws.server("DEMOLOG1") / LOGON_X86 / "CL_NT.TXT") == 1

    system_map = ws.server("DEMOSRV") / "SYSTEM.MAP"
    data = system_map.read_bytes()
    system_map.write_bytes(data)  # opened and saved without a change (Q166771)
    restart_executive(site)
    for server in LOGON_SERVERS:
        for name in ("CL_NT.TXT", "CL_DOS.TXT", "CL_WIN95.TXT"):
            assert copy_list_version(ws.server(server) / LOGON_X86 / name) == 2
        assert copy_list_version(ws.server(server) / LOGON_ALPHA / "CL_NT.TXT") == 2
    assert system_map.read_bytes() == data
    assert "regenerated 6 copy lists, CopyListVersion=2" in log_text(ws)
    # the next cycle keeps version 2: nothing changed since
    assert mock_maintman.run_cycle(site, "test").copy_list_version is None


def test_work_cycle_thread_runs_while_the_site_is_open_and_the_executive_runs(ws: Workspace):
    meta = json.loads((ws.site / "site.json").read_text())
    meta[mock_maintman.SETTINGS_KEY] = {"interval": 0.05}
    write_json_atomic(ws.site / "site.json", meta)
    src = new_client_file(ws)
    dst = ws.server("DEMOAXP1") / LOGON_X86 / "PCMWIN32.EXE"
    site = MockSite(ws.site)
    site.start_work_cycle()
    try:
        deadline = time.monotonic() + 30
        while dst.read_bytes() != src.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dst.read_bytes() == src.read_bytes()
        assert "(work cycle)" in log_text(ws)
    finally:
        site.close()
    # closed: no further cycle runs
    size = len(log_text(ws))
    time.sleep(0.3)
    assert len(log_text(ws)) == size


def test_work_cycle_waits_while_the_executive_is_stopped(ws: Workspace):
    meta = json.loads((ws.site / "site.json").read_text())
    meta[mock_maintman.SETTINGS_KEY] = {"interval": 0.05}
    write_json_atomic(ws.site / "site.json", meta)
    site = MockSite(ws.site)
    site.services("DEMOSRV").stop("SMS_EXECUTIVE")
    new_client_file(ws)
    dst = ws.server("DEMOLOG1") / LOGON_X86 / "PCMWIN32.EXE"
    before = dst.read_bytes()
    site.start_work_cycle()
    try:
        time.sleep(0.4)
        assert dst.read_bytes() == before
    finally:
        site.close()


def test_apply_replicates_the_hotfix_client_files_and_rollback_brings_the_old_ones_back(ws: Workspace):
    before = {s: (ws.server(s) / LOGON_X86 / "PCMWIN32.EXE").read_bytes() for s in LOGON_SERVERS}
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    payload = (ws.path / "payloads" / "q241656" / "x86" / "Pcmwin32.exe").read_bytes()
    for s in LOGON_SERVERS:  # the playbook restarts SMS_EXECUTIVE: its first cycle replicates
        assert (ws.server(s) / LOGON_X86 / "PCMWIN32.EXE").read_bytes() == payload
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    for s in LOGON_SERVERS:
        assert (ws.server(s) / LOGON_X86 / "PCMWIN32.EXE").read_bytes() == before[s]


def test_maintman_log_evidence_names_what_happened_per_server(ws: Workspace):
    from deployer.sms import maintman_log

    site = MockSite(ws.site)
    files = site.files("DEMOSRV")
    offset = maintman_log.size(files)
    assert offset > 0  # the lab's first cycle wrote its lines
    new_client_file(ws)
    folder = ws.server("DEMOAXP1") / LOGON_X86
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with hold_open(site.server_dir("DEMOLOG1"), r"LOGON.SRV\X86.BIN\PCMWIN32.EXE"):
            mock_maintman.run_cycle(site, "test")
    finally:
        folder.chmod(0o755)
    ev = maintman_log.read_since(files, offset)
    assert ev.of("demolog1").worked_on == 1 and ev.of("DEMOAXP1").worked_on == 1
    assert ev.of("DEMOLOG1").in_use == [r"X86.BIN\PCMWIN32.EXE"]
    assert ev.of("DEMOAXP1").failures and "access is denied" in ev.of("DEMOAXP1").failures[0]
    assert ev.describe("DEMOAXP1").startswith("Maintman.log: Failed to perform replication on server DEMOAXP1")
    assert "in use on DEMOLOG1" in ev.describe("DEMOLOG1")
    assert ev.describe("OTHER") == "Maintman.log: no cycle has reached OTHER yet"
    # only what came after the offset counts; a log replaced by a shorter one is read from its start
    assert maintman_log.read_since(files, maintman_log.size(files)).servers == {}
    (ws.server("DEMOSRV") / "LOGS" / "MAINTMAN.LOG").write_text("~Working on logon server DEMOLOG1  $$<x><y>\r\n")
    assert maintman_log.read_since(files, offset).of("DEMOLOG1").worked_on == 1
    (ws.server("DEMOSRV") / "LOGS" / "MAINTMAN.LOG").unlink()
    assert maintman_log.read_since(files, 0).servers == {}  # tracing off: no evidence, no error


@pytest.mark.parametrize("value", ["soon", -1, True, 10**9])
def test_a_bad_work_cycle_interval_is_refused_clearly(ws: Workspace, value):
    meta = json.loads((ws.site / "site.json").read_text())
    meta[mock_maintman.SETTINGS_KEY] = {"interval": value}
    write_json_atomic(ws.site / "site.json", meta)
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "site.json: maintenance_manager.interval is" in r.err and "0 (off) to 86400" in r.err
    assert "Traceback" not in r.text


def test_interval_zero_turns_the_work_cycle_off(ws: Workspace):
    meta = json.loads((ws.site / "site.json").read_text())
    meta[mock_maintman.SETTINGS_KEY] = {"interval": 0}
    write_json_atomic(ws.site / "site.json", meta)
    new_client_file(ws)
    size = len(log_text(ws))
    site = MockSite(ws.site)
    site.start_work_cycle()
    try:
        time.sleep(0.3)
    finally:
        site.close()
    assert len(log_text(ws)) == size
