"""Batched operations over SMB 2/3 (targets/smbbatch.py, run/batch.py) keep the guarantees of
one file at a time: an action's backups by server-side copy are made together (copies, their
read-backs and their journal records in the round trips of one), and

- a backup's journal record goes out only after its copy is durable on the server (its FLUSH
  answered) and read back, checked request by request on the wire;
- a link cut while a batch's requests are in flight rolls the site back;
- the undo restores files in batches too, and still leaves the site exactly as before.
Counts, never timings.
"""

from __future__ import annotations

import json

from smbprotocol.header import Commands

from test_wan import JOURNAL, Site, Wire, wan_site, wire  # noqa: F401 - the fixtures

BACKUP_PART = "\\backup\\"


def _journal_writes(log: list[tuple]) -> list[tuple[int, list[dict]]]:
    """(index in the log, records) of every WRITE sent to a run's journal."""
    out = []
    for i, (kind, command, name, detail, _) in enumerate(log):
        if kind == "send" and command == Commands.SMB2_WRITE and (name or "").casefold().endswith(JOURNAL):
            out.append((i, [json.loads(line) for line in detail.decode().splitlines() if line.strip()]))
    return out


def test_an_actions_backups_are_copied_read_back_and_journaled_together(wan_site: Site, wire: Wire):
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert r.code == 0, r.text
    # the site server's whole apply, in round trips: each batch costs what one backup used to
    traffic = json.loads(r.out)["traffic"]["servers"]["DEMOSRV"]
    print("DEMOSRV apply round trips:", traffic["round_trips"])
    assert traffic["round_trips"] <= APPLY_BUDGET
    writes = _journal_writes(wire.log)
    backups = [(i, rec) for i, recs in writes for rec in recs if rec["event"] == "backup" and not rec.get("linked")
               and rec["server"] == "DEMOSRV"]  # the other servers are on the mock, one at a time
    carrying = {i for i, _ in backups}
    # one journal WRITE per batch of backups, not one per backup
    assert len(backups) >= 10 and len(carrying) * 3 <= len(backups), (len(backups), len(carrying))
    copies = [e for e in wire.log if e[0] == "send" and e[1] == Commands.SMB2_IOCTL and e[3] == 0x001480F2]
    assert len(copies) >= len(backups)

    # write-ahead of the backups: each record's copy was flushed (answered) before the record was sent
    for i, rec in backups:
        name = rec["backup"].casefold()
        flushed = [e for e in wire.log[:i] if e[0] == "answer" and e[1] == Commands.SMB2_FLUSH
                   and (e[2] or "").casefold() == name and e[3] == 0]
        assert flushed, f"the record of {rec['backup']} went out before its copy was durable"
        read_back = [e for e in wire.log[:i] if e[0] == "answer" and e[1] == Commands.SMB2_READ
                     and (e[2] or "").casefold() == name]
        assert read_back, f"the record of {rec['backup']} went out before its copy was read back"


APPLY_BUDGET = 400  # DEMOSRV alone (the other servers on the mock): 475 when each backup was copied, read back and journaled on its own


def test_a_link_cut_while_a_batch_is_in_flight_rolls_the_site_back(wan_site: Site, monkeypatch):
    from deployer.targets import smbbatch

    before = wan_site.ws.state()
    real = smbbatch.compounds
    calls = {"n": 0}

    def cut_mid_batch(link, tree, groups, related=True):
        calls["n"] += 1
        if calls["n"] == 2 and len(groups) > 1:  # the destinations' creates and copies: cut part way through
            wan_site.proxy.cut_after(600, stay_down=False)
        return real(link, tree, groups, related)

    monkeypatch.setattr(smbbatch, "compounds", cut_mid_batch)
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert wan_site.proxy.cuts == 1, "the link was never cut"
    assert r.code == 1, r.text
    assert "connection" in r.err.lower()
    assert wan_site.ws.state() == before
    runs = wan_site.cli("runs", "--site", "DEMO")
    assert runs.code == 0 and "rolled_back" in runs.out, runs.text


# --- the undo, in batches -----------------------------------------------------------------------


def _round_trips(err: str, server: str) -> int:
    """DEMOSRV's round trips from -v's traffic line on stderr."""
    import re

    found = re.findall(rf"{server}: (\d+) round trips", err)
    assert found, err[-2000:]
    return int(found[-1])


def test_a_rollback_restores_each_servers_files_in_batches(wan_site: Site, wire: Wire):
    before = wan_site.ws.state()
    assert wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes").code == 0
    wire.log.clear()
    rb = wan_site.ws.cli("-v", "rollback", "--site", "DEMO", "--yes", "-i", wan_site.ws.inventory)
    assert rb.code == 0, rb.text
    assert wan_site.ws.state() == before
    # many restores per compound round: the copies back beside their files went out together
    copies = [e for e in wire.log if e[0] == "send" and e[1] == Commands.SMB2_IOCTL and e[3] == 0x001480F2]
    renames = [e for e in wire.log if e[0] == "send" and e[1] == Commands.SMB2_SET_INFO and e[3][1]]
    assert len(copies) >= 15 and len(renames) >= 15, (len(copies), len(renames))
    rt = _round_trips(rb.err, "DEMOSRV")
    print("DEMOSRV rollback round trips:", rt)
    assert rt <= ROLLBACK_BUDGET


ROLLBACK_BUDGET = 260  # DEMOSRV alone (the other servers on the mock): 511 when each file was restored on its own


def test_a_link_cut_while_restores_are_in_flight_is_recovered(wan_site: Site, monkeypatch):
    """The run fails late (its undo restores many files); the link goes down while the restored
    copies are being renamed into place, and stays down: the rollback cannot finish (exit 4,
    the journal says so), and `recover` restores the site once the link is back."""
    from deployer import failpoints
    from servers.delay_proxy import DelayProxy

    before = wan_site.ws.state()
    failpoints.arm("apply.action.16.after")  # a late failure: the undo has many files to put back
    cut = {"done": False}

    def cut_now(name):
        if not cut["done"]:
            cut["done"] = True
            wan_site.proxy.cut_after(300)  # part way into the renames' batch
    failpoints.arm("undo.restore.written", "call", cut_now)
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert wan_site.proxy.cuts == 1, "the link was never cut"
    assert r.code == 4, r.text
    assert "deployer recover" in r.err
    failpoints.reset()
    port = wan_site.proxy.port
    wan_site.proxy.stop()
    wan_site.proxy = DelayProxy(wan_site.samba.port, delay=0.002, listen_port=port).start()  # the link is back
    rec = wan_site.cli("recover", "--site", "DEMO", "--yes", "--break-lock")
    assert rec.code == 1, rec.text  # rolled back: the run had not finished
    assert wan_site.ws.state() == before
