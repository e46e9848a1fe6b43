"""The mock target behaves like Windows: case-insensitive names, files of running services
locked, read-only files, service states and control codes per Q168682, the site reset."""

from __future__ import annotations

import pytest

from conftest import Workspace
from deployer.targets.base import (
    AccessDenied,
    AlreadyExists,
    NotADirectory,
    NotFound,
    PathNotFound,
    ServiceError,
    SharingViolation,
)
from deployer.targets.mock import MockSite


@pytest.fixture
def site(ws: Workspace) -> MockSite:
    return MockSite(ws.site)


def test_names_are_case_insensitive_and_keep_their_case(site: MockSite):
    f = site.files("DEMOSRV")
    st = f.stat(r"site.srv\x86.bin\pcmsvc32.exe")
    assert st is not None and st.name == "PCMSVC32.EXE"
    f.write_file(r"Site.Srv\X86.Bin\New.Dll", [b"x"])
    assert [e.name for e in f.listdir(r"SITE.SRV\X86.BIN") if e.name.lower() == "new.dll"] == ["New.Dll"]
    f.write_file(r"SITE.SRV\X86.BIN\NEW.DLL", [b"yy"])  # overwrites, keeps the first spelling
    assert f.stat(r"site.srv\x86.bin\new.dll").name == "New.Dll"
    assert f.stat(r"site.srv\x86.bin\new.dll").size == 2


