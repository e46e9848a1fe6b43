"""What an apply of one mock site asks of the local disk, counted (never timed): the journal is
opened once per run and server, not once per record; a file found in another case than on disk
is not stat'ed again after the lookup that found it; a rename asks which files are in use once;
reads and writes go straight to the fd. Every fsync stays: the count of durable writes is the
same as before these cuts (test_speed_paths.py holds the write-ahead order)."""

from __future__ import annotations

import builtins
import collections
import io
import os

import pytest
from conftest import Workspace
from servers.mock_target import make_mock_server

from deployer.simulator.fs import hold_open
from deployer.targets.base import SharingViolation


@pytest.fixture
def disk(monkeypatch):
    """Counts of opens (os.open and open()) and of os.stat + os.lstat by path, and the fsyncs."""
    counts: dict[str, collections.Counter] = {"open": collections.Counter(), "stat": collections.Counter()}
    fsyncs: list[int] = []

    def counted(kind: str, real):
        def call(path, *a, **k):
            if not isinstance(path, int):  # an fd: not a lookup of a path
                counts[kind][os.fspath(path)] += 1
            return real(path, *a, **k)
        return call

    real_fopen, real_fsync = builtins.open, os.fsync
    for mod, name, kind in ((os, "open", "open"), (builtins, "open", "open"), (io, "open", "open"),
                            (os, "stat", "stat"), (os, "lstat", "stat")):
        monkeypatch.setattr(mod, name, counted(kind, real_fopen if mod is not os else getattr(os, name)))
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    counts["fsync"] = fsyncs  # type: ignore[assignment]
    return counts


def _still_open(fd: int, dev: int, ino: int) -> bool:
    """Whether `fd` still holds that file (its number may have gone to another file since)."""
    try:
        s = os.fstat(fd)
    except OSError:
        return False
    return (s.st_dev, s.st_ino) == (dev, ino)


def _under(counter: collections.Counter, root) -> int:
    root = str(root)
    return sum(n for p, n in counter.items() if str(p).startswith(root))


def test_an_apply_opens_each_journal_once(ws: Workspace, disk):
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    journals = {p: n for p, n in disk["open"].items() if str(p).endswith("journal.jsonl")}
    lines = sum(len(open(p, "rb").read().splitlines()) for p in journals)
    assert journals and lines > 3 * len(journals)  # many records each
    # was one open per append (one per record or group of records): now one per journal and run
    assert set(journals.values()) == {1}, journals


def test_an_apply_of_one_mock_site_makes_fewer_opens_and_stats(ws: Workspace, disk):
    """The DEMO apply (three servers and a workstation, 19 actions) made 650 opens and 3,539
    stats and lstats of the lab's files before these cuts, and 101 fsyncs; 469 and 2,827 now,
    the fsyncs unchanged. The bounds leave room for Maintenance Manager's timed cycle,
    which runs in a thread and may take one more turn in a slow run."""
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    opens, stats = _under(disk["open"], ws.site), _under(disk["stat"], ws.site)
    assert opens < 530, opens
    assert stats < 3050, stats


def test_a_name_in_another_case_is_stat_once_after_its_listing(tmp_path, disk):
    """A lookup that walked to a name spelled in another case lstat'ed it (is it a link?) and then
    stat'ed it again for its attributes: the lstat's answer is used."""
    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    files.makedirs(r"SITE.SRV\X86.BIN")
    files.write_file(r"SITE.SRV\X86.BIN\PCMWIN32.EXE", [b"MZ"])
    assert files.stat(r"SITE.SRV\X86.BIN\Pcmwin32.exe") is not None  # the folder listed (and kept, once settled)
    disk["stat"].clear()
    assert files.stat(r"SITE.SRV\X86.BIN\Pcmwin32.exe").name == "PCMWIN32.EXE"
    found = site.sms_dir("TESTSRV") / "SITE.SRV" / "X86.BIN" / "PCMWIN32.EXE"
    assert disk["stat"][str(found)] == 1  # was 2: the lstat that refuses links, then a stat


def test_a_rename_asks_which_files_are_in_use_once(tmp_path, monkeypatch):
    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    files.makedirs(r"SITE.SRV\X86.BIN")
    files.write_file(r"SITE.SRV\X86.BIN\NEW.DLL", [b"MZ new"])
    files.write_file(r"SITE.SRV\X86.BIN\OLD.DLL", [b"MZ old"])
    asked = []
    real = files._locked
    monkeypatch.setattr(files, "_locked", lambda: asked.append(1) or real())
    files.rename(r"SITE.SRV\X86.BIN\NEW.DLL", r"SITE.SRV\X86.BIN\OLD.DLL", replace=True)
    assert len(asked) == 1  # was two: the source's check and the destination's, each 2 stats
    # and a file held open is still refused, at either end
    files.write_file(r"SITE.SRV\X86.BIN\NEW.DLL", [b"MZ new"])
    with hold_open(site.root / "TESTSRV", r"SITE.SRV\X86.BIN\OLD.DLL"):
        with pytest.raises(SharingViolation):
            files.rename(r"SITE.SRV\X86.BIN\NEW.DLL", r"SITE.SRV\X86.BIN\OLD.DLL", replace=True)
    with hold_open(site.root / "TESTSRV", r"SITE.SRV\X86.BIN\NEW.DLL"):
        with pytest.raises(SharingViolation):
            files.rename(r"SITE.SRV\X86.BIN\NEW.DLL", r"SITE.SRV\X86.BIN\OLD.DLL", replace=True)


