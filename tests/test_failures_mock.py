"""A failure anywhere leaves the site exactly as it was: injected at every action in turn,
a locked file, a folder that became a file, a damaged upload, a held lock."""

from __future__ import annotations

import json
import shutil

import pytest

from conftest import Workspace, diff
from deployer import failpoints
from deployer.targets.mock import MockSite
from deployer.simulator.fs import hold_open

ACTIONS = 14
REPLACES = range(3, 12)  # actions 3-11 replace files


def _apply(ws: Workspace):
    return ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)


@pytest.mark.parametrize("point", [f"apply.action.{n}.{w}" for n in range(1, ACTIONS + 1) for w in ("before", "after")]
                         + [f"apply.stage.{n}" for n in REPLACES] + [f"apply.stage.{n}.written" for n in REPLACES]
                         + ["apply.verify", "apply.commit"])
def test_failure_at_each_point_restores_byte_for_byte(ws: Workspace, point: str):
    before_files, before_services = ws.state()
    failpoints.arm(point)
    r = _apply(ws)
    assert point in failpoints.hits(), f"fail point {point} was never reached"
    assert r.code == 1, r.text
    assert "failed and the site was restored" in r.err
    files, svcs = ws.state()
    assert diff(before_files, files) == []
    assert svcs == before_services
    # no temporary file is left behind anywhere in the SMS trees
    assert not [p for p in ws.site.rglob("*~dpl*") if ".deployer" not in p.parts]
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [x["state"] for x in runs] == ["rolled_back"]


def test_failure_in_the_middle_of_the_undo_is_reported_with_exit_4(ws: Workspace):
    failpoints.arm("apply.action.8.after")
    failpoints.arm("undo.action.4.before")
    r = _apply(ws)
    assert r.code == 4, r.text
    assert "could NOT be fully restored" in r.err
    assert r"SITE.SRV\X86.BIN\BASE.DLL is not as before the run" in r.err
    assert "journal" in r.err
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert runs[0]["state"] == "rollback_failed"


def test_forgetting_to_stop_a_service_fails_on_the_locked_file_and_restores(ws: Workspace):
    book = ws.playbook.read_text().replace("  - stop: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]\n",
                                           "  - stop: [SMS_EXECUTIVE]\n")
    forgetful = ws.path / "playbooks" / "forgetful.yaml"
    forgetful.write_text(book)
    before = ws.state()
    r = ws.cli("apply", forgetful, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 1, r.text
    assert r"PCMSVC32.EXE" in r.text and "being used by another process (Windows error 32)" in r.text
    assert ws.state() == before


def test_destination_folder_replaced_by_a_file_fails_and_restores(ws: Workspace):
    folder = ws.server("DEMOSRV") / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "ALPHA.BIN"
    shutil.rmtree(folder)
    folder.write_bytes(b"not a folder")
    before = ws.state()
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0
    assert "alpha.bin is a file; replacing files there will fail" in r.out.lower()
    r = _apply(ws)
    assert r.code == 1, r.text
    assert "is a file, not a folder" in r.text and "Windows error 3" in r.text
    assert ws.state() == before


def test_file_held_open_by_another_program_fails_and_restores(ws: Workspace):
    before = ws.state()
    with hold_open(ws.site / "DEMOSRV", r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMDOS_4.EXE"):
        r = _apply(ws)
    assert r.code == 1
    assert "PCMDOS_4.EXE" in r.text and "Windows error 32" in r.text
    assert ws.state() == before


def test_damaged_upload_is_caught_before_the_swap(ws: Workspace):
    """A payload byte flipped in transit: caught when the staged copy is read back, nothing replaced."""
    before = ws.state()
    site = MockSite(ws.site)

    def corrupt(name: str) -> None:
        files = site.files("DEMOSRV")
        temp = next(e.name for e in files.listdir(r"SITE.SRV\X86.BIN") if "~dpl" in e.name)
        path = files._resolve(rf"SITE.SRV\X86.BIN\{temp}")
        data = bytearray(path.read_bytes())
        data[1000] ^= 0xFF
        path.write_bytes(bytes(data))

    failpoints.arm("apply.stage.4.written", "call", corrupt)
    r = _apply(ws)
    assert r.code == 1
    assert "does not match the hotfix file" in r.text and "damaged in transit, nothing was replaced" in r.text
    assert ws.state() == before
    journal = next(ws.site.rglob("journal.jsonl")).read_text()
    assert '"event": "begin"' not in journal  # not a single action ran


def test_site_lock_refuses_a_second_run_and_can_be_broken(ws: Workspace):
    lock = ws.server("DEMOSRV") / ".deployer" / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"holder": {"user": "alice", "host": "ops-laptop-7", "pid": 4242},
                                "since": "2026-11-22T08:00:00+00:00", "command": "apply", "run": None}))
    before = ws.state()
    r = _apply(ws)
    assert r.code == 2
    assert "site DEMO is locked by alice@ops-laptop-7 (pid 4242, apply) since 2026-11-22T08:00:00+00:00" in r.err
    assert "on another machine" in r.err and "--break-lock" in r.err
    assert ws.state() == before
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert not lock.exists()


