"""Many changes on one SFTP server at once (targets/sftpmany.py), against a real OpenSSH server:
copy_many, rename_many and listdir_many answer pair by pair (folder by folder) as the calls one
at a time would, one pair's error never stops the others, and a batch costs a few round trips,
not a few per file (counted by the connection's meter, never timed). The run-level guarantees
(a backup's journal record only after its copy is durable; a rollback in batches) are checked
on the wire of a whole apply and rollback.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections import Counter
from pathlib import Path

import pytest
from conftest import Workspace
from paramiko.sftp import CMD_EXTENDED, CMD_HANDLE, CMD_OPEN, CMD_STATUS, CMD_WRITE
from servers.sshd import SshTestServer
from test_e2e_ssh import SITE, ssh_inventory
from test_wan_sftp import _sftp

from deployer.targets.adapters import paramiko_internals
from deployer.targets.base import AccessDenied, AlreadyExists, NotADirectory, NotFound, PathNotFound
from deployer.targets.sftp import SftpFiles


def _rt(files) -> int:
    return sum(t.round_trips for t in files.conn.meter.by_server.values())


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "Bin" / "Sub").mkdir(parents=True)
    for i in range(12):
        (root / "Bin" / f"F{i}.dll").write_bytes(b"MZ" + bytes([i]) * (1000 * i))
        os.utime(root / "Bin" / f"F{i}.dll", (1_000_000_000 + i, 1_000_000_000 + i))
    (root / "Bak").mkdir()
    return root


def test_copy_many_copies_each_pair_as_copy_would_in_a_few_round_trips(sshd: SshTestServer, tmp_path: Path):
    root = _tree(tmp_path)
    (root / "Bak" / "Taken.dll").write_bytes(b"old")
    with _sftp(sshd, root) as files:
        files.makedirs("Bak")
        pairs = [(f"Bin\\F{i}.dll" if i else "BIN\\f0.DLL", f"Bak\\F{i}.dll") for i in range(12)]
        pairs += [("Bin\\Missing.dll", "Bak\\Missing.dll"),  # no source
                  ("Bin\\Sub", "Bak\\Sub.dll"),  # a folder as source
                  ("Bin\\F1.dll", "Bin\\Sub"),  # a folder as destination
                  ("Bin\\F2.dll", "Gone\\F2.dll"),  # no folder for the copy
                  ("Bin\\F3.dll", "Bak\\Taken.dll")]  # an existing file: replaced, as copy() replaces
        mtimes = [None] * len(pairs)
        mtimes[5] = 1_500_000_000 * 10**9  # the copy's own write time, as set_mtime would set it
        before = _rt(files)
        good = files.copy_many(pairs[1:12], mtimes[1:12])  # names as stored, a new file each
        spent = _rt(files) - before
        errors = files.copy_many([pairs[0]] + pairs[12:], [mtimes[0]] + mtimes[12:])
        errors = [errors[0]] + good + errors[1:]
    kinds = [type(e) if e is not None else None for e in errors]
    assert kinds == [None] * 12 + [NotFound, AccessDenied, AccessDenied, PathNotFound, None], errors
    for i in range(12):
        copy, src = root / "Bak" / f"F{i}.dll", root / "Bin" / f"F{i}.dll"
        assert copy.read_bytes() == src.read_bytes()
        assert int(copy.stat().st_mtime) == (1_500_000_000 if i == 5 else int(src.stat().st_mtime))
    assert (root / "Bak" / "Taken.dll").read_bytes() == (root / "Bin" / "F3.dll").read_bytes()
    assert not (root / "Bak" / "Missing.dll").exists() and not (root / "Bak" / "Sub.dll").exists()
    # one at a time: at least five round trips a copy (lookups, opens, copy+fsync, closes): 55
    print("copy_many round trips:", spent)
    # lookups, Bak looked up and listed once for the new names (a case-sensitive server might hold
    # them in another case), every OPEN, every copy+fsync+CLOSE+write time
    assert spent <= 6, spent


def test_rename_many_renames_each_pair_in_one_step_as_rename_would(sshd: SshTestServer, tmp_path: Path):
    root = _tree(tmp_path)
    for i in range(8):
        (root / "Bin" / f"F{i}.dll.~new").write_bytes(b"new%d" % i)
    (root / "Bin" / "F3.dll").chmod(0o444)  # read-only: refused, as on Windows
    with _sftp(sshd, root) as files:
        pairs = [(f"Bin\\F{i}.dll.~new", f"BIN\\f{i}.dll") for i in range(8)]
        pairs += [("Bin\\Nothing.~new", "Bin\\F9.dll"), ("Bin\\F10.dll", "Bin\\Sub")]
        before = _rt(files)
        errors = files.rename_many(pairs, replace=True)
        spent = _rt(files) - before
        assert [type(e) if e else None for e in errors] == [None] * 3 + [AccessDenied] + [None] * 4 + \
            [NotFound, AccessDenied], errors
        # what the kept listings say follows the renames (stat answers as the server does)
        assert files.stat("Bin\\F0.dll.~new") is None and files.stat("bin\\F0.DLL").size == 4
        assert [type(e) if e else None for e in files.rename_many([("Bin\\F11.dll", "Bin\\F1.dll")])] == \
            [AlreadyExists]  # without replace, as rename()
    for i in range(8):
        assert (root / "Bin" / f"F{i}.dll").read_bytes() == (b"MZ" + bytes([i]) * (1000 * i) if i == 3
                                                             else b"new%d" % i)
    assert (root / "Bin" / "F3.dll.~new").exists()
    print("rename_many round trips:", spent)
    # the lookups, the other-case names settled by one listing of the folder (a case-sensitive
    # server), every rename; one at a time: at least two a rename and a listing for each name (40)
    assert spent <= 8, spent


def test_listdir_many_lists_each_folder_as_listdir_would(sshd: SshTestServer, tmp_path: Path):
    root = _tree(tmp_path)
    (root / "Bin" / "Sub" / "Inner.txt").write_bytes(b"x")
    with _sftp(sshd, root) as files:
        files.folds_case()  # the session started (its limits asked) and the server's kind known
        before = _rt(files)
        assert [[e.name for e in got] for got in files.listdir_many(["Bin", "Bin\\Sub", "Bak"])] == \
            [[f"F{i}.dll" for i in sorted(range(12), key=str)] + ["Sub"], ["Inner.txt"], []]
        spent = _rt(files) - before
        asked = ["Bin", "bin\\SUB", "Bak", "Bin\\F1.dll", "Gone", "Gone\\Deeper"]
        got = files.listdir_many(asked)
        alone = []
        for p in asked:
            try:
                alone.append(files.listdir(p))
            except Exception as exc:  # noqa: BLE001 - compared by kind below
                alone.append(exc)
    for a, b in zip(got, alone):
        assert (type(a), str(a)) == (type(b), str(b)) if isinstance(b, Exception) else a == b
    assert [type(g) for g in got[3:]] == [NotADirectory, NotFound, PathNotFound]
    assert [e.name for e in got[1]] == ["Inner.txt"]
    # the lookups, every OPENDIR, two READDIRs of each; one at a time: three a folder (9)
    assert spent <= 3, spent


def test_a_kept_listing_never_answers_a_missing_name_with_a_file_named_none(sshd: SshTestServer, tmp_path: Path):
    """On a case-sensitive server, a name missing from a folder's kept listing used to be tried
    as `<folder>/None` (the spelling it did not have): a file of that name answered for it."""
    root = tmp_path / "root"
    (root / "Bin").mkdir(parents=True)
    (root / "Bin" / "Base.dll").write_bytes(b"MZ")
    (root / "Bin" / "None").write_bytes(b"not this one")
    with _sftp(sshd, root) as files:
        assert files.stat("Bin\\BASE.dll").name == "Base.dll"  # a miss in this case: the folder is listed, kept
        assert files.stat("Bin\\Missing.dll") is None
        with pytest.raises(NotFound):
            files.sha256("Bin\\Missing.dll")


def test_a_runs_own_temporary_name_missing_from_a_kept_listing_costs_one_lookup(sshd: SshTestServer,
                                                                                 tmp_path: Path):
    """On a case-sensitive server a name missing from a folder's kept listing is asked again by
    listing the folder (someone may have added it in another case since), except a run's own
    staged or restored copy (`NAME.~dpl-<run>-<purpose>`), which only deployer writes: its LSTAT
    is the answer (a rollback's temporary names used to list every touched folder again)."""
    root = _tree(tmp_path)
    with _sftp(sshd, root) as files:
        assert files.stat("Bin\\f1.DLL").name == "F1.dll"  # the folder listed (another case), kept
        before = _rt(files)
        assert files.stat_many(["Bin\\F1.dll.~dpl-ab12-restore", "Bin\\F2.dll.~dpl-ab12-new"]) == [None, None]
        assert files.stat("Bin\\F3.dll.~dpl-ab12-restore") is None
        own = _rt(files) - before
        (root / "Bin" / "new.DLL").write_bytes(b"added by someone else since the listing")
        before = _rt(files)
        assert files.stat("Bin\\New.dll").name == "new.DLL"  # any other name: the folder is listed again
        other = _rt(files) - before
    assert own == 2, own  # one LSTAT round for the two, one for the third: no listing
    assert other >= 3, other


# --- a whole run, on the wire -----------------------------------------------------------------------


class _Wire:
    """Every SFTP packet each way, in order: (direction, type, (client, request id), what it carries).
    A run may hold several SFTP sessions to one server (the journal's and a server's own), whose
    request ids and handles overlap: each is told apart by its client."""

    def __init__(self) -> None:
        self.log: list[tuple[str, int, tuple[int, int], object]] = []


@pytest.fixture
def sftp_wire(monkeypatch) -> _Wire:
    wire = _Wire()
    real_send, real_read = paramiko_internals.HookedSFTPClient._send_packet, \
        paramiko_internals.HookedSFTPClient._read_packet

    def send(self, t, packet):
        raw = packet.asbytes() if hasattr(packet, "asbytes") else bytes(packet)
        wire.log.append(("send", int(t), (id(self), struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else -1),
                         raw[4:]))
        return real_send(self, t, packet)

    def read(self):
        t, data = real_read(self)
        wire.log.append(("answer", int(t), (id(self), struct.unpack(">I", data[:4])[0] if len(data) >= 4 else -1),
                         data[4:]))
        return t, data

    monkeypatch.setattr(paramiko_internals.HookedSFTPClient, "_send_packet", send)
    monkeypatch.setattr(paramiko_internals.HookedSFTPClient, "_read_packet", read)
    return wire


def _string(raw: bytes, pos: int = 0) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">I", raw, pos)
    return raw[pos + 4:pos + 4 + n], pos + 4 + n


