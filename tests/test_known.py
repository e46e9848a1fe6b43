"""Known hashes (deployer/run/known.py): a file's sha256 is trusted while a fresh stat returns the
fingerprint it was recorded with, and read again otherwise; `--checksum` reads every file.

Over SMB 2/3 (a real Samba, as tests/test_wan.py serves DEMOSRV) and on the mock. Counts of
bytes read (the transports' meters, the JSON report's `traffic`), never timings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from conftest import Workspace
from test_wan import Site, wan_site  # noqa: F401 - the fixture

BASE_DLL = Path("SITE.SRV") / "X86.BIN" / "BASE.DLL"


def _read(r) -> dict:
    return json.loads(r.out)["traffic"]["servers"]


def _state_bytes(root: Path) -> int:
    """deployer's own files on a server (journals, plans, the lock, the known hashes): metadata."""
    return sum(p.stat().st_size for p in (root / ".deployer").rglob("*") if p.is_file() and "backup" not in p.parts)


def _rewrite_in_place(path: Path, *, keep_times: bool, offset: int = 100) -> None:
    """One byte changed inside the file, its size kept; the write time put back, or moved by 1 s
    (the same minute as the manifest's, so only the content can tell)."""
    st = path.stat()
    fd = os.open(path, os.O_WRONLY)
    try:
        data = path.read_bytes()
        os.pwrite(fd, bytes([data[offset] ^ 0xFF]), offset)
    finally:
        os.close(fd)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns if keep_times else st.st_mtime_ns + 10**9))


def _manifest_with_sha256(ws: Workspace, source: Path) -> Path:
    """The Q241656 manifest with Base.dll's (Intel) sha256 listed: verify then reads it."""
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    text = (ws.path / "manifests" / "q241656.yaml").read_text()
    old = "name: Base.dll,     platform: I386}"
    assert old in text
    out = ws.path / "manifests" / "q241656-sha.yaml"
    out.write_text(text.replace(old, f"name: Base.dll,     platform: I386, sha256: {sha}}}"))
    return out


def _payload(ws: Workspace, name: str) -> Path:
    return next(p for p in (ws.path / "payloads" / "q241656").rglob(name) if p.parent.name.casefold() == "x86")


def test_second_run_verify_and_rollback_read_no_file_twice_over_smb(wan_site: Site):
    """After an apply has recorded what it hashed and wrote, the second run and verify read
    nothing but deployer's own state (journals, the records) on the SMB server, and the rollback
    reads no file whose record holds: before, each re-read every file it compared (4.5 MB)."""
    first = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert first.code == 0, first.text
    again = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert again.code == 0, again.text
    meta = _state_bytes(wan_site.share_dir)
    assert 0 < _read(again)["DEMOSRV"]["bytes_read"] <= meta, (_read(again)["DEMOSRV"], meta)
    v = wan_site.cli("verify", wan_site.ws.playbook, "--site", "DEMO", "-f", "json")
    assert v.code == 0, v.text
    assert _read(v)["DEMOSRV"]["bytes_read"] <= meta
    # the same with --checksum reads the files again (what every run did before)
    c = wan_site.cli("verify", wan_site.ws.playbook, "--site", "DEMO", "-f", "json", "--checksum")
    assert c.code == 0, c.text
    assert _read(c)["DEMOSRV"]["bytes_read"] > meta + 1_000_000
    # the rollback: the files, their hard-linked backups and the restored copies all recorded
    rb = wan_site.cli("-v", "rollback", "--site", "DEMO", "--yes")
    assert rb.code == 0, rb.text
    read = re.search(r"DEMOSRV: \d+ round trips, \d+ requests, [\d,]+ bytes written, ([\d,]+) bytes read", rb.err)
    assert read is not None, rb.err
    # deployer's own state is read a few times over (the unfinished-run check, the run listing, the
    # plan, the undo's journal); before, every replaced file and its restored copy was read too (5 MB)
    assert int(read.group(1).replace(",", "")) <= 3 * _state_bytes(wan_site.share_dir)
    assert (wan_site.share_dir / ".deployer" / "known.json").is_file()


