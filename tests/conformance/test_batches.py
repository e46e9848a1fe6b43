"""The batch interface (stat_many, stat_sha256, stat_sha256_many, read_many, listdir_many,
copy_many, rename_many) answers exactly as one call at a time does, over SMB 2/3 and SMB1
alike: the run's batched paths (run/batch.py, the Observer's prefetches, folders.py) rely
on it. Errors included: each pair's or path's own, the others still done."""

from __future__ import annotations

import hashlib
import os

import pytest

from conformance.adapters import FilesUnderTest
from deployer.targets.base import AccessDenied, NotADirectory, NotFound, TargetError

BATCHED = ["smb", "smb1"]
METHODS = ["stat_many", "stat_sha256", "stat_sha256_many", "read_many", "listdir_many", "copy_many", "rename_many"]


@pytest.fixture(params=BATCHED)
def batched(request) -> FilesUnderTest:
    return request.getfixturevalue(f"{request.param}_files_under_test")


def p(t: FilesUnderTest, *parts: str) -> str:
    return "\\".join((t.base, *parts))


def _files(t: FilesUnderTest) -> dict[str, bytes]:
    made = {"A.DLL": os.urandom(1000), "b.exe": b"", "C.SYS": os.urandom(200_000), "d.srv": os.urandom(65 << 10)}
    t.files.mkdir(p(t, "SUB"))
    for name, data in made.items():
        t.files.write_file(p(t, name), [data])
    return made


def test_every_batched_transport_offers_the_whole_interface(batched: FilesUnderTest):
    assert [m for m in METHODS if not callable(getattr(batched.files, m, None))] == []


def test_stats_listings_and_reads_in_batches_are_those_of_one_at_a_time(batched: FilesUnderTest):
    t = batched
    made = _files(t)
    asked = [p(t, n) for n in made] + [p(t, "SUB"), p(t, "nope.dll"), p(t, "no", "such.dll"), p(t, "a.dll")]
    assert t.files.stat_many(asked) == [t.files.stat(x) for x in asked]
    folders = [t.base, p(t, "SUB"), p(t, "A.DLL"), p(t, "gone")]
    listed = t.files.listdir_many(folders)
    assert listed[0] == t.files.listdir(t.base) and listed[1] == []
    assert [(e.name, e.size, e.is_dir) for e in listed[0]] == sorted(
        [(n, len(d), False) for n, d in made.items()] + [("SUB", 0, True)], key=lambda e: e[0].casefold())
    assert isinstance(listed[2], NotADirectory) and isinstance(listed[3], NotFound)
    files = [p(t, n) for n in made]
    got = t.files.stat_sha256_many(files + [p(t, "nope.dll"), p(t, "SUB")], [10, None, 5, 65 << 10, None, None])
    assert [sha for _, sha in got] == [hashlib.sha256(d).hexdigest() for d in made.values()] + [None, None]
    assert [st for st, _ in got] == [t.files.stat(x) for x in files + [p(t, "nope.dll"), p(t, "SUB")]]
    assert t.files.stat_sha256(p(t, "C.SYS")) == got[2]
    assert t.files.stat_sha256(p(t, "nope.dll")) == (None, None)
    assert t.files.read_many(files + [p(t, "SUB"), p(t, "nope.dll")], 100_000) == [
        made["A.DLL"], b"", None, made["d.srv"], None, None]


def test_a_listing_longer_than_one_answer_and_a_copy_longer_than_one_round(batched: FilesUnderTest):
    t = batched
    t.files.mkdir(p(t, "MANY"))
    names = sorted((f"file-with-a-long-name-{i:04}.dll" for i in range(300)), key=str.casefold)
    for name in names:
        t.files.write_file(p(t, "MANY", name), [name.encode()])
    listed = t.files.listdir_many([p(t, "MANY"), t.base])
    assert [e.name for e in listed[0]] == names and listed[0] == t.files.listdir(p(t, "MANY"))
    big = os.urandom(4 * (1 << 20) + 7)  # more WRITEs than the server lets be in flight at once
    t.files.write_file(p(t, "BIG.DLL"), [big])
    assert t.files.copy_many([(p(t, "BIG.DLL"), p(t, "BIG.BAK"))]) == [None]
    assert t.files.stat_sha256_many([p(t, "BIG.BAK"), p(t, "MANY", names[0])])[0][1] == hashlib.sha256(big).hexdigest()