def test_a_backups_journal_record_goes_out_only_after_its_copy_is_durable(ws: Workspace, sshd: SshTestServer,
                                                                         sftp_wire: _Wire):
    inventory = ssh_inventory(ws, sshd)
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0, r.text
    log = sftp_wire.log
    opened: dict[int, str] = {}  # OPEN request id -> path
    handles: dict[tuple[int, bytes], str] = {}  # (client, handle) -> path
    asked: dict[int, tuple[str, str]] = {}  # request id -> (what, path)
    ok: list[tuple[int, str, str]] = []  # (index, what, path) of each answered-OK fsync or copy-data
    records: list[tuple[int, dict]] = []
    for i, (way, t, num, raw) in enumerate(log):
        if way == "send" and t == CMD_OPEN:
            opened[num] = _string(raw)[0].decode()
        elif way == "answer" and t == CMD_HANDLE and num in opened:
            handles[num[0], _string(raw)[0]] = opened.pop(num)
        elif way == "send" and t == CMD_EXTENDED:
            name, pos = _string(raw)
            if name in (b"fsync@openssh.com", b"copy-data"):
                handle = _string(raw, pos)[0]
                if name == b"copy-data":  # source handle, offset, length, then the destination's
                    handle = _string(raw, pos + len(handle) + 4 + 16)[0]
                asked[num] = (name.decode(), handles.get((num[0], handle), "?"))
        elif way == "answer" and t == CMD_STATUS and num in asked and struct.unpack(">I", raw[:4])[0] == 0:
            ok.append((i, *asked.pop(num)))
        elif way == "send" and t == CMD_WRITE:
            handle, pos = _string(raw)
            if handles.get((num[0], handle), "").endswith("journal.jsonl"):
                data = _string(raw, pos + 8)[0]
                records += [(i, json.loads(line)) for line in data.decode().splitlines() if line.strip()]
    backups = [(i, rec) for i, rec in records if rec["event"] == "backup"]
    assert len(backups) >= 20, len(backups)
    per_write = [sum(1 for j, _ in backups if j == i) for i in {i for i, _ in backups}]
    assert max(per_write) >= 3, "an action's backups' records are not appended together"
    for i, rec in backups:
        name = rec["backup"].replace("\\", "/").casefold()
        done = {what for j, what, path in ok if j < i and path.casefold().endswith(name)}
        assert done == {"copy-data", "fsync@openssh.com"}, f"{rec['backup']}'s record went out before its copy was durable"