def test_a_rewrite_with_another_time_is_caught_by_default_and_one_with_the_times_put_back_by_checksum(
        wan_site: Site):
    """Over SMB (size and write time are the fingerprint: Samba reports no separate change time
    or file id here): a rewrite that moved the write time is read and caught by the default
    verify; one that put it back is the documented blind spot, caught by `verify --checksum`."""
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    manifest = _manifest_with_sha256(wan_site.ws, _payload(wan_site.ws, "Base.dll"))
    ok = wan_site.cli("verify", manifest, "--site", "DEMO")
    assert ok.code == 0, ok.text
    target = wan_site.share_dir / BASE_DLL
    _rewrite_in_place(target, keep_times=True)
    blind = wan_site.cli("verify", manifest, "--site", "DEMO")
    assert blind.code == 0, blind.text  # the record holds: the bytes are not read (README says so)
    caught = wan_site.cli("verify", manifest, "--site", "DEMO", "--checksum")
    assert caught.code == 3, caught.text
    assert "content differs from the listed sha256" in caught.text
    _rewrite_in_place(target, keep_times=False, offset=200)
    moved = wan_site.cli("verify", manifest, "--site", "DEMO")
    assert moved.code == 3, moved.text
    assert "content differs from the listed sha256" in moved.text


def test_plan_reads_a_helper_file_whose_time_moved_and_checksum_one_whose_times_were_put_back(wan_site: Site):
    """The site reset's plan compares each Helper.srv file with Site.srv's by content: a copy
    rewritten behind deployer's back is planned again when its fingerprint moved (default) and,
    with its times put back, when `--checksum` reads it."""
    r = wan_site.cli("apply", wan_site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    helper = next(p for p in (wan_site.share_dir / "HELPER.SRV" / "X86.BIN").iterdir() if p.name.upper() == "PCMSVC32.EXE")
    _rewrite_in_place(helper, keep_times=True)
    quiet = wan_site.cli("plan", wan_site.ws.playbook, "--site", "DEMO", "-f", "json")
    assert quiet.code == 0, quiet.text
    assert json.loads(quiet.out)["actions"] == []
    read = wan_site.cli("plan", wan_site.ws.playbook, "--site", "DEMO", "-f", "json", "--checksum")
    assert read.code == 0, read.text
    assert "HELPER.SRV" in json.dumps(json.loads(read.out)["actions"]).upper()
    _rewrite_in_place(helper, keep_times=False, offset=300)
    moved = wan_site.cli("plan", wan_site.ws.playbook, "--site", "DEMO", "-f", "json")
    assert moved.code == 0, moved.text
    assert "HELPER.SRV" in json.dumps(json.loads(moved.out)["actions"]).upper()


def test_on_the_mock_the_change_time_catches_a_rewrite_that_put_the_write_time_back(ws: Workspace):
    """The mock reports the inode's change time and number: a same-size rewrite in place with the
    write time put back changes the change time, so the default verify reads it and fails."""
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    manifest = _manifest_with_sha256(ws, _payload(ws, "Base.dll"))
    ok = ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert ok.code == 0, ok.text
    again = ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert again.code == 0
    assert _read(again)["DEMOSRV"]["bytes_read"] <= _state_bytes(ws.server("DEMOSRV"))  # trusted, not read
    _rewrite_in_place(ws.server("DEMOSRV") / BASE_DLL, keep_times=True)
    bad = ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory)
    assert bad.code == 3, bad.text
    assert "content differs from the listed sha256" in bad.text


def test_a_damaged_or_foreign_record_file_only_costs_a_read(ws: Workspace):
    """known.json is deployer's: unreadable, of another format or lying about a file whose
    fingerprint no longer matches, it is never believed over the file."""
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    store = ws.server("DEMOSRV") / ".deployer" / "known.json"
    doc = json.loads(store.read_text())
    manifest = _manifest_with_sha256(ws, _payload(ws, "Base.dll"))
    for server in doc["servers"].values():  # every record claims another content
        for rec in server.values():
            rec["sha256"] = "0" * 64
    store.write_text(json.dumps(doc))
    # the records still match the files' fingerprints: this is what --checksum is for
    assert ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory).code == 3
    assert ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory, "--checksum").code == 0
    store.write_text("{ not json")
    assert ws.cli("verify", manifest, "--site", "DEMO", "-i", ws.inventory).code == 0
