"""File conformance: the same behaviour from every target deployer can patch.

Windows semantics are the reference. Where a real test server is not Windows, the
adapter lists the difference and the test asserts what that server does instead.
"""

from __future__ import annotations

import os

import pytest

from conformance.adapters import NO_READONLY_ENFORCEMENT, NO_SHARING_VIOLATIONS, FilesUnderTest
from deployer.targets.base import AccessDenied, AlreadyExists, NotFound, PathNotFound, SharingViolation

SEPT_10_1999_7PM_PDT = 937_015_200 * 10**9  # 9/10/99 7:00 PM in America/Los_Angeles, as UTC ns


def p(t: FilesUnderTest, *parts: str) -> str:
    return "\\".join((t.base, *parts))


def read(t: FilesUnderTest, rel: str) -> bytes:
    return b"".join(t.files.read_chunks(rel))


def test_missing_paths(files_target: FilesUnderTest):
    t = files_target
    assert t.files.stat(p(t, "nope.dll")) is None
    assert t.files.stat(p(t, "no", "such", "folder.dll")) is None
    with pytest.raises(NotFound):
        read(t, p(t, "nope.dll"))
    with pytest.raises(PathNotFound) as e:
        t.files.write_file(p(t, "nofolder", "x.dll"), [b"x"])
    assert e.value.winerror == 3
    with pytest.raises(NotFound):
        t.files.remove(p(t, "nope.dll"))
    with pytest.raises(NotFound):
        t.files.rename(p(t, "nope.dll"), p(t, "other.dll"))


def test_path_through_a_file_is_path_not_found(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "X86.BIN"), [b"a file where a folder should be"])
    assert t.files.stat(p(t, "X86.BIN", "BASE.DLL")) is None
    with pytest.raises(PathNotFound):
        t.files.write_file(p(t, "X86.BIN", "BASE.DLL"), [b"x"])


def test_write_read_stat_listdir(files_target: FilesUnderTest):
    t = files_target
    big = os.urandom(3 * (1 << 20) + 12345)  # several chunks, not a multiple of any buffer
    n = t.files.write_file(p(t, "BIG.DLL"), [big[i:i + 65536] for i in range(0, len(big), 65536)])
    assert n == len(big)
    st = t.files.stat(p(t, "BIG.DLL"))
    assert st is not None and st.size == len(big) and not st.is_dir
    assert read(t, p(t, "BIG.DLL")) == big
    import hashlib

    assert t.files.sha256(p(t, "BIG.DLL")) == hashlib.sha256(big).hexdigest()
    t.files.write_file(p(t, "BIG.DLL"), [b"short"])  # truncates
    assert read(t, p(t, "BIG.DLL")) == b"short"
    t.files.makedirs(p(t, "A", "B", "C"))
    t.files.makedirs(p(t, "A", "B", "C"))  # exists: fine
    assert t.files.stat(p(t, "A", "B")).is_dir
    names = {e.name: e for e in t.files.listdir(t.base)}
    assert set(names) == {"BIG.DLL", "A"}
    assert names["BIG.DLL"].size == 5 and names["A"].is_dir


def test_exclusive_create(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "LOCK"), [b"one"], exclusive=True)
    with pytest.raises(AlreadyExists):
        t.files.write_file(p(t, "lock"), [b"two"], exclusive=True)
    assert read(t, p(t, "LOCK")) == b"one"


def test_write_times_are_set_and_read_back(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "PCMSVC32.EXE"), [b"x" * 1000])
    t.files.set_mtime(p(t, "PCMSVC32.EXE"), SEPT_10_1999_7PM_PDT)
    st = t.files.stat(p(t, "PCMSVC32.EXE"))
    assert abs(st.mtime_ns - SEPT_10_1999_7PM_PDT) < t.mtime_resolution_ns
    # a later write time (and one after 2038) survives too
    t.files.set_mtime(p(t, "PCMSVC32.EXE"), 4_102_444_800 * 10**9)  # 2100-01-01
    assert abs(t.files.stat(p(t, "PCMSVC32.EXE")).mtime_ns - 4_102_444_800 * 10**9) < t.mtime_resolution_ns


def test_rename_and_atomic_replace(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "BASE.DLL"), [b"old"])
    t.files.write_file(p(t, "BASE.DLL.~new"), [b"new"])
    with pytest.raises(AlreadyExists):
        t.files.rename(p(t, "BASE.DLL.~new"), p(t, "BASE.DLL"))
    t.files.rename(p(t, "BASE.DLL.~new"), p(t, "BASE.DLL"), replace=True)
    assert read(t, p(t, "BASE.DLL")) == b"new"
    assert t.files.stat(p(t, "BASE.DLL.~new")) is None
    t.files.makedirs(p(t, "SUB"))
    t.files.rename(p(t, "BASE.DLL"), p(t, "SUB", "MOVED.DLL"))
    assert read(t, p(t, "SUB", "MOVED.DLL")) == b"new"