def test_a_rollback_restores_in_batches_and_leaves_the_site_as_before(ws: Workspace, sshd: SshTestServer,
                                                                     sftp_wire: _Wire):
    inventory = ssh_inventory(ws, sshd)
    before = ws.state()
    assert ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory).code == 0
    sftp_wire.log.clear()
    rb = ws.cli("rollback", "--site", SITE, "--yes", "-i", inventory)
    assert rb.code == 0, rb.text
    assert ws.state() == before
    sent = [e for e in sftp_wire.log if e[0] == "send"]
    copies = [i for i, e in enumerate(sent) if e[1] == CMD_EXTENDED and _string(e[3])[0] == b"copy-data"]
    renames = [i for i, e in enumerate(sent) if e[1] == CMD_EXTENDED and _string(e[3])[0] == b"posix-rename@openssh.com"]
    assert len(copies) >= 20 and len(renames) >= 20, (len(copies), len(renames))
    # several in flight at once: renames sent one after another with no answer taken between
    log = sftp_wire.log
    back_to_back = sum(1 for a, b in zip(log, log[1:]) if a[0] == b[0] == "send" and a[1] == b[1] == CMD_EXTENDED
                       and _string(a[3])[0] == _string(b[3])[0] == b"posix-rename@openssh.com")
    assert back_to_back >= 10, back_to_back