def test_stale_lock_of_a_dead_local_process_is_called_stale(ws: Workspace):
    import socket

    lock = ws.server("DEMOSRV") / ".deployer" / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"holder": {"user": "bob", "host": socket.gethostname(), "pid": 2**22 + 7},
                                "since": "2026-11-22T08:00:00+00:00", "command": "apply"}))
    r = _apply(ws)
    assert r.code == 2 and "stale: that process is gone" in r.err


def test_stopped_site_config_manager_is_started_for_the_reset(ws: Workspace):
    site = MockSite(ws.site)
    site.services("DEMOSRV").stop("SMS_SITE_CONFIG_MANAGER")
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert "reset the site: start SMS_SITE_CONFIG_MANAGER on DEMOSRV" in r.out
    assert _apply(ws).code == 0
    assert site.services("DEMOSRV").query("SMS_SITE_CONFIG_MANAGER").state == "running"


def test_break_lock_refuses_to_break_the_lock_of_a_live_process(ws: Workspace):
    import socket
    import subprocess

    holder = subprocess.Popen(["sleep", "60"])
    try:
        lock = ws.server("DEMOSRV") / ".deployer" / "lock"
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps({"holder": {"user": "carol", "host": socket.gethostname(), "pid": holder.pid},
                                    "since": "2026-11-22T08:00:00+00:00", "command": "apply", "token": "abc"}))
        r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
        assert r.code == 2
        assert "still running on this machine" in r.err and "does not break the lock of a live process" in r.err
        assert lock.exists()
    finally:
        holder.kill()
        holder.wait()
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert r.code == 0, r.text  # the holder is gone now: the stale lock may be broken


def test_a_failed_stop_is_not_undone_and_the_site_counts_as_restored(ws: Workspace, monkeypatch):
    """A stop the Service Control Manager refused changed nothing: the undo must not stop
    that service itself, nor call the site not restored."""
    from deployer.targets.base import service_error
    from deployer.targets.mock import MockServices

    real_stop = MockServices.stop

    def refuse_executive(self, name, timeout=60.0):
        if name.upper() == "SMS_EXECUTIVE":
            raise service_error(1051, name, self.server, "stop")
        return real_stop(self, name, timeout)

    monkeypatch.setattr(MockServices, "stop", refuse_executive)
    before = ws.state()
    r = _apply(ws)
    assert r.code == 1, r.text  # failed, and restored: not 4
    assert "1051" in r.err
    assert ws.state() == before


def test_a_second_interrupt_cannot_cut_the_rollback_short(ws: Workspace):
    import os
    import signal

    before = ws.state()
    failpoints.arm("apply.action.8.after")
    # the operator presses Ctrl-C (or a supervisor sends SIGTERM) while the site is being restored
    failpoints.arm("undo.action.5.before", "call", lambda name: os.kill(os.getpid(), signal.SIGTERM))
    failpoints.arm("undo.action.3.before", "call", lambda name: os.kill(os.getpid(), signal.SIGINT))
    r = _apply(ws)
    assert r.code == 1, r.text
    assert "SIGTERM received: the rollback finishes first" in r.out
    assert "SIGINT received: the rollback finishes first" in r.out
    assert ws.state() == before

