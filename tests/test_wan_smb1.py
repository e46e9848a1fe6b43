"""SMB1 in batches (targets/smb1batch.py: requests pipelined under their own Mids) keeps the
guarantees of one request at a time, checked on the wire of an NT1-only Samba behind a delay
proxy (DEMOSRV; the other servers on the mock):

- write-ahead: no request that changes a site file is sent before the journal records that
  announce it are durable (their write-through WRITE answered), and a backup's record goes out
  only after its copy was flushed and read back;
- a link cut while a batch's requests are in flight rolls the site back (at once, or through
  `deployer recover` once the link is back);
- round trips as budgets for apply, second run, verify and rollback (counts, never timings).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import Workspace
from test_wan import Site
from deployer.targets.adapters import impacket_internals as lib
from deployer.targets.adapters import impacket_pipeline
from hotfix import vendor_payloads
from servers.delay_proxy import DelayProxy
from servers.samba import files_spec, serve_over_smb, start_samba

SHARE = "SMS_SHRC"
ENV = "DEPLOYER_TEST_WAN_SMB1_PASSWORD"
JOURNAL = "journal.jsonl"
SMB = lib.SMB


@pytest.fixture
def smb1_site(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """DEMOSRV's SMS root on an NT1-only Samba through a delay proxy (2 ms each way)."""
    share_dir = ws.server("DEMOSRV")
    vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    samba = start_samba(tmp_path / "smbd", {SHARE: share_dir}, "smb1")
    proxy = DelayProxy(samba.port, delay=0.002).start()
    monkeypatch.setenv(ENV, samba.password)
    serve_over_smb(ws.inventory, "DEMOSRV", files_spec(samba, SHARE, ENV, "smb1", port=proxy.port, timeout=5))
    yield Site(ws, samba, proxy, share_dir)
    proxy.stop()
    samba.stop()


# --- the wire, as the client sends and takes it ------------------------------------------------


@dataclass
class Wire:
    """SMB1 requests in the order sent and answers in the order taken, with the file each names:
    ("send", command, name, detail, mid) and ("answer", command, name, status, mid)."""

    log: list[tuple] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)  # FID -> name
    sent: dict[int, tuple[int, str | None]] = field(default_factory=dict)  # Mid -> (command, name)

    def send(self, mid: int, command: int, name: str | None, detail) -> None:
        self.sent[mid] = (command, name)
        self.log.append(("send", command, name, detail, mid))

    def answer(self, mid: int, status: int) -> None:
        command, name = self.sent.pop(mid, (None, None))
        self.log.append(("answer", command, name, status, mid))


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Wire:
    w = Wire()
    S = lib.SignedSMB
    real = {n: getattr(S, n) for n in ("create_packet", "close_packet", "flush_packet", "send", "take_create",
                                       "send_write", "send_read", "_raw_reply", "_reply", "send_trans2_request")}

    def create_packet(self, tid, path, access, share, disposition, options, attributes=0):
        p = real["create_packet"](self, tid, path, access, share, disposition, options, attributes)
        p.wire = (SMB.SMB_COM_NT_CREATE_ANDX, path, (disposition, options))
        return p

    def close_packet(self, tid, fid):
        p = real["close_packet"](self, tid, fid)
        p.wire = (SMB.SMB_COM_CLOSE, w.names.get(fid), None)
        return p

    def flush_packet(self, tid, fid):
        p = real["flush_packet"](self, tid, fid)
        p.wire = (SMB.SMB_COM_FLUSH, w.names.get(fid), None)
        return p

    def send(self, packet):
        mid = real["send"](self, packet)
        command, name, detail = getattr(packet, "wire", (packet["Command"], None, None))
        w.send(mid, command, name, detail)
        return mid

    def take_create(self, mid):
        name = w.sent.get(mid, (None, None))[1]
        o = real["take_create"](self, mid)  # an error is logged by _reply
        w.names[o.fid] = name
        return o

    def send_write(self, tid, fid, offset, data):
        mid = real["send_write"](self, tid, fid, offset, data)
        w.send(mid, SMB.SMB_COM_WRITE_ANDX, w.names.get(fid), bytes(data))
        return mid

    def send_read(self, tid, fid, offset, length):
        mid = real["send_read"](self, tid, fid, offset, length)
        w.send(mid, SMB.SMB_COM_READ_ANDX, w.names.get(fid), None)
        return mid

    def send_trans2_request(self, tid, setup, params, data):
        mid = real["send_trans2_request"](self, tid, setup, params, data)
        fid = int.from_bytes(params[:2], "little") if setup == SMB.TRANS2_SET_FILE_INFORMATION else None
        w.send(mid, SMB.SMB_COM_TRANSACTION2, w.names.get(fid) if fid is not None else None, (setup, data))
        return mid

    def answered(fn):
        def wrapped(self, command, mids):
            wanted = {mids} if isinstance(mids, int) else set(mids)
            try:
                got = fn(self, command, mids)
            except lib.SessionError as exc:
                (mid,) = [m for m in wanted if m in w.sent][:1] or [None]
                w.answer(mid, lib.status_of(exc) or 1)
                raise
            raw = got if isinstance(got, bytes) else got.getData()
            w.answer(int.from_bytes(raw[30:32], "little"), 0)
            return got
        return wrapped

    for name, fn in (("create_packet", create_packet), ("close_packet", close_packet), ("flush_packet", flush_packet),
                     ("send", send), ("take_create", take_create), ("send_write", send_write),
                     ("send_read", send_read), ("send_trans2_request", send_trans2_request)):
        monkeypatch.setattr(S, name, fn)
    monkeypatch.setattr(S, "_raw_reply", answered(real["_raw_reply"]))
    monkeypatch.setattr(S, "_reply", answered(real["_reply"]))
    return w