def test_a_missing_backup_does_not_stop_the_restore_of_the_servers_other_files(ws: Workspace, sshd: SshTestServer):
    inventory = ssh_inventory(ws, sshd)
    before = ws.state()
    assert ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory).code == 0
    backups = [p for p in ws.server("DEMOSRV").glob(".deployer/runs/*/backup/*") if p.is_file()]
    # NNN-KK-name is one of action NNN's many files: one of the action with the most loses its backup
    per_action = Counter(p.name[:3] for p in backups if re.fullmatch(r"\d{3}-\d+-.+", p.name))
    action, count = per_action.most_common(1)[0]
    assert count >= 3, per_action
    gone = min(p for p in backups if p.name.startswith(action + "-"))
    gone.unlink()
    rb = ws.cli("rollback", "--site", SITE, "--yes", "-i", inventory)
    assert rb.code != 0 and "is missing; cannot restore" in rb.text, rb.text
    lost = gone.name.split("-", 2)[2].casefold()
    after = ws.state()
    files_before, files_after = before[0], after[0]
    off = sorted(k for k in set(files_before) | set(files_after) if files_before.get(k) != files_after.get(k))
    assert off and all(str(k).replace("\\", "/").rsplit("/", 1)[-1].casefold() == lost for k in off), off


def _through_a_proxy(inventory: Path, server: str, tmp_path: Path) -> "DelayProxy":
    """The inventory's `server` reached through a delay proxy on 127.0.0.1 (its key learned on
    first contact: the proxy's port is not the one known_hosts names)."""
    import yaml
    from servers.delay_proxy import DelayProxy

    inv = yaml.safe_load(inventory.read_text())
    entry = inv["sites"][SITE]["servers"][server]
    proxy = DelayProxy(entry["files"]["port"], delay=0.001).start()
    for part in ("files", "services"):
        entry[part].update(port=proxy.port, trust_on_first_use=True, known_hosts=str(tmp_path / "proxied_hosts"))
    inventory.write_text(yaml.safe_dump(inv, sort_keys=False))
    return proxy


