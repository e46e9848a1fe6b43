"""Pipelined SMB 2/3 runs (run/apply.py's batches, targets/smbpipe.py) keep the write-ahead
order and the way back, checked on the wire (tests/test_wan.py's Wire: every request in the
order sent, every answer in the order taken) and through a proxy that cuts the link:

- the begin records of a run of swaps go out in ONE durable append, acknowledged (its FLUSH
  answered) before any rename it covers is sent; the swaps then go out together;
- the uploads of the prepare go out together (every file's CREATE/WRITE/FLUSH before the
  first answer), and each handle is closed only after its FLUSH was answered;
- a link cut while the swaps are in flight, and still down: the run cannot finish its undo
  (exit 4), and `recover` restores the site once the link is back;
- round trips as budgets (counts, never times; the apply's and the rollback's in test_wan_batch.py).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from smbprotocol.header import Commands

from test_wan import JOURNAL, RENAME_CLASS, Site, Wire, _plan_paths, wan_site, wire  # noqa: F401 - the fixtures
from test_wan_batch import _journal_writes, _link_back, _round_trips


def _swaps(log: list[tuple], paths: dict[int, str]) -> list[tuple[int, str]]:
    """(index in the log, destination) of every rename onto a planned file."""
    wanted = set(paths.values())
    return [(i, e[3][1].casefold()) for i, e in enumerate(log)
            if e[0] == "send" and e[1] == Commands.SMB2_SET_INFO and e[3][0] == RENAME_CLASS
            and (e[3][1] or "").casefold() in wanted]


def test_the_begin_records_of_the_swaps_go_out_in_one_durable_append_before_any_of_them(wan_site: Site, wire: Wire):
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert r.code == 0, r.text
    paths = _plan_paths(wan_site.share_dir)
    swaps = _swaps(wire.log, paths)
    assert len(swaps) >= 9, swaps
    numbers = {p: n for n, p in paths.items()}
    writes = _journal_writes(wire.log)
    carrying = [(i, [rec["action"] for rec in recs if rec["event"] == "begin" and rec["action"] in paths])
                for i, recs in writes]
    carrying = [(i, acts) for i, acts in carrying if acts]
    # one append carries the begins of every swap of the run of replaces (one at a time: nine)
    assert len(carrying) == 1 and len(carrying[0][1]) >= 9, carrying
    at, begun = carrying[0]
    # ...and its FLUSH was answered before the first rename went out
    first_swap = min(i for i, _ in swaps)
    flushed = [i for i, e in enumerate(wire.log[at:first_swap], at) if e[0] == "answer"
               and e[1] == Commands.SMB2_FLUSH and (e[2] or "").casefold().endswith(JOURNAL) and e[3] == 0]
    assert flushed, "the swaps went out before their begin records were durable"
    assert all(numbers[dest] in begun for _, dest in swaps)
    # the swaps themselves went out together: every rename sent before the first one's answer
    answers = [i for i, e in enumerate(wire.log) if e[0] == "answer" and e[1] == Commands.SMB2_SET_INFO
               and i > first_swap]
    assert max(i for i, _ in swaps) < min(answers)


def test_the_uploads_go_out_together_and_each_is_durable_before_its_close(wan_site: Site, wire: Wire):
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    # the site files' staged copies (not deployer's own state beside the journal: known.json's temporary copy)
    staged = [(i, e[2]) for i, e in enumerate(wire.log) if e[0] == "send" and e[1] == Commands.SMB2_WRITE
              and ".~dpl" in (e[2] or "").casefold() and not (e[2] or "").casefold().startswith(".deployer\\")]
    assert len(staged) >= 9, staged
    names = {n for _, n in staged}
    first_answer = min(i for i, e in enumerate(wire.log) if e[0] == "answer" and e[2] in names)
    assert max(i for i, _ in staged) < first_answer, "an upload waited for another's answer"
    for name in names:
        flushed = min(i for i, e in enumerate(wire.log) if e[0] == "answer" and e[1] == Commands.SMB2_FLUSH
                      and e[2] == name and e[3] == 0)
        closed = min(i for i, e in enumerate(wire.log) if e[0] == "send" and e[1] == Commands.SMB2_CLOSE
                     and e[2] == name)
        assert flushed < closed, f"{name} was closed before its data was durable"


def test_a_link_cut_while_the_swaps_are_in_flight_is_recovered(wan_site: Site, monkeypatch):
    """The link goes down part way through the batch of renames (their begin records durable),
    and stays down: the undo cannot reach the server (exit 4, `recover` named); once the link
    is back, `recover` rolls the run back and the site is as before."""
    from deployer.targets import smbbatch

    before = wan_site.ws.state()
    real = smbbatch.compounds

    def cut_mid_swaps(link, tree, groups, related=True):
        renaming = len(groups) > 1 and all(len(g) == 3 and g[1][0].COMMAND == Commands.SMB2_SET_INFO
                                           and g[1][0]["file_info_class"].get_value() == RENAME_CLASS for g in groups)
        if renaming and not wan_site.proxy.cuts:
            wan_site.proxy.cut_after(900)  # a few of the renames reach the server, then nothing
        return real(link, tree, groups, related)

    monkeypatch.setattr(smbbatch, "compounds", cut_mid_swaps)
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert wan_site.proxy.cuts == 1, "the link was never cut"
    assert (r.code, "deployer recover" in r.err) == (4, True), r.text
    monkeypatch.setattr(smbbatch, "compounds", real)
    wan_site.proxy = _link_back(wan_site.proxy, wan_site.samba.port)
    rec = wan_site.cli("recover", "--site", "DEMO", "--yes", "--break-lock")
    assert (rec.code, wan_site.ws.state() == before) == (1, True), rec.text


# --- the transport's batches, against Samba ------------------------------------------------------


def _trips(files) -> int:
    return sum(t.round_trips for t in files.link.meter.by_server.values())


def test_deferred_writes_go_out_together_with_their_write_times_and_errors_at_the_end(samba):
    import hashlib

    import pytest

    from deployer.errors import AlreadyExists
    from deployer.targets.smb import SmbFileTransport

    files = SmbFileTransport("SAMBA", samba.link(), "SMS_SHRC", owns_link=True)
    top = f"defer-{uuid.uuid4().hex[:8]}"
    root = Path(samba.shares["SMS_SHRC"]) / top
    root.mkdir()
    blobs = {f"f{i}.bin": os.urandom(40_000 + 7_000 * i) for i in range(10)}
    try:
        files.connect()
        start = _trips(files)
        with files.deferred_writes():
            for i, (name, data) in enumerate(blobs.items()):
                files.write_file(f"{top}\\{name}", iter([data[:1000], data[1000:]]), exclusive=True)
                files.set_mtime(f"{top}\\{name}", 917_566_200_000_000_000 + i * 10_000_000)
            assert _trips(files) == start and not any(root.iterdir())  # nothing sent yet
        assert _trips(files) - start == 2  # ten files, their write times, flushed and closed
        for i, (name, data) in enumerate(blobs.items()):
            assert (root / name).read_bytes() == data
            assert (root / name).stat().st_mtime_ns == 917_566_200_000_000_000 + i * 10_000_000
        read = sum(t.bytes_read for t in files.link.meter.by_server.values())
        assert files.sha256(f"{top}\\f3.bin") == hashlib.sha256(blobs["f3.bin"]).hexdigest()
        assert sum(t.bytes_read for t in files.link.meter.by_server.values()) == read  # signed: known
        # another request sends the queue first; an existing file refused at the end, the others written
        with pytest.raises(AlreadyExists):
            with files.deferred_writes():
                files.write_file(f"{top}\\new.bin", [b"new"])
                assert [e.name for e in files.listdir(top) if e.name == "new.bin"] == ["new.bin"]
                files.write_file(f"{top}\\f0.bin", [b"clash"], exclusive=True)
                files.write_file(f"{top}\\late.bin", [b"late"])
        assert (root / "f0.bin").read_bytes() == blobs["f0.bin"] and (root / "late.bin").read_bytes() == b"late"
        # a block left by an exception sends nothing it queued
        with pytest.raises(RuntimeError):
            with files.deferred_writes():
                files.write_file(f"{top}\\never.bin", [b"x"])
                raise RuntimeError("cancelled")
        assert not (root / "never.bin").exists()
        # links in one round trip, each pair's error its own
        start = _trips(files)
        errors = files.hard_link_many([(f"{top}\\f1.bin", f"{top}\\f1.lnk"), (f"{top}\\gone", f"{top}\\gone.lnk"),
                                       (f"{top}\\f2.bin", f"{top}\\f2.lnk")])
        assert _trips(files) - start == 1
        assert errors[0] is None and errors[2] is None and errors[1] is not None
        assert (root / "f1.lnk").stat().st_ino == (root / "f1.bin").stat().st_ino
        # four folders deep, in one round trip
        start = _trips(files)
        files.makedirs(f"{top}\\a\\b\\c\\d")
        assert _trips(files) - start == 1 and (root / "a" / "b" / "c" / "d").is_dir()
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        files.close()


def test_every_runs_journal_is_read_in_one_round_trip(wan_site: Site):
    """`runs` (and the unfinished-run check before every command) lists the run folder and reads
    every run's journal in one batch: one round trip each, however many runs the site holds."""
    for _ in range(2):
        assert wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes").code == 0
        assert wan_site.cli("rollback", "--site", "DEMO", "--yes").code == 0
    r = wan_site.ws.cli("-v", "runs", "--site", "DEMO", "-i", wan_site.ws.inventory)
    assert r.code == 0, r.text
    assert r.out.count("rolled_back") == 2, r.out
    rt = _round_trips(r.err, "DEMOSRV")
    print("DEMOSRV runs round trips:", rt)
    assert rt <= RUNS_BUDGET


