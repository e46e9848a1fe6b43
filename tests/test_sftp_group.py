"""A run over SFTP groups what it can, as over SMB 2/3 (run/apply.py asks the transport's declared
capabilities: GROUPED_APPEND, RENAME_MANY, DEFERRED_WRITES), and keeps the write-ahead order,
checked on the wire against a real OpenSSH server:

- deferred writes (targets/sftpwrite.py): the prepare's uploads queued and sent together, each
  file's data fsynced before its CLOSE and given its write time after its last write; an error
  raised at the end, the other files written; nothing sent from a block left by an exception;
- the begin records of a run of swaps go out in ONE append whose WRITE and fsync are answered
  before the first rename it covers is sent; the renames then go out together;
- the uploads go out after their "staged" records are answered;
- a kill between the grouped begins and the swaps is recovered.
Counts, never timings.
"""

from __future__ import annotations

import json
import signal
import struct
from pathlib import Path

from conftest import Workspace, run_subprocess
from deferred_check import check_deferred_writes
from paramiko.sftp import CMD_EXTENDED, CMD_HANDLE, CMD_OPEN, CMD_RENAME, CMD_STATUS, CMD_WRITE
from servers.sshd import SshTestServer
from test_e2e_ssh import SITE, ssh_inventory
from test_sftp_many import _rt, _string, sftp_wire  # noqa: F401 - the fixture
from test_wan_sftp import _sftp

from deployer.targets.temps import staged_name


def test_deferred_writes_go_out_together_with_their_write_times_and_errors_at_the_end(sshd: SshTestServer,
                                                                                       tmp_path: Path):
    root = tmp_path / "root"
    (root / "Bin").mkdir(parents=True)
    with _sftp(sshd, root) as files:
        files.listdir("Bin")  # the session up and the folder known, as a run's prepare has them
        # a run's staged names: no one else names a file so, so a kept listing's miss needs no new listing.
        # Looked up (find_many, as write_file looks up a name), opened, then written, fsynced, closed
        # and timed together: one at a time, ten files cost 60
        names = [staged_name(f"f{i}.dll", "20261207T200000Z-abcd") for i in range(10)]
        check_deferred_writes(files, "Bin", root / "Bin", names, lambda: _rt(files), 8)
        assert sorted(e.name for e in files.listdir("Bin") if e.name in names) == sorted(names)  # kept listing


def _journal_and_renames(log: list[tuple]) -> tuple[list[tuple[int, int, list[dict]]], dict[int, int], list[int]]:
    """(index, request, records) of each journal WRITE; index of each OK answer by request; the
    index of each rename sent onto a file outside deployer's folder."""
    opened: dict[tuple, str] = {}
    handles: dict[tuple, str] = {}
    writes, answered, renames = [], {}, []
    for i, (way, t, num, raw) in enumerate(log):
        if way == "send" and t == CMD_OPEN:
            opened[num] = _string(raw)[0].decode()
        elif way == "answer" and t == CMD_HANDLE and num in opened:
            handles[num[0], _string(raw)[0]] = opened.pop(num)
        elif way == "answer" and t == CMD_STATUS and struct.unpack(">I", raw[:4])[0] == 0:
            answered[num] = i
        elif way == "send" and t == CMD_WRITE:
            handle, pos = _string(raw)
            if handles.get((num[0], handle), "").endswith("journal.jsonl"):
                data = _string(raw, pos + 8)[0]
                writes.append((i, num, [json.loads(x) for x in data.decode().splitlines() if x.strip()]))
        elif way == "send" and (t == CMD_RENAME or (t == CMD_EXTENDED and _string(raw)[0] == b"posix-rename@openssh.com")):
            pos = 0 if t == CMD_RENAME else _string(raw)[1]
            src, pos = _string(raw, pos)
            dst = _string(raw, pos)[0].decode()
            if "/.deployer/" not in dst.casefold() and ".~dpl" in src.decode().casefold():
                renames.append(i)
    return writes, answered, renames


def test_the_swaps_begin_records_go_out_in_one_durable_append_before_any_swap(ws: Workspace, sshd: SshTestServer,
                                                                               sftp_wire):
    inventory = ssh_inventory(ws, sshd)
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0, r.text
    log = sftp_wire.log
    writes, answered, renames = _journal_and_renames(log)
    assert len(renames) >= 9, renames
    carrying = [(i, num, [rec["action"] for rec in recs if rec["event"] == "begin"]) for i, num, recs in writes]
    carrying = [c for c in carrying if len(c[2]) > 1]
    # one append carries the begins of the run of swaps (one a write before)
    assert len(carrying) == 1 and len(carrying[0][2]) >= 9, carrying
    at, num, _ = carrying[0]
    first = min(renames)
    # its WRITE and the fsync sent after it both answered OK before the first rename went out
    fsyncs = [k for k, (way, t, n, raw) in enumerate(log[at:first], at) if way == "send" and t == CMD_EXTENDED
              and n[0] == num[0] and _string(raw)[0] == b"fsync@openssh.com"]
    assert answered.get(num, first) < first, "a swap went out before its begin record was written"
    assert fsyncs and answered.get(log[fsyncs[0]][2], first) < first, "a swap went out before its begin was durable"
    # the renames went out together: all sent before the first rename's answer
    assert max(renames) < min(answered.get(log[k][2], len(log)) for k in renames)
    # an action's "done" rides with the record after it (one append, one round trip, for both)
    alone = [[rec["event"] for rec in recs] for _, _, recs in writes if {rec["event"] for rec in recs} == {"done"}]
    assert alone == [], alone
    # every upload went out after the append carrying its "staged" record was answered
    staged = next((i, n) for i, n, recs in writes if any(rec["event"] == "staged" for rec in recs))
    uploads = [i for i, (way, t, n, raw) in enumerate(log) if way == "send" and t == CMD_OPEN
               and ".~dpl" in _string(raw)[0].decode().casefold() and "/.deployer/" not in _string(raw)[0].decode()]
    assert uploads and answered[staged[1]] < min(uploads)


def test_a_kill_between_the_grouped_begins_and_their_swaps_is_recovered(ws: Workspace, sshd: SshTestServer):
    """apply is SIGKILLed after the swaps' begin records are durable and before any swap went
    out (action 5's `before` point, within the run of swaps); `recover` restores the site."""
    inventory = ssh_inventory(ws, sshd)
    before = ws.state()
    r = run_subprocess("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": "apply.action.5.before=kill"})
    assert r.code == -signal.SIGKILL, r.text
    runs = ws.cli("runs", "--site", SITE, "-i", inventory)
    assert "interrupted" in runs.out, runs.text
    rec = ws.cli("recover", "--site", SITE, "--yes", "--break-lock", "-i", inventory)
    assert rec.code == 1, rec.text
    assert ws.state() == before
