"""What the mock site costs a run, counted (never timed), and that the short cuts keep its
behaviour: a folder that is there is found by one lookup, a name asked in another case than on
disk lists its folder once while the folder is unchanged (a name added there is seen at once),
scm.json is parsed once per change of the file (a change by another writer is seen), and a
backup copy keeps the write time and the read-only attribute and is durable."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from servers.mock_target import make_mock_server

from deployer.simulator import fs as fs_mod
from deployer.simulator.fs import hold_open, write_json_atomic
from deployer.targets import mock as mock_mod
from deployer.targets.base import AccessDenied, STOPPED, RUNNING, TargetError

FOLDER = r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN"


@pytest.fixture
def site(tmp_path: Path) -> mock_mod.MockSite:
    return make_mock_server(tmp_path / "mock")


@pytest.fixture
def calls(monkeypatch):
    """Counts of the file system calls the mock makes: stat, lstat, listdir, fsync."""
    counts = {"stat": 0, "lstat": 0, "listdir": 0, "fsync": 0}

    def counted(name, real):
        def call(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)
        return call

    for name in counts:
        monkeypatch.setattr(os, name, counted(name, getattr(os, name)))
    return counts


def _settle(path: Path) -> None:
    """Let the folder's last change grow older than the racy window (fs._RACY_NS)."""
    time.sleep(fs_mod._RACY_NS / 1e9 * 2)