def _is_journal(name: str | None) -> bool:
    return bool(name) and name.casefold().endswith(JOURNAL)


def _site_change(command: int, name: str | None, detail) -> bool:
    """A request that changes a file or folder of the site (deployer's own folder excepted)."""
    if name is None or name.casefold().startswith(".deployer"):
        return False
    if command == SMB.SMB_COM_WRITE_ANDX:
        return True
    if command == SMB.SMB_COM_NT_CREATE_ANDX:
        disposition, options = detail
        return disposition != lib.FILE_OPEN or bool(options & lib.FILE_DELETE_ON_CLOSE)
    if command == SMB.SMB_COM_TRANSACTION2:
        return detail[0] == SMB.TRANS2_SET_FILE_INFORMATION
    return command == SMB.SMB_COM_RENAME


def durable_records_before_each_change(log: list[tuple]) -> list[tuple[int, str, list[dict]]]:
    """For each site-changing request: (command, name, the journal records durable when it was
    sent). An SMB1 journal WRITE is write-through: its records are durable once it is answered."""
    in_flight: dict[int, bytes] = {}  # Mid of a journal WRITE -> its bytes
    durable = b""
    out = []
    for kind, command, name, detail, mid in log:
        if kind == "send" and command == SMB.SMB_COM_WRITE_ANDX and _is_journal(name):
            in_flight[mid] = detail
        elif kind == "send" and _site_change(command, name, detail):
            out.append((command, name, _records(durable)))
        elif kind == "answer" and mid in in_flight:
            data = in_flight.pop(mid)
            if detail == 0:
                durable += data
    return out


