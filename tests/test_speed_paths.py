"""The short cuts a run takes for speed keep its promises: fewer fsyncs, but every change on
the site still comes after a journal record on stable storage; backups by hard link, but a
rollback still gives back the old bytes; payloads hashed once per fleet, but a payload that
changes is hashed again."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Workspace, snapshot

from deployer.plan.planner import PayloadCache
from deployer.run import journal as journal_mod
from deployer.targets import mock as mock_mod
from deployer.simulator.fs import MockFiles


@pytest.fixture
def recorded(monkeypatch):
    """Every journal append (event, durable) and every change a run makes where the site can
    see it (a swap into place, a service stopped or started), in the order they happen."""
    log: list[tuple] = []
    append, rename = MockFiles.append, MockFiles.rename
    stop, start = mock_mod.MockServices.stop, mock_mod.MockServices.start

    def rec_append(self, path, data, *, durable=True):
        if path.lower().endswith("journal.jsonl"):
            log.append(("journal", json.loads(data)["event"], durable))
        return append(self, path, data, durable=durable)

    def rec_rename(self, src, dst, *, replace=False, durable=True):
        if "~dpl" in src.lower() and "~dpl" not in dst.lower():
            log.append(("change", f"swap {dst}", None))
        return rename(self, src, dst, replace=replace, durable=durable)

    def rec_stop(self, name, timeout=60.0):
        log.append(("change", f"stop {name}", None))
        return stop(self, name, timeout)

    def rec_start(self, name, timeout=60.0):
        log.append(("change", f"start {name}", None))
        return start(self, name, timeout)

    monkeypatch.setattr(MockFiles, "append", rec_append)
    monkeypatch.setattr(MockFiles, "rename", rec_rename)
    monkeypatch.setattr(mock_mod.MockServices, "stop", rec_stop)
    monkeypatch.setattr(mock_mod.MockServices, "start", rec_start)
    return log


def _pending_at_changes(log: list[tuple]) -> list[str]:
    """Changes made while a journal record was not yet on stable storage."""
    bad, pending = [], []
    for kind, what, durable in log:
        if kind == "journal":
            pending = [] if durable else pending + [what]
        elif kind == "change" and pending:
            bad.append(f"{what} after {pending}")
    return bad


def test_every_change_follows_a_journal_record_on_stable_storage(ws: Workspace, recorded):
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert _pending_at_changes(recorded) == []
    events = [(what, durable) for kind, what, durable in recorded if kind == "journal"]
    durable = [e for e, d in events if d]
    lazy = [e for e, d in events if not d]
    begins = sum(1 for e in durable if e == "begin")
    assert begins >= 15 and durable.count("committed") == 1 and "folders" in durable
    # the records that announce no change wait for the next one that does
    assert {"run", "staged", "backup", "done", "verify"} <= set(lazy)
    assert len(durable) == begins + 2  # folders, one per action, committed: not one per event
    assert set(lazy) <= journal_mod.LAZY_EVENTS


def test_a_failed_run_undoes_only_after_its_records_are_on_stable_storage(ws: Workspace, recorded):
    from deployer import failpoints

    failpoints.arm("apply.action.9.after", "raise")
    before = ws.state()
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 1, r.text
    assert ws.state() == before
    assert _pending_at_changes(recorded) == []
    tail = [(what, durable) for kind, what, durable in recorded if kind == "journal"][-3:]
    assert tail[-1] == ("rolled_back", True)


def test_backups_of_swapped_files_are_hard_links_and_a_rollback_gives_back_the_old_bytes(ws: Workspace):
    before = snapshot(ws.site)
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    journal = next(ws.site.rglob("journal.jsonl"))
    backups = [json.loads(line) for line in journal.read_text().splitlines() if '"backup"' in line]
    linked = [b for b in backups if b.get("linked")]
    assert len(linked) == 10  # the article's nine files and DEMOWKS1's Pcmsvc32.exe, each swapped by a rename
    assert all(not b.get("linked") for b in backups if b not in linked)  # copies elsewhere: written in place
    # the original inode lives on as the backup only: the swapped-in file is another file
    kept = {p.name.casefold(): p for p in ws.site.rglob("*") if p.parent.name.casefold() == "backup"
            and p.parent.parent.name == journal.parent.name}
    for b in linked:
        assert kept[b["backup"].split("\\")[-1].casefold()].stat().st_nlink == 1
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert snapshot(ws.site) == before


def test_a_backup_damaged_in_place_is_not_restored_as_if_good(ws: Workspace):
    """A hard-linked backup shares its bytes with the original until the swap: a program that
    wrote into the original before the swap would change the backup too. The restore checks the
    backup's sha256 and refuses, naming it, rather than putting wrong bytes back."""
    from deployer import failpoints
    from deployer.targets.mock import MockSite

    site = MockSite(ws.site)

    def scribble(_name: str) -> None:
        path = site.files("DEMOSRV")._resolve(r"SITE.SRV\X86.BIN\BASE.DLL")
        data = bytearray(path.read_bytes())
        data[10] ^= 0xFF
        st = path.stat()
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, bytes(data[10:11]), 10)  # in place, as a program with the file open would
        finally:
            os.close(fd)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))

    failpoints.arm("apply.action.1.before", "call", scribble)
    failpoints.arm("apply.action.12.after", "raise")
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 4, r.text
    assert "does not match the original's sha256" in r.text and "BASE.DLL" in r.text.upper()


def test_a_fleet_hashes_each_payload_once_and_a_changed_payload_again(tmp_path, monkeypatch):
    from deployer.plan import planner

    calls: list[str] = []
    real = planner.local_sha256
    monkeypatch.setattr(planner, "local_sha256", lambda p: calls.append(str(p)) or real(p))
    f = tmp_path / "Base.dll"
    f.write_bytes(b"x" * 1000)
    cache = PayloadCache()
    first = [cache.sha256(f) for _ in range(100)]
    assert len(set(first)) == 1 and len(calls) == 1
    f.write_bytes(b"y" * 1000)
    os.utime(f, ns=(1, 2))
    assert cache.sha256(f) != first[0] and len(calls) == 2
    assert cache.sha256(tmp_path / "missing") is None and cache.sha256(tmp_path) is None
