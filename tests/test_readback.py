"""What a first apply reads back over SMB 2/3 (a real Samba serving DEMOSRV, as tests/test_wan.py
does; the other servers on the mock): only what decides something. The Helper.srv and Logon.srv
files the site's own programs are about to overwrite are identified by size and write time
(steps/base.py by_identity), not read: their backups and restores are server-side copies checked
against that identity. `--checksum` reads them all, as before. Counts of bytes, never timings.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import snapshot
from deployer import failpoints
from test_wan import Site, wan_site  # noqa: F401 - the fixture

HELPER_BASE = Path("HELPER.SRV") / "X86.BIN" / "BASE.DLL"


def _plan(site: Site, *extra: str) -> dict:
    r = site.cli("plan", site.ws.playbook, "--site", "DEMO", "-f", "json", *extra)
    assert r.code == 0, r.text
    return json.loads(r.out)


def _demosrv_files(plan: dict) -> tuple[int, int]:
    """(payload: the bytes the plan writes on DEMOSRV, the sizes of every DEMOSRV file it changes
    that existed: what a run that reads every before-state reads)."""
    payload = before = 0
    for a in plan["actions"]:
        if a["kind"] == "replace" and a["server"] == "DEMOSRV":
            payload += a["new"]["size"]
            before += (a["before"] or {}).get("size", 0)
        for c in a.get("copies") or []:
            if c["server"] == "DEMOSRV" and c["before"]:
                before += c["before"]["size"]
    return payload, before


def _bytes_read(r) -> int:
    return json.loads(r.out)["traffic"]["servers"]["DEMOSRV"]["bytes_read"]


def _backups(site: Site) -> list[dict]:
    journal = max((site.share_dir / ".deployer" / "runs").glob("*/journal.jsonl"), key=lambda p: p.stat().st_mtime)
    return [e for e in map(json.loads, journal.read_text().splitlines()) if e.get("event") == "backup"]


def _find(root: Path, rel: Path) -> Path:
    """`rel` under `root` in whatever case the lab wrote it."""
    here = root
    for part in rel.parts:
        here = next(p for p in here.iterdir() if p.name.casefold() == part.casefold())
    return here


def test_a_first_apply_reads_back_at_most_1_2x_the_payload_and_checksum_reads_every_before_state(wan_site: Site):
    """Before, the plan hashed every Helper.srv and Logon.srv copy about to be overwritten (1.7x
    the payload on DEMOSRV alone); now those are identified by size and write time, and only the
    files replaced by a hard-linked swap (whose sha256 the restore checks) are read. The journal
    says which backups were identified how; the rollback restores every file byte for byte; and
    `apply --checksum` reads every before-state again."""
    site = wan_site
    start = snapshot(site.ws.site)
    plan = _plan(site)
    payload, before = _demosrv_files(plan)
    assert payload > 1_000_000 and before > payload  # Helper.srv/Logon.srv copies change on DEMOSRV too
    r = site.cli("apply", site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json")
    assert r.code == 0, r.text
    assert _bytes_read(r) <= 1.2 * payload, (_bytes_read(r), payload)
    backups = _backups(site)
    by_identity = [b for b in backups if b.get("identity") == "size+time"]
    assert by_identity and all(b.get("sha256") is None and b["size"] >= 0 for b in by_identity)
    assert any(b["server"] == "DEMOSRV" and "HELPER.SRV" in b["path"].upper() for b in by_identity)
    linked = [b for b in backups if b.get("linked")]  # the swapped files: their sha256 kept
    assert linked and all(b.get("sha256") and "identity" not in b for b in linked)
    rb = site.cli("rollback", "--site", "DEMO", "--yes")
    assert rb.code == 0, rb.text
    assert snapshot(site.ws.site) == start
    # --checksum: every file the run changes is read at plan, as before (records are not trusted)
    c = site.cli("apply", site.ws.playbook, "--site", "DEMO", "--yes", "-f", "json", "--checksum")
    assert c.code == 0, c.text
    assert _bytes_read(c) >= before, (_bytes_read(c), before)
    assert all(b.get("sha256") and "identity" not in b for b in _backups(site))
    rb = site.cli("rollback", "--site", "DEMO", "--yes")
    assert rb.code == 0, rb.text
    assert snapshot(site.ws.site) == start


def test_a_copy_identified_by_size_and_time_that_changed_before_its_backup_is_refused(wan_site: Site):
    """A Helper.srv file rewritten (another size and time) after the plan's check under the lock
    and before its backup: the backup does not match the identity the plan took, so the run
    stops before anything visible changes and the site is as it was (but for that rewrite)."""
    site = wan_site
    target = _find(site.share_dir, HELPER_BASE)

    def rewrite(_name: str) -> None:
        target.write_bytes(target.read_bytes() + b"changed")

    failpoints.arm("apply.journal.folders", "call", rewrite)
    try:
        r = site.cli("apply", site.ws.playbook, "--site", "DEMO", "--yes")
    finally:
        failpoints.reset()
    assert r.code == 4, r.text
    assert "does not match the file observed when planning" in r.text and "BASE.DLL" in r.text.upper()
    assert target.read_bytes().endswith(b"changed")  # not overwritten by anything of the run


def test_a_damaged_backup_identified_by_size_and_time_is_not_restored(wan_site: Site):
    """The restore of a copy identified by size and write time checks the restored copy against
    them: a backup grown since (damaged, replaced) is refused, naming it, and the file keeps
    what the run put there rather than wrong bytes."""
    site = wan_site
    r = site.cli("apply", site.ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    b = next(b for b in _backups(site) if b.get("identity") == "size+time" and b["server"] == "DEMOSRV"
             and "HELPER.SRV" in b["path"].upper())
    backup = _find(site.share_dir, Path(*b["backup"].split("\\")))
    backup.write_bytes(backup.read_bytes() + b"damaged")
    current = _find(site.share_dir, Path(*b["path"].split("\\"))).read_bytes()
    rb = site.cli("rollback", "--site", "DEMO", "--yes")
    assert rb.code != 0, rb.text
    assert "does not match the original's size and write time" in rb.text, rb.text
    assert _find(site.share_dir, Path(*b["path"].split("\\"))).read_bytes() == current


def test_over_ssh_no_file_the_run_copies_on_the_server_is_read_at_plan_and_rollback_restores_it(
        ws, sshd):
    """The same over SSH (server-side copies, no hard links): the files the run replaces are
    identified by size and write time too (their date or size fails the manifest, so their
    content decides nothing), the Helper.srv and Logon.srv copies likewise; the whole apply
    reads back at most 1.2x what it writes, and a rollback restores every file byte for byte."""
    from conftest import services
    from test_e2e_ssh import SITE, ssh_inventory

    inventory = ssh_inventory(ws, sshd)
    start, running = snapshot(ws.site), services(ws.site)
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-f", "json", "-i", inventory)
    assert r.code == 0, r.text
    total = json.loads(r.out)["traffic"]["total"]
    assert total["bytes_read"] <= 1.2 * total["bytes_written"], total
    rb = ws.cli("rollback", "--site", SITE, "--yes", "-i", inventory)
    assert rb.code == 0, rb.text
    assert snapshot(ws.site) == start and services(ws.site) == running