RUNS_BUDGET = 10  # logon and share (3), the runs folder listed, every journal read, the backup space listed per depth, logoff (20 one at a time)


def test_a_kill_between_the_batched_begins_and_their_swaps_is_recovered_with_the_append_torn(wan_site: Site):
    """apply is SIGKILLed after the swaps' begin records are durable and before any swap went
    out (action 5's `before` point, in the middle of the run of swaps), and that multi-record
    append is then torn part way through its third record (as a crash of the server mid-append
    would leave it: no change can have followed it). `recover` reads the journal as it is and
    restores the site."""
    import signal

    from conftest import run_subprocess

    before = wan_site.ws.state()
    r = run_subprocess("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes", "-i", wan_site.ws.inventory,
                       cwd=wan_site.ws.path, env={"DEPLOYER_FAILPOINTS": "apply.action.5.before=kill"})
    assert r.code == -signal.SIGKILL, r.text
    (journal,) = wan_site.share_dir.glob(".deployer/runs/*/journal.jsonl")
    lines = journal.read_bytes().split(b"\n")
    batch = [i for i, line in enumerate(lines) if b'"event": "begin"' in line and json.loads(line)["action"] >= 3]
    assert len(batch) >= 9 and batch == list(range(batch[0], batch[0] + len(batch))), lines  # written together
    journal.write_bytes(b"\n".join(lines[:batch[2]]) + b"\n" + lines[batch[2]][:25])
    rec = wan_site.cli("recover", "--site", "DEMO", "--yes", "--break-lock")
    assert rec.code == 1, rec.text  # rolled back
    assert wan_site.ws.state() == before
