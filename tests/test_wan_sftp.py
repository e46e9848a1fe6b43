"""Round trips over SFTP as a budget (counted by the connection's meter: each time deployer
waits for an answer after sending, never timings): the DEMO site over a real OpenSSH server,
apply, a second run and verify. What keeps them low: LSTATs of many paths in flight at once
(stat_many), a folder listed once per session and kept up to date with deployer's own changes,
a listing in two round trips, a file read without an FSTAT first, read_file's stat and content
with one lookup, many files read at once, the planner's stats taken from its folder listings.
The durability and rollback guarantees are test_e2e_ssh.py's and test_ssh_target.py's, unchanged.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from conftest import Workspace
from servers.sshd import SshTestServer
from test_e2e_ssh import SITE, ssh_inventory

from deployer.targets.base import AccessDenied
from deployer.targets.sftp import SftpFiles
from deployer.targets.sftpbatch import read_found


@contextmanager
def _sftp(sshd: SshTestServer, root: Path) -> Iterator[SftpFiles]:
    conn = sshd.connection()
    files = SftpFiles("SSHTEST", conn, str(root))
    try:
        yield files
    finally:
        files.close()
        conn.close()


def _round_trips(err: str) -> dict[str, int]:
    """Each server's round trips from -v's traffic line on stderr."""
    found = dict(re.findall(r"(DEMO\w+): (\d+) round trips", err))
    assert found, err[-2000:]
    return {k: int(v) for k, v in found.items()}


def test_apply_second_run_and_verify_over_sftp_stay_within_their_round_trip_budgets(ws: Workspace,
                                                                                     sshd: SshTestServer):
    inventory = ssh_inventory(ws, sshd)
    before = ws.state()
    got = {}
    for label, args in [("apply", ("apply", ws.playbook)), ("second run", ("apply", ws.playbook)),
                        ("verify", ("verify", ws.playbook))]:
        r = ws.cli("-v", *args, "--site", SITE, *(("--yes",) if args[0] == "apply" else ()), "-i", inventory)
        assert r.code == 0, r.text
        got[label] = _round_trips(r.err)
    print(got)
    for label, budget in list(BUDGETS.items())[:3]:
        assert sum(got[label].values()) <= budget, (label, got[label])
    r = ws.cli("-v", "rollback", "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0, r.text
    assert ws.state() == before
    got["rollback"] = _round_trips(r.err)
    print(got["rollback"])
    assert sum(got["rollback"].values()) <= BUDGETS["rollback"], got["rollback"]


# the three servers together (apply 398, second run 136, verify 99, rollback 380 now: the journal's
# records grouped, the swaps' begins in one append, the uploads sent together, sftpwrite.py; apply
# 658, rollback 497 before); an sc.exe
# command counts one round trip, or two when the channel opened ahead for it (sshexec.py) was not
# answered yet (a poll right after a stop): the budgets allow two for each. With each backup and
# restore copied, renamed and listed one at a time and three round trips an sc.exe command:
# apply 1,296, second run 179, verify 160, rollback 1,985; before that (one LSTAT at a time, a
# listing again after each own change, four round trips a listing, an FSTAT before each read):
# apply 3,044, second run 520, verify 433
BUDGETS = {"apply": 450, "second run": 180, "verify": 165, "rollback": 450}


def test_kept_listings_follow_deployers_own_changes_and_stat_many_answers_as_stat(sshd: SshTestServer,
                                                                                  tmp_path: Path):
    root = tmp_path / "root"
    (root / "Bin").mkdir(parents=True)
    (root / "Bin" / "Base.dll").write_bytes(b"MZ1")
    (root / "Bin" / "Old.exe").write_bytes(b"MZ2")
    (root / "Bin" / "Link.dll").symlink_to(root / "Bin" / "Base.dll")
    with _sftp(sshd, root) as files:
        asked = ["BIN\\BASE.DLL", "Bin\\Base.dll", "Bin\\Nothing.dll", "Gone\\X.dll", "Bin", "Bin\\Old.exe"]
        assert files.stat_many(asked) == [files.stat(p) for p in asked]
        with pytest.raises(AccessDenied):
            files.stat_many(["Bin\\Link.dll"])  # a link below the SMS root is refused, as stat refuses it
        assert files.listing_is_stat
        files.listdir("Bin")  # holds a link: the planner is to ask stat(), which refuses it
        assert not files.listing_is_stat
        # each of deployer's own changes is in the kept listing: found in any case, or gone
        files.write_file("Bin\\New.dll", [b"new"])
        files.copy("Bin\\New.dll", "Bin\\Copy.dll")
        files.rename("Bin\\Old.exe", "Bin\\Moved.exe")
        files.remove("Bin\\Base.dll")
        files.mkdir("Bin\\Sub")
        files.write_file("Bin\\Sub\\In.dll", [b"in"])
        assert [s.name if s else None for s in files.stat_many(
            ["bin\\new.DLL", "BIN\\COPY.DLL", "bin\\moved.exe", "Bin\\old.exe", "Bin\\base.dll", "bin\\sub\\IN.DLL"])
        ] == ["New.dll", "Copy.dll", "Moved.exe", None, None, "In.dll"]
        files.remove("Bin\\Sub\\In.dll")
        files.rmdir("Bin\\Sub")
        assert files.stat("bin\\SUB") is None and files.stat("bin\\sub\\in.dll") is None
        # a name someone else adds to a listed folder, in another case, is still found (the
        # listing is taken again on a miss; only folders deployer made are trusted to be complete)
        (root / "Bin" / "Grow.dll").write_bytes(b"a" * 10)
        assert files.stat("bin\\GROW.DLL").name == "Grow.dll"
        files.makedirs("Bin\\Made\\Deeper")
        assert files.stat_many(["Bin\\Made", "Bin\\Made\\Deeper", "Bin\\Made\\Deeper\\X"])[2] is None
        # a file that grew or shrank after it was looked up is read to its end as it is now
        chunks = files.read_chunks("bin\\grow.dll", 4)
        first = next(chunks)
        (root / "Bin" / "Grow.dll").write_bytes(b"a" * 300_000)
        assert len(first + b"".join(chunks)) in (10, 300_000)  # the read may have been answered already
        (root / "Bin" / "Grow.dll").write_bytes(b"b" * 300_000)
        found = files._find("Bin\\Grow.dll")
        (root / "Bin" / "Grow.dll").write_bytes(b"c" * 700_000)
        with files._guard("open", "Bin\\Grow.dll"):
            handle = files._session().open_handle(found.path, 1)
        assert b"".join(read_found(files, found, handle, "Bin\\Grow.dll", 1 << 16)) == b"c" * 700_000
        (root / "Bin" / "Grow.dll").write_bytes(b"d" * 5)
        with files._guard("open", "Bin\\Grow.dll"):
            handle = files._session().open_handle(found.path, 1)
        assert b"".join(read_found(files, found, handle, "Bin\\Grow.dll", 1 << 16)) == b"d" * 5
        assert files.stat_sha256("bin\\GROW.dll")[0].name == "Grow.dll"
        assert files.stat_sha256("Bin") == (files.stat("Bin"), None)
        assert files.stat_sha256("Bin\\None.dll") == (None, None)


def test_batched_reads_answer_file_by_file_as_one_at_a_time_would(sshd: SshTestServer, tmp_path: Path):
    root = tmp_path / "root"
    (root / "Bin" / "Sub").mkdir(parents=True)
    (root / "Bin" / "Base.dll").write_bytes(b"MZ" * 200_000)  # several READs
    (root / "Bin" / "Empty.txt").write_bytes(b"")
    (root / "Bin" / "Small.txt").write_bytes(b"CopyListVersion=3\n")
    (root / "Bin" / "Link.dll").symlink_to(root / "Bin" / "Base.dll")
    with _sftp(sshd, root) as files:
        asked = ["Bin\\Base.dll", "BIN\\base.DLL", "Bin\\Empty.txt", "Bin\\Small.txt", "Bin\\Nothing.dll",
                 "Bin\\Sub", "Gone\\X.dll"]
        batched = files.stat_sha256_many(asked)
        assert batched == [files.stat_sha256(p) for p in asked]
        assert batched[1][0].name == "Base.dll" and batched[4] == (None, None) and batched[5][1] is None
        assert files.read_many(asked, 1000) == [None, None, b"", b"CopyListVersion=3\n", None, None, None]
        with pytest.raises(AccessDenied):
            files.stat_sha256_many(["Bin\\Small.txt", "Bin\\Link.dll"])  # a link is refused, as alone