def test_copies_and_renames_in_batches_are_those_of_one_at_a_time(batched: FilesUnderTest):
    t = batched
    made = _files(t)
    when = 937_015_200 * 10**9
    errors = t.files.copy_many([(p(t, "A.DLL"), p(t, "SUB", "A.BAK")), (p(t, "nope.dll"), p(t, "SUB", "N.BAK")),
                                (p(t, "C.SYS"), p(t, "SUB", "C.BAK")), (p(t, "b.exe"), p(t, "b.exe"))],
                               [None, None, when, None])
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[1], NotFound) and isinstance(errors[3], TargetError)
    assert b"".join(t.files.read_chunks(p(t, "SUB", "C.BAK"))) == made["C.SYS"]
    assert t.files.stat(p(t, "SUB", "C.BAK")).mtime_ns == when
    assert t.files.stat(p(t, "SUB", "A.BAK")).mtime_ns == t.files.stat(p(t, "A.DLL")).mtime_ns
    assert t.files.stat(p(t, "SUB", "N.BAK")) is None

    t.set_readonly(p(t, "d.srv"))
    errors = t.files.rename_many([(p(t, "SUB", "A.BAK"), p(t, "SUB", "C.BAK")), (p(t, "C.SYS"), p(t, "d.srv")),
                                  (p(t, "gone.dll"), p(t, "A.DLL"))], replace=True)
    assert errors[0] is None
    assert isinstance(errors[1], AccessDenied) and isinstance(errors[2], NotFound)
    assert b"".join(t.files.read_chunks(p(t, "SUB", "C.BAK"))) == made["A.DLL"]
    assert t.files.stat(p(t, "SUB", "A.BAK")) is None and t.files.stat(p(t, "C.SYS")) is not None


@pytest.mark.parametrize("dialect", BATCHED)
def test_the_folders_of_a_server_lost_mid_batch_are_unlisted_as_one_at_a_time(request, dialect: str):
    """run/folders.py asks a batch of listings at once: a server that fails (here a closed
    connection) leaves each folder unlisted, as asking one folder at a time does, instead of
    failing the whole check."""
    from deployer.run.folders import _names
    from deployer.targets.smb import SmbFileTransport
    from deployer.targets.smb1 import Smb1FileTransport
    from servers.samba import SHARE

    if dialect == "smb1":
        files = Smb1FileTransport("LOST", request.getfixturevalue("samba_nt1").smb1_link(), SHARE, owns_link=True)
    else:
        files = SmbFileTransport("LOST", request.getfixturevalue("samba").link(), SHARE, owns_link=True)
    files.connect()
    files.close()
    assert _names(files, ["SITE.SRV", "LOGON.SRV"]) == {"SITE.SRV": None, "LOGON.SRV": None} == {
        **_names(files, ["SITE.SRV"]), **_names(files, ["LOGON.SRV"])}


def test_a_path_the_server_refuses_in_a_batch_is_answered_as_its_own_error(batched: FilesUnderTest):
    """Each path's answers are its own even when the server refuses one path of the batch (here
    a name Windows forbids, ERROR_INVALID_NAME; on a site server also a folder the account may
    not read): the paths after it are answered as one call at a time answers them."""
    t = batched
    made = _files(t)
    bad = p(t, "bad|name")
    folders = [bad, p(t, "SUB"), t.base, p(t, "A.DLL")]
    listed = t.files.listdir_many(folders)
    assert isinstance(listed[0], TargetError) and listed[0].winerror == 123, listed[0]
    assert listed[1] == [] and listed[2] == t.files.listdir(t.base), listed[1:3]
    assert isinstance(listed[3], NotADirectory), listed[3]
    asked = [*(p(t, n) for n in made), bad]

    def answer(call):
        try:
            return call()
        except TargetError as exc:  # compared by kind and text: whose error it is
            return type(exc), str(exc)

    # the rest of the interface says of the refused path what one call at a time says
    assert answer(lambda: t.files.stat_many(asked)) == answer(lambda: [t.files.stat(x) for x in asked])
    assert answer(lambda: t.files.stat_sha256_many(asked)) == answer(lambda: [t.files.stat_sha256(x) for x in asked])
    assert answer(lambda: t.files.read_many(asked, 100_000)) == answer(
        lambda: [t.files.read_many([x], 100_000)[0] for x in asked])