def test_a_link_cut_while_a_batch_of_backups_is_in_flight_rolls_the_site_back(ws: Workspace, sshd: SshTestServer,
                                                                              tmp_path: Path, monkeypatch):
    """The site server's link goes down while a batch's copy-data, fsync and CLOSE requests are
    on their way (every OPEN answered): the apply fails, reconnects and rolls the site back."""
    from deployer.targets import sftpmany

    inventory = ssh_inventory(ws, sshd)
    proxy = _through_a_proxy(inventory, "DEMOSRV", tmp_path)
    before = ws.state()
    real = sftpmany._handle
    armed = {"done": False}

    def opened(replies, num):
        got = real(replies, num)
        if not armed["done"]:  # the batch's OPENs are all sent: its copies are next
            armed["done"] = True
            proxy.cut_after(150, stay_down=False)
        return got

    monkeypatch.setattr(sftpmany, "_handle", opened)
    try:
        r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
        runs = ws.cli("runs", "--site", SITE, "-i", inventory)
    finally:
        proxy.stop()
    assert proxy.cuts == 1, "the link was never cut"
    assert r.code == 1, r.text
    assert "connection" in r.err.lower(), r.err
    assert ws.state() == before
    assert runs.code == 0 and "rolled_back" in runs.out, runs.text


def test_a_link_cut_while_restores_are_in_flight_is_recovered(ws: Workspace, sshd: SshTestServer, tmp_path: Path,
                                                               monkeypatch):
    """The run fails late (its undo restores many files); the site server's link goes down while
    the restored copies' renames are on their way and stays down: the rollback cannot finish
    (exit 4, the way forward named), and `recover` restores the site once the link is back."""
    from servers.delay_proxy import DelayProxy

    from deployer import failpoints

    inventory = ssh_inventory(ws, sshd)
    proxy = _through_a_proxy(inventory, "DEMOSRV", tmp_path)
    before = ws.state()
    failpoints.arm("apply.action.16.after")  # a late failure: the undo has many files to put back
    real = SftpFiles.rename_many
    armed = {"done": False}

    def renaming(files, pairs, *, replace=False):
        if not armed["done"] and len(pairs) > 1:
            armed["done"] = True
            proxy.cut_after(200)  # part way into the batch's lookups and renames
        return real(files, pairs, replace=replace)

    monkeypatch.setattr(SftpFiles, "rename_many", renaming)
    try:
        r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
        assert (proxy.cuts, r.code, "deployer recover" in r.err) == (1, 4, True), r.text
        failpoints.reset()
        port = proxy.port
        proxy.stop()
        proxy = DelayProxy(sshd.port_for("DEMOSRV"), delay=0.001, listen_port=port).start()  # the link is back
        rec = ws.cli("recover", "--site", SITE, "--yes", "--break-lock", "-i", inventory)
    finally:
        failpoints.reset()
        proxy.stop()
    assert (rec.code, ws.state() == before) == (1, True), rec.text  # recover rolled the run back
