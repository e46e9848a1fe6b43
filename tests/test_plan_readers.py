"""Every plan-time read of a site goes through the Observer, so a saved plan's staleness check
covers it: one test per read a step kind makes besides a file's state and a service's
(issue 20 item 6). Each makes a plan, changes on the site what that read saw, and applies the
saved plan: refused as stale, with the change in words and nothing touched."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import Workspace, diff, snapshot
from deployer.sms import fileversion
from test_wan import wan_site  # noqa: F401 (a fixture: the demo site on Samba behind a delay proxy)


def _save(ws: Workspace, tmp_path: Path, playbook: Path) -> Path:
    plan = tmp_path / "plan.json"
    r = ws.cli("plan", playbook, "--site", "DEMO", "-i", ws.inventory, "-o", plan)
    assert r.code == 0, r.text
    return plan


def _refused(ws: Workspace, plan: Path, *words: str) -> None:
    before = snapshot(ws.site)
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "the target changed since the plan was made" in r.err, r.err
    for w in words:
        assert w in r.err, r.err
    assert "Traceback" not in r.text
    assert diff(before, snapshot(ws.site)) == []  # refused before anything was touched


def _keep_time(path: Path, data: bytes) -> None:
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_file_appearing_where_replication_lists_client_src_makes_the_plan_stale(ws: Workspace, tmp_path: Path):
    """wait_for_replication plans a Logon.srv copy for every file in Client.src\\<Platform>.bin:
    a new file there is one more copy the saved plan does not wait for."""
    plan = _save(ws, tmp_path, ws.playbook)
    src = ws.server("DEMOSRV") / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "X86.BIN"
    (src / "NEWCLI.EXE").write_bytes(b"MZ a client file the plan never saw")
    _refused(ws, plan, "CLIENT.SRC", "holds other files (new: newcli.exe)")


def test_a_changed_version_resource_makes_the_plan_stale(ws: Workspace, tmp_path: Path):
    """replace reads a file's version resource when the manifest lists a version and no sha256
    (Q255284), and skips a file already at the manifest by it: a file whose version changed
    since, size and write time kept, is another file, and the skip no longer holds."""
    book = ws.path / "playbooks" / "q255284.yaml"
    assert ws.cli("apply", book, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0  # every file at the manifest
    plan = _save(ws, tmp_path, book)
    assert json.loads(plan.read_text())["actions"] == []
    # a client file: no other step reads it (the site reset reads the Site.srv service files whole)
    target = ws.server("DEMOSRV") / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "X86.BIN" / "PCMWIN16.EXE"
    data = bytearray(target.read_bytes())
    at = data.find(fileversion.SIGNATURE)
    assert at >= 0
    block = fileversion.fixed_file_info((1, 1, 0, 0))
    data[at:at + len(block)] = block  # same size, an older version
    _keep_time(target, bytes(data))
    _refused(ws, plan, r"CLIENT.SRC\X86.BIN\PCMWIN16.EXE content changed (same size and time)")


def test_a_maintman_log_replaced_by_a_shorter_one_makes_the_plan_stale(ws: Workspace, tmp_path: Path):
    """wait_for_replication and force_client_update note where Maintman.log ends, so that a run's
    evidence starts there; a log rotated since would put that past its end. A log that only grew
    (Maintenance Manager writes it all the time) leaves the plan valid."""
    log = ws.server("DEMOSRV") / "LOGS" / "MAINTMAN.LOG"
    log.parent.mkdir(exist_ok=True)
    log.write_bytes(b"~Working on logon server DEMOLOG1  $$<SMS_MAINTENANCE_MANAGER><12-07-2026 10:00:00>\r\n" * 40)
    plan = _save(ws, tmp_path, ws.playbook)
    log.write_bytes(log.read_bytes()[:100])
    _refused(ws, plan, "MAINTMAN.LOG is shorter than when planned")


def test_a_grown_maintman_log_does_not_make_the_plan_stale(ws: Workspace, tmp_path: Path):
    log = ws.server("DEMOSRV") / "LOGS" / "MAINTMAN.LOG"
    log.parent.mkdir(exist_ok=True)
    log.write_bytes(b"x" * 500)
    plan = _save(ws, tmp_path, ws.playbook)
    with open(log, "ab") as fh:
        fh.write(b"~a cycle ran since  $$<SMS_MAINTENANCE_MANAGER><12-07-2026 10:00:00>\r\n")
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text


def test_a_changed_copy_list_makes_the_plan_stale(ws: Workspace, tmp_path: Path):
    """force_client_update reads each copy list's CopyListVersion: read through the Observer with
    its sha256, so another version there (same size and time) is a change."""
    plan = _save(ws, tmp_path, ws.playbook)
    lst = ws.server("DEMOLOG1") / "LOGON.SRV" / "X86.BIN" / "CL_NT.TXT"
    text = lst.read_bytes()
    assert b"CopyListVersion=" in text
    head, _, rest = text.partition(b"CopyListVersion=")
    digits = rest[:1]
    _keep_time(lst, head + b"CopyListVersion=" + (b"8" if digits != b"8" else b"7") + rest[1:])
    _refused(ws, plan, "CL_NT.TXT content changed (same size and time)")


def test_a_file_appearing_in_client_src_over_smb_makes_the_plan_stale(wan_site, tmp_path: Path):
    """Over SMB 2/3 (Samba) too: the staleness check lists the folder again because its write
    time moved when the file was added (a folder whose time did not move is not listed again)."""
    plan = tmp_path / "plan.json"
    assert wan_site.cli("plan", wan_site.ws.playbook, "--site", "DEMO", "-o", plan).code == 0
    src = wan_site.share_dir / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "X86.BIN"
    (src / "NEWCLI.EXE").write_bytes(b"MZ a client file the plan never saw")
    changed = wan_site.ws.state()
    r = wan_site.cli("apply", plan, "--yes")
    assert r.code == 2, r.text
    assert "holds other files (new: newcli.exe)" in r.err
    assert wan_site.ws.state() == changed


def test_a_saved_plan_naming_a_server_the_site_lacks_in_any_kinds_action_is_refused(ws: Workspace, tmp_path: Path):
    """Every server an action names is checked against the site before anything connects, asked
    of the action's kind (a client update's copy lists name the logon servers too), not only
    the fields one kind happens to have."""
    from deployer.plan.saved import digest

    plan = _save(ws, tmp_path, ws.playbook)
    data = json.loads(plan.read_text())
    i, action = next((i, a) for i, a in enumerate(data["actions"]) if a.get("copy_lists"))
    action["copy_lists"][-1]["server"] = "GHOST"
    data["digest"] = digest(data)
    plan.write_text(json.dumps(data, indent=1))
    before = snapshot(ws.site)
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "the plan names server 'GHOST', which site DEMO does not have" in r.err, r.err
    assert "Traceback" not in r.text
    assert diff(before, snapshot(ws.site)) == []