def test_files_of_running_services_cannot_be_replaced(site: MockSite):
    f, scm = site.files("DEMOSRV"), site.services("DEMOSRV")
    f.write_file(r"SITE.SRV\X86.BIN\base.new", [b"new"])
    with pytest.raises(SharingViolation, match="being used by another process"):
        f.rename(r"SITE.SRV\X86.BIN\base.new", r"site.srv\x86.bin\base.dll", replace=True)
    with pytest.raises(SharingViolation):
        f.set_mtime(r"SITE.SRV\X86.BIN\BASE.DLL", 0)
    with pytest.raises(SharingViolation):
        f.remove(r"SITE.SRV\X86.BIN\SMSEXEC.EXE")
    assert b"".join(f.read_chunks(r"SITE.SRV\X86.BIN\BASE.DLL"))  # reading a loaded DLL is allowed
    scm.stop("SMS_EXECUTIVE")
    with pytest.raises(SharingViolation):  # PCM still has Base.dll loaded
        f.rename(r"SITE.SRV\X86.BIN\base.new", r"SITE.SRV\X86.BIN\BASE.DLL", replace=True)
    scm.stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    f.rename(r"SITE.SRV\X86.BIN\base.new", r"SITE.SRV\X86.BIN\BASE.DLL", replace=True)
    assert b"".join(f.read_chunks(r"SITE.SRV\X86.BIN\BASE.DLL")) == b"new"
    # Client.src files are run by workstations: nothing on the server holds them
    f.write_file(r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMWIN32.EXE", [b"ok"])


def test_errors_are_windows_errors(site: MockSite):
    f = site.files("DEMOSRV")
    assert f.stat(r"SITE.SRV\NOPE\X") is None
    with pytest.raises(NotFound) as e:
        list(f.read_chunks(r"SITE.SRV\X86.BIN\NOPE.DLL"))
    assert e.value.winerror == 2
    with pytest.raises(PathNotFound) as e:
        f.write_file(r"SITE.SRV\NOPE\X.DLL", [b""])
    assert e.value.winerror == 3
    with pytest.raises(PathNotFound, match="SYSTEM.MAP is a file, not a folder") as e:
        f.write_file(r"SYSTEM.MAP\X.DLL", [b""])
    assert e.value.winerror == 3
    with pytest.raises(NotADirectory) as e:
        f.listdir("SYSTEM.MAP")
    assert e.value.winerror == 267
    with pytest.raises(AlreadyExists):
        f.write_file("SYSTEM.MAP", [b""], exclusive=True)
    with pytest.raises(AlreadyExists):
        f.rename(r"LOGON.SRV\RUNSMS.BAT", r"LOGON.SRV\UPGRADE.BAT")


def test_read_only_files_are_refused(site: MockSite, ws: Workspace):
    f = site.files("DEMOSRV")
    (ws.server("DEMOSRV") / "SYSTEM.MAP").chmod(0o444)
    with pytest.raises(AccessDenied) as e:
        f.write_file("SYSTEM.MAP", [b"x"])
    assert e.value.winerror == 5
    with pytest.raises(AccessDenied):
        f.remove("system.map")


def test_service_states_and_errors(site: MockSite):
    scm = site.services("DEMOSRV")
    assert scm.query("sms_executive").state == "running"
    assert scm.stop("SMS_EXECUTIVE").state == "stopped"
    with pytest.raises(ServiceError) as e:
        scm.stop("SMS_EXECUTIVE")
    assert e.value.winerror == 1062
    assert MockSite(site.root).services("DEMOSRV").query("SMS_EXECUTIVE").state == "stopped"  # state lives on disk
    scm.start("SMS_EXECUTIVE")
    with pytest.raises(ServiceError) as e:
        scm.start("SMS_EXECUTIVE")
    assert e.value.winerror == 1056
    with pytest.raises(ServiceError) as e:
        scm.query("Spooler")
    assert e.value.winerror == 1060


@pytest.mark.parametrize("service,code,winerror", [
    ("SMS_EXECUTIVE", 194, 1052), ("SMS_PACKAGE_COMMAND_MANAGER_NT", 128, 1052), ("SMS_SITE_CONFIG_MANAGER", 100, 87),
    ("SMS_SITE_CONFIG_MANAGER", 133, 1052),
])
def test_control_codes_are_checked(site: MockSite, service, code, winerror):
    with pytest.raises(ServiceError) as e:
        site.services("DEMOSRV").control(service, code)
    assert e.value.winerror == winerror


def test_control_code_to_a_stopped_service_is_1062(site: MockSite):
    scm = site.services("DEMOSRV")
    scm.stop("SMS_SITE_CONFIG_MANAGER")
    with pytest.raises(ServiceError) as e:
        scm.control("SMS_SITE_CONFIG_MANAGER", 192)
    assert e.value.winerror == 1062


def test_site_reset_copies_site_srv_service_files_to_every_helper(site: MockSite, ws: Workspace):
    f = site.files("DEMOSRV")
    scm = site.services("DEMOSRV")
    scm.stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    scm.stop("SMS_EXECUTIVE")
    f.write_file(r"SITE.SRV\X86.BIN\PCMSVC32.EXE", [b"fixed pcm"])
    f.set_mtime(r"SITE.SRV\X86.BIN\PCMSVC32.EXE", 937_000_000 * 10**9)
    f.write_file(r"SITE.SRV\ALPHA.BIN\BASE.DLL", [b"fixed alpha base"])
    scm.control("SMS_SITE_CONFIG_MANAGER", 192)  # a plain watchdog cycle installs nothing
    assert (ws.server("DEMOLOG1") / "HELPER.SRV" / "X86.BIN" / "PCMSVC32.EXE").read_bytes() != b"fixed pcm"
    scm.control("SMS_SITE_CONFIG_MANAGER", 194)
    got = ws.server("DEMOLOG1") / "HELPER.SRV" / "X86.BIN" / "PCMSVC32.EXE"
    assert got.read_bytes() == b"fixed pcm" and got.stat().st_mtime_ns == 937_000_000 * 10**9
    assert (ws.server("DEMOAXP1") / "HELPER.SRV" / "ALPHA.BIN" / "BASE.DLL").read_bytes() == b"fixed alpha base"
    assert (ws.server("DEMOSRV") / "HELPER.SRV" / "X86.BIN" / "PCMSVC32.EXE").read_bytes() == b"fixed pcm"
    # the helper services on the logon servers were stopped around the copy and run again
    assert site.services("DEMOLOG1").query("SMS_PACKAGE_COMMAND_MANAGER_NT").state == "running"
    log = (ws.site / "DEMOLOG1" / "scm.log").read_text()
    assert "SMS_PACKAGE_COMMAND_MANAGER_NT stopped" in log and "SMS_PACKAGE_COMMAND_MANAGER_NT started" in log