def test_a_journal_renamed_or_removed_behind_the_mocks_back_is_not_written_through_its_kept_fd(tmp_path):
    """The kept fd serves only while the path still names its file: a journal set aside (renamed)
    or removed by another process gets a new file at the old name, and the set-aside one is left
    as it was. A full close (the site closed) releases every kept fd."""
    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    files.makedirs("RUNS")
    files.append(r"RUNS\JOURNAL.JSONL", b"one\n")
    files.append(r"RUNS\JOURNAL.JSONL", b"two\n")
    on_disk = site.sms_dir("TESTSRV") / "RUNS"
    (on_disk / "JOURNAL.JSONL").rename(on_disk / "ASIDE.JSONL")
    files.append(r"RUNS\JOURNAL.JSONL", b"three\n")
    assert (on_disk / "ASIDE.JSONL").read_bytes() == b"one\ntwo\n"
    assert (on_disk / "JOURNAL.JSONL").read_bytes() == b"three\n"
    (on_disk / "JOURNAL.JSONL").unlink()
    files.append(r"RUNS\journal.jsonl", b"four\n")  # another case: the same file on Windows
    assert (on_disk / "journal.jsonl").read_bytes() == b"four\n"
    files.rename(r"RUNS\journal.jsonl", r"RUNS\OLD.JSONL")  # the mock's own rename
    files.append(r"RUNS\journal.jsonl", b"five\n")
    assert (on_disk / "OLD.JSONL").read_bytes() == b"four\n"
    assert (on_disk / "journal.jsonl").read_bytes() == b"five\n"
    kept = list(files._appends.values())
    assert kept
    site.close()
    assert not any(_still_open(*k) for k in kept)  # closed with the site
    with hold_open(site.root / "TESTSRV", r"RUNS\journal.jsonl"):  # in use: refused as before
        with pytest.raises(SharingViolation):
            files.append(r"RUNS\journal.jsonl", b"six\n")


def test_records_through_the_kept_handle_do_not_ask_again_which_files_are_in_use(tmp_path, monkeypatch):
    """Windows checks sharing when a file is opened: a file held open by another program refuses
    the append that opens it; once deployer holds its handle, its records go through it without
    asking again (each ask was two stats). A program that opened the file later, denying writes,
    would itself be refused on Windows."""
    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    files.makedirs("RUNS")
    files.write_file(r"RUNS\JOURNAL.JSONL", b"")
    with hold_open(site.root / "TESTSRV", r"RUNS\JOURNAL.JSONL"):
        with pytest.raises(SharingViolation):  # held before deployer opened it: refused
            files.append(r"RUNS\JOURNAL.JSONL", b"refused\n")
    asked = []
    real = files._locked
    monkeypatch.setattr(files, "_locked", lambda: asked.append(1) or real())
    for i in range(10):
        files.append(r"RUNS\JOURNAL.JSONL", b"%d\n" % i)
    assert len(asked) == 1  # was ten: one per record
    on_disk = site.sms_dir("TESTSRV") / "RUNS" / "JOURNAL.JSONL"
    assert on_disk.read_bytes() == b"".join(b"%d\n" % i for i in range(10))


def test_a_site_dropped_without_close_leaves_no_file_open(tmp_path):
    """lab init and tests make sites they never close: their kept fds go with them."""
    import gc

    site = make_mock_server(tmp_path / "mock")
    files = site.files("TESTSRV")
    files.makedirs("RUNS")
    files.append(r"RUNS\JOURNAL.JSONL", b"one\n")
    kept = list(files._appends.values())
    assert kept
    del site, files
    gc.collect()
    assert not any(_still_open(*k) for k in kept)


def test_the_scm_event_log_is_opened_once_and_a_replaced_log_is_followed(tmp_path, disk):
    """Each service change appended its line to scm.log by open, write and close; the log is kept
    open now, and a log replaced or removed behind the mock's back (a test, a second process)
    gets the next lines, not the old file."""
    site = make_mock_server(tmp_path / "mock")
    scm = site.services("TESTSRV")
    name = next(iter(scm.current()["services"]))
    log = site.root / "TESTSRV" / "scm.log"
    for _ in range(3):
        scm.stop(name)
        scm.start(name)
    assert disk["open"][str(log)] == 1  # was six
    log.rename(log.with_name("scm.old"))
    scm.stop(name)
    assert log.read_text().count(" stopped") == 1
    assert log.with_name("scm.old").read_text().count(" stopped") == 3
    site.close()
