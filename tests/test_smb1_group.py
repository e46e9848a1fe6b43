"""A run over SMB1 groups what it can, as over SMB 2/3 (run/apply.py asks the transport's declared
capabilities: GROUPED_APPEND, RENAME_MANY, DEFERRED_WRITES), and keeps the write-ahead order,
checked on the wire of an NT1-only Samba (test_wan_smb1.py's site and wire):

- deferred writes (targets/smb1write.py): the prepare's uploads queued and sent together, each
  flushed before its CLOSE, with its write time; an error raised at the end, the other files
  written; nothing sent from a block left by an exception;
- the begin records of a run of swaps go out in ONE write-through WRITE, answered before the
  first rename it covers is sent; the renames then go out together; an action's "done" rides
  with the record after it;
- a kill between the grouped begins and the swaps is recovered.
Counts, never timings.
"""

from __future__ import annotations

import shutil
import signal
import uuid

from conftest import run_subprocess
from deferred_check import check_deferred_writes
from servers.samba import SHARE, Samba
from test_wan import Site
from test_wan_smb1 import SMB, _is_journal, _records, smb1_site, wire  # noqa: F401 - the fixtures

from deployer.targets.adapters import impacket_internals as lib
from deployer.targets.smb1 import Smb1FileTransport


def _trips(files) -> int:
    return sum(t.round_trips for t in files.link.meter.by_server.values())


def test_deferred_writes_go_out_together_with_their_write_times_and_errors_at_the_end(samba_nt1: Samba):
    link = samba_nt1.smb1_link()
    files = Smb1FileTransport("SAMBA1", link, SHARE)
    top = f"defer-{uuid.uuid4().hex[:8]}"
    root = samba_nt1.shares[SHARE] / top
    root.mkdir()
    try:
        files.connect()
        # created; written; timed, flushed and closed: ten files in three rounds (one at a time: 40)
        check_deferred_writes(files, top, root, [f"f{i}.bin" for i in range(10)], lambda: _trips(files), 4)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        link.close()


def _is_swap(entry: tuple) -> bool:
    """A rename of a staged file onto its destination: TRANS2 SET_FILE_INFORMATION on the staged
    file's handle whose data names the destination (a write time's carries no name)."""
    kind, command, name, detail, _ = entry
    if kind != "send" or command != SMB.SMB_COM_TRANSACTION2 or not name or ".~dpl" not in name.casefold() \
            or name.casefold().startswith(".deployer"):  # deployer's own files (known.json) are no site's
        return False
    setup, data = detail
    dest = name.rsplit("\\", 1)[-1].split(".~dpl", 1)[0]
    return setup == SMB.TRANS2_SET_FILE_INFORMATION and dest.encode("utf-16-le") in bytes(data)


def _answer(log: list[tuple], at: int, mid: int) -> tuple[int, int] | None:
    """(index, status) of the answer to the request sent at `at` under `mid`."""
    return next(((k, e[3]) for k, e in enumerate(log[at + 1:], at + 1) if e[0] == "answer" and e[4] == mid), None)


def test_the_swaps_begin_records_go_out_in_one_durable_write_before_any_swap(smb1_site: Site, wire):
    r = smb1_site.cli("apply", smb1_site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    log = wire.log
    writes = [(i, e[4], _records(e[3])) for i, e in enumerate(log)
              if e[0] == "send" and e[1] == SMB.SMB_COM_WRITE_ANDX and _is_journal(e[2])]
    carrying = [(i, mid, [rec["action"] for rec in recs if rec["event"] == "begin"]) for i, mid, recs in writes]
    carrying = [c for c in carrying if len(c[2]) > 1]
    assert len(carrying) == 1 and len(carrying[0][2]) >= 9, carrying  # one at a time: nine appends
    at, mid, _ = carrying[0]
    swaps = [i for i, e in enumerate(log) if _is_swap(e)]
    assert len(swaps) >= 9, swaps
    answered = _answer(log, at, mid)
    # write-through: answered OK means durable, and that came before the first rename went out
    assert answered is not None and answered[1] == 0 and answered[0] < min(swaps), (answered, min(swaps))
    # the renames went out together: all sent before the first rename's answer
    assert max(swaps) < min(_answer(log, i, log[i][4])[0] for i in swaps)  # type: ignore[index]
    # an action's "done" rides with the record after it (one append for both)
    alone = [[rec["event"] for rec in recs] for _, _, recs in writes if {rec["event"] for rec in recs} == {"done"}]
    assert alone == [], alone
    # the uploads went out together, each created after the append carrying its "staged" record was answered
    staged = next((i, m) for i, m, recs in writes if any(rec["event"] == "staged" for rec in recs))
    creates = [i for i, e in enumerate(log) if e[0] == "send" and e[1] == SMB.SMB_COM_NT_CREATE_ANDX and e[2]
               and ".~dpl" in e[2].casefold() and not e[2].casefold().startswith(".deployer")
               and e[3][0] != lib.FILE_OPEN]
    assert len(creates) >= 9 and _answer(log, *staged)[0] < min(creates)  # type: ignore[index]
    assert max(creates) < min(_answer(log, i, log[i][4])[0] for i in creates)  # type: ignore[index]


def test_a_kill_between_the_grouped_begins_and_their_swaps_is_recovered(smb1_site: Site):
    """apply is SIGKILLed after the swaps' begin records are durable and before any swap went
    out (action 5's `before` point, within the run of swaps); `recover` restores the site."""
    site = smb1_site
    before = site.ws.state()
    r = run_subprocess("apply", site.ws.playbook, "--site", "DEMO", "--yes", "-i", site.ws.inventory,
                       cwd=site.ws.path, env={"DEPLOYER_FAILPOINTS": "apply.action.5.before=kill"})
    assert r.code == -signal.SIGKILL, r.text
    (journal,) = site.share_dir.glob(".deployer/runs/*/journal.jsonl")
    begun = [rec["action"] for rec in _records(journal.read_bytes()) if rec["event"] == "begin"]
    assert 5 in begun and len(begun) >= 9, begun  # the run's begins durable together before the kill
    rec = site.cli("recover", "--site", "DEMO", "--yes", "--break-lock")
    assert rec.code == 1, rec.text  # rolled back
    assert site.ws.state() == before