def test_makedirs_of_a_folder_that_is_there_is_one_lookup(site, calls):
    files = site.files("TESTSRV")
    files.makedirs(FOLDER)
    for k in calls:
        calls[k] = 0
    files.makedirs(FOLDER)
    # the old way stat'ed every level (four here): one lstat finds the folder as spelled
    assert calls["stat"] + calls["lstat"] == 1 and calls["listdir"] == 0
    files.makedirs(FOLDER.lower())  # spelled in another case: still no folder made
    assert [e.name for e in files.listdir(r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC")] == ["X86.BIN"]


def test_makedirs_through_a_file_is_still_refused(site):
    files = site.files("TESTSRV")
    files.makedirs(r"SITE.SRV")
    files.write_file(r"SITE.SRV\NOTES.TXT", [b"not a folder"])
    with pytest.raises(TargetError, match="is a file, not a folder"):
        files.makedirs(r"SITE.SRV\NOTES.TXT\SUB")


def test_a_name_in_another_case_lists_its_folder_once_while_the_folder_is_unchanged(site, calls):
    files = site.files("TESTSRV")
    files.makedirs(FOLDER)
    files.write_file(FOLDER + r"\PCMWIN32.EXE", [b"MZ old"])
    _settle(site.sms_dir("TESTSRV"))
    for k in calls:
        calls[k] = 0
    for _ in range(10):
        assert files.stat(FOLDER + r"\Pcmwin32.exe").name == "PCMWIN32.EXE"
    assert calls["listdir"] == 1  # was one listing per lookup: ten


def test_a_name_added_to_a_listed_folder_is_seen_at_once(site):
    """The kept listing never hides a change: a twin made right after is refused, a file removed
    is missing, whatever the clock's granularity."""
    files = site.files("TESTSRV")
    files.makedirs(FOLDER)
    files.write_file(FOLDER + r"\PCMWIN32.EXE", [b"MZ old"])
    _settle(site.sms_dir("TESTSRV"))
    assert files.stat(FOLDER + r"\Pcmwin32.exe") is not None
    on_disk = site.sms_dir("TESTSRV").joinpath(*FOLDER.split("\\"))
    (on_disk / "pcmwin32.exe").write_bytes(b"MZ twin")  # another program, behind the mock's back
    with pytest.raises(TargetError, match="differ only in case"):
        files.stat(FOLDER + r"\Pcmwin32.EXE")
    (on_disk / "pcmwin32.exe").unlink()
    (on_disk / "PCMWIN32.EXE").unlink()
    assert files.stat(FOLDER + r"\Pcmwin32.exe") is None


def test_scm_state_is_parsed_once_per_change_and_a_change_elsewhere_is_seen(site, monkeypatch):
    reads = []
    real = mock_mod.MockServices._read
    monkeypatch.setattr(mock_mod.MockServices, "_read", lambda self: reads.append(1) or real(self))
    scm = site.services("TESTSRV")
    files = site.files("TESTSRV")
    name = next(iter(scm.current()["services"]))
    reads.clear()
    for _ in range(10):
        assert scm.query(name).state == RUNNING
        files.stat("SITE.SRV")  # and the in-use check, asked before every write
        scm.locked_paths()
    assert len(reads) <= 1  # was one parse per query and per in-use check: twenty
    scm.stop(name)
    assert scm.query(name).state == STOPPED  # our own change: read again
    # another writer (a second process, a test) replaces scm.json: seen on the next query
    state = json.loads((site.root / "TESTSRV" / "scm.json").read_text())
    state["services"][name]["state"] = RUNNING
    write_json_atomic(site.root / "TESTSRV" / "scm.json", state, durable=False)
    assert scm.query(name).state == RUNNING


def test_a_copy_keeps_write_time_and_read_only_and_is_durable(site, calls):
    files = site.files("TESTSRV")
    files.makedirs(FOLDER)
    src, dst = FOLDER + r"\BASE.DLL", FOLDER + r"\BASE.BAK"
    files.write_file(src, [b"MZ" + bytes(range(256)) * 512])
    files.set_mtime(src, 944_000_000 * 10**9)
    os.chmod(site.sms_dir("TESTSRV").joinpath(*src.split("\\")), 0o444)
    calls["fsync"] = 0
    files.copy(src, dst)
    assert calls["fsync"] >= 1  # a backup is on stable storage before the swap it protects
    a, b = files.stat(src), files.stat(dst)
    assert (b.size, b.mtime_ns, b.readonly) == (a.size, a.mtime_ns, True)
    assert files.sha256(src) == files.sha256(dst)
    on_disk = site.sms_dir("TESTSRV").joinpath(*dst.split("\\"))
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o444


def test_a_copy_onto_itself_is_refused_and_leaves_the_file(site):
    files = site.files("TESTSRV")
    files.makedirs(FOLDER)
    src = FOLDER + r"\BASE.DLL"
    files.write_file(src, [b"MZ keep me"])
    with pytest.raises(AccessDenied, match="onto itself"):
        files.copy(src, src.lower())  # the same file in another case: CopyFile refuses it
    assert b"".join(files.read_chunks(src)) == b"MZ keep me"


def test_a_service_change_reads_and_writes_scm_json_once_and_the_next_queries_read_nothing(site, monkeypatch):
    """Write-through: a stop or start reads scm.json once (under its lock) and writes it once;
    the queries and in-use checks after it use what was written, and handles.json is not read
    again for a service change. A change by another writer is still seen."""
    reads, held = [], []
    real_read, real_held = mock_mod.MockServices._read, mock_mod.held_open
    monkeypatch.setattr(mock_mod.MockServices, "_read", lambda self: reads.append(1) or real_read(self))
    monkeypatch.setattr(mock_mod, "held_open", lambda d: held.append(1) or real_held(d))
    scm = site.services("TESTSRV")
    name = next(iter(scm.current()["services"]))
    scm.locked_paths()
    reads.clear()
    held.clear()
    scm.stop(name)
    for _ in range(10):
        assert scm.query(name).state == STOPPED
        scm.locked_paths()
    scm.start(name)
    for _ in range(10):
        assert scm.query(name).state == RUNNING
        assert scm.locked_paths()  # the running services' images are locked again
    assert len(reads) == 2  # one per change (its read-modify-write); was four: each change read twice
    assert held == []  # handles.json unchanged: not read again (was once per service change)
    # another program holds a file open (handles.json replaced): seen at once
    with hold_open(site.root / "TESTSRV", r"SITE.SRV\X86.BIN\HELD.DLL"):
        assert r"site.srv\x86.bin\held.dll" in {k.casefold() for k in scm.locked_paths()}
    assert r"site.srv\x86.bin\held.dll" not in {k.casefold() for k in scm.locked_paths()}
    # another writer (a second process, a test) replaces scm.json: seen on the next query
    state = json.loads((site.root / "TESTSRV" / "scm.json").read_text())
    state["services"][name]["state"] = STOPPED
    write_json_atomic(site.root / "TESTSRV" / "scm.json", state, durable=False)
    assert scm.query(name).state == STOPPED


def test_a_site_hands_out_one_files_and_services_per_server_and_asks_reachability_each_time(site):
    files, scm = site.files("TESTSRV"), site.services("TESTSRV")
    # one object per server: its folder listings are kept (was a new MockFiles per call, listing again)
    assert site.files("testsrv") is files and site.services("TESTSRV") is scm
    (site.root / "TESTSRV" / mock_mod.OFFLINE).write_text("")
    with pytest.raises(mock_mod.ConnectFailed):
        site.files("TESTSRV")  # a machine turned off is refused though its transport is kept
    with pytest.raises(mock_mod.ConnectFailed):
        site.services("TESTSRV")


def test_maintenance_managers_log_lines_make_the_logs_folder_only_when_it_is_missing(site, monkeypatch):
    from deployer.simulator import maintman as mock_maintman
    from deployer.simulator.fs import MockFiles

    made = []
    real = MockFiles.makedirs
    monkeypatch.setattr(MockFiles, "makedirs", lambda self, p: made.append(p) or real(self, p))
    log = mock_maintman._Log(site.files("TESTSRV"))
    log.line("first")  # no Logs folder yet: made
    assert made == ["LOGS"]
    for i in range(5):
        log.line(f"line {i}")
    assert made == ["LOGS"]  # was one makedirs (a lookup) before each line
    text = b"".join(site.files("TESTSRV").read_chunks(r"LOGS\MAINTMAN.LOG")).decode()
    assert "first" in text and "line 4" in text