def test_copy_on_the_server_keeps_content_and_write_time(files_target: FilesUnderTest):
    t = files_target
    data = os.urandom(2 * (1 << 20) + 7)
    t.files.write_file(p(t, "SRC.DLL"), [data])
    t.files.set_mtime(p(t, "SRC.DLL"), SEPT_10_1999_7PM_PDT)
    t.files.makedirs(p(t, "BACKUP"))
    t.files.copy(p(t, "SRC.DLL"), p(t, "BACKUP", "SRC.DLL"))
    assert read(t, p(t, "BACKUP", "SRC.DLL")) == data
    assert abs(t.files.stat(p(t, "BACKUP", "SRC.DLL")).mtime_ns - SEPT_10_1999_7PM_PDT) < max(t.mtime_resolution_ns,
                                                                                               1_000_000_000)


def test_names_are_case_insensitive(files_target: FilesUnderTest):
    t = files_target
    t.files.makedirs(p(t, "SITE.SRV", "X86.BIN"))
    t.files.write_file(p(t, "SITE.SRV", "X86.BIN", "PCMSVC32.EXE"), [b"pcm"])
    st = t.files.stat(p(t, "Site.srv", "x86.bin", "Pcmsvc32.exe"))
    assert st is not None and st.name == "PCMSVC32.EXE"  # found, and keeps the case it was created with
    assert read(t, p(t, "site.srv", "X86.bin", "pcmsvc32.exe")) == b"pcm"
    t.files.write_file(p(t, "site.srv", "x86.bin", "pcmsvc32.exe.~new"), [b"new"])
    t.files.rename(p(t, "site.srv", "x86.bin", "pcmsvc32.exe.~new"), p(t, "Site.Srv", "X86.Bin", "PCMSVC32.EXE"),
                   replace=True)
    assert read(t, p(t, "SITE.SRV", "X86.BIN", "PCMSVC32.EXE")) == b"new"
    assert [e.name for e in t.files.listdir(p(t, "SITE.SRV", "X86.BIN"))] == ["PCMSVC32.EXE"]


def test_open_file_cannot_be_replaced_or_deleted(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "BASE.DLL"), [b"in use"])
    t.files.write_file(p(t, "BASE.DLL.~new"), [b"new"])
    with t.hold_open(p(t, "BASE.DLL")):
        if NO_SHARING_VIOLATIONS in t.differences:
            # Not Windows: no mandatory locks, so the replace goes through even while the file is open.
            t.files.rename(p(t, "BASE.DLL.~new"), p(t, "BASE.DLL"), replace=True)
            assert read(t, p(t, "BASE.DLL")) == b"new"
            return
        with pytest.raises(SharingViolation) as e:
            t.files.rename(p(t, "BASE.DLL.~new"), p(t, "BASE.DLL"), replace=True)
        assert e.value.winerror == 32
        with pytest.raises(SharingViolation):
            t.files.remove(p(t, "BASE.DLL"))
        with pytest.raises(SharingViolation):
            t.files.write_file(p(t, "BASE.DLL"), [b"overwrite"])
        assert read(t, p(t, "BASE.DLL")) == b"in use"  # reading stays possible
    t.files.rename(p(t, "BASE.DLL.~new"), p(t, "BASE.DLL"), replace=True)  # released: now it works
    assert read(t, p(t, "BASE.DLL")) == b"new"


def test_read_only_file_is_refused(files_target: FilesUnderTest):
    t = files_target
    t.files.write_file(p(t, "SYSTEM.MAP"), [b"map"])
    t.set_readonly(p(t, "SYSTEM.MAP"))
    if NO_READONLY_ENFORCEMENT in t.differences:
        t.files.write_file(p(t, "SYSTEM.MAP"), [b"changed"])
        return
    with pytest.raises(AccessDenied) as e:
        t.files.write_file(p(t, "SYSTEM.MAP"), [b"changed"])
    assert e.value.winerror == 5
    with pytest.raises(AccessDenied):
        t.files.remove(p(t, "SYSTEM.MAP"))
    assert read(t, p(t, "SYSTEM.MAP")) == b"map"


def test_append_and_remove(files_target: FilesUnderTest):
    t = files_target
    t.files.append(p(t, "journal.jsonl"), b'{"seq": 1}\n')
    t.files.append(p(t, "journal.jsonl"), b'{"seq": 2}\n')
    assert read(t, p(t, "journal.jsonl")) == b'{"seq": 1}\n{"seq": 2}\n'
    t.files.remove(p(t, "journal.jsonl"))
    assert t.files.stat(p(t, "journal.jsonl")) is None
    t.files.makedirs(p(t, "EMPTY"))
    t.files.rmdir(p(t, "EMPTY"))
    assert t.files.stat(p(t, "EMPTY")) is None