def _records(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def test_every_change_on_the_wire_follows_its_durable_journal_record(smb1_site: Site, wire: Wire):
    r = smb1_site.cli("apply", smb1_site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    changes = durable_records_before_each_change(wire.log)
    assert len(changes) > 20, "no change to the site was seen on the wire"
    for command, name, records in changes:
        events = [e["event"] for e in records]
        assert "run" in events and "folders" in events, (command, name, events)
    # every backup's record went out after its copy was flushed and read back, request by request
    backups = 0
    for i, (kind, command, name, detail, _) in enumerate(wire.log):
        if kind != "send" or command != SMB.SMB_COM_WRITE_ANDX or not _is_journal(name):
            continue
        for rec in _records(detail):
            if rec["event"] != "backup" or rec["server"] != "DEMOSRV":
                continue
            backups += 1
            key = rec["backup"].casefold()
            before = [e for e in wire.log[:i] if e[0] == "answer" and (e[2] or "").casefold() == key and e[3] == 0]
            assert any(e[1] == SMB.SMB_COM_FLUSH for e in before), f"{rec['backup']}: journaled before its flush"
            assert any(e[1] == SMB.SMB_COM_READ_ANDX for e in before), f"{rec['backup']}: journaled unread"
    assert backups >= 10

    # and the undo's: each of its changes after its own first record is durable
    wire.log.clear()
    rb = smb1_site.cli("rollback", "--site", "DEMO", "--yes")
    assert rb.code == 0, rb.text
    undone = durable_records_before_each_change(wire.log)
    early = [name for _, name, records in undone if "rollback_begin" not in {e["event"] for e in records}]
    assert len(undone) > 9 and early == []


def _cut_in_the_first_round_of(what: str, site: Site, monkeypatch: pytest.MonkeyPatch, *, stay_down: bool) -> None:
    """The link cut part way through the first round of batched `what` requests (several in flight)."""
    real = impacket_pipeline.round_trip
    calls = {"n": 0}

    def cut(conn, requests):
        if not calls["n"] and sum(r.what == what for r in requests) > 4:
            calls["n"] += 1
            site.proxy.cut_after(100_000, stay_down=stay_down)
        return real(conn, requests)

    monkeypatch.setattr(impacket_pipeline, "round_trip", cut)


@pytest.mark.parametrize("stay_down", [False, True], ids=["back-at-once", "still-down-then-recovered"])
def test_a_link_cut_while_a_batch_is_in_flight_restores_the_site(smb1_site: Site, monkeypatch, stay_down: bool):
    site = smb1_site
    before = site.ws.state()
    _cut_in_the_first_round_of("write", site, monkeypatch, stay_down=stay_down)  # the backups' copies
    r = site.cli("apply", site.ws.playbook, "--site", "DEMO", "--yes")
    assert site.proxy.cuts == 1, "the link was never cut"
    if stay_down:  # nothing can be undone on a server that cannot be reached: recovered once the link is back
        assert r.code == 4 and "deployer recover" in r.err, r.text
        port = site.proxy.port
        site.proxy.stop()
        site.proxy = DelayProxy(site.samba.port, delay=0.002, listen_port=port).start()
        rec = site.cli("recover", "--site", "DEMO", "--yes", "--break-lock")
        assert rec.code == 1, rec.text  # rolled back: the run had not finished
    else:
        assert r.code == 1 and "connection" in r.err.lower(), r.text
        runs = site.cli("runs", "--site", "DEMO")
        assert runs.code == 0 and "rolled_back" in runs.out, runs.text
    assert site.ws.state() == before


# --- round trips as budgets ---------------------------------------------------------------------


def _round_trips(err: str, server: str = "DEMOSRV") -> int:
    """The server's round trips from -v's traffic line on stderr."""
    found = re.findall(rf"{server}: (\d+) round trips", err)
    assert found, err[-2000:]
    return int(found[-1])


# DEMOSRV alone (the other servers on the mock): one request at a time before the batches took
# apply 1,131, second run 132, verify 99, rollback 1,189; in batches 403, 38, 31, 256; with the
# journal's records grouped and the uploads sent together (smb1write.py) 184, 29, 22, 125
BUDGETS = {"apply": 200, "again": 34, "verify": 26, "rollback": 140}


def test_apply_second_run_verify_and_rollback_keep_their_round_trip_budgets(smb1_site: Site):
    site, ws = smb1_site, smb1_site.ws
    before = ws.state()
    got = {}
    for key, args in (("apply", ("apply", ws.playbook, "--yes")), ("again", ("apply", ws.playbook, "--yes")),
                      ("verify", ("verify", ws.playbook)), ("rollback", ("rollback", "--yes"))):
        r = ws.cli("-v", *args, "--site", "DEMO", "-i", ws.inventory)
        assert r.code == 0, r.text
        got[key] = _round_trips(r.err)
    print("DEMOSRV round trips over SMB1:", got)
    assert {k: v for k, v in got.items() if v > BUDGETS[k]} == {}, got
    assert ws.state() == before
    assert site.proxy.stats().turns > 0
