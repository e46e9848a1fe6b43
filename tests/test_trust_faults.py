"""Faults of the site itself: names that differ only in case, `lab init --force` under a run,
a disk that fills up while the site is being changed, a run killed while the SCM copies
service files, and the advice after a crash, followed command by command."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import Workspace, diff, run_subprocess, snapshot
from deployer import failpoints
from deployer.failpoints import InjectedFault
from deployer.run.lock import SiteLock
from deployer.targets.mock import MockSite


def _apply(ws: Workspace, *extra: str):
    return ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, *extra)


def _x86_bin(ws: Workspace) -> Path:
    return ws.server("DEMOSRV") / "SITE.SRV" / "X86.BIN"


# --- item 5: names that differ only in case --------------------------------------------------


def test_two_files_differing_only_in_case_are_refused_naming_both(ws: Workspace):
    folder = _x86_bin(ws)
    shutil.copy2(folder / "PCMSVC32.EXE", folder / "Pcmsvc32.exe")  # possible on Samba or a Linux tree
    before = ws.state()
    for command in (("plan",), ("apply", "--yes")):
        r = ws.cli(command[0], ws.playbook, "--site", "DEMO", "-i", ws.inventory, *command[1:])
        assert r.code == 2, r.text
        assert "PCMSVC32.EXE, Pcmsvc32.exe" in r.err and "differ only in case" in r.err
        assert r"DEMOSRV C:\SMS\SITE.SRV\X86.BIN" in r.err
    assert ws.state() == before
    assert not (ws.server("DEMOSRV") / ".deployer").exists()  # refused before anything was written


def test_case_twins_in_helper_srv_are_refused_too(ws: Workspace):
    folder = ws.server("DEMOLOG1") / "HELPER.SRV" / "X86.BIN"
    shutil.copy2(folder / "PCMSVC32.EXE", folder / "pcmsvc32.exe")
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2 and "PCMSVC32.EXE, pcmsvc32.exe" in r.err, r.text


# --- item 6: lab init --force under a run ------------------------------------------------------


def test_lab_init_force_refuses_while_a_run_holds_the_lock(ws: Workspace):
    files = MockSite(ws.site).files("DEMOSRV")
    lock = SiteLock(files, "DEMO", "apply", run="20261127T000000Z-abcd")
    lock.acquire()
    try:
        journal = ws.server("DEMOSRV") / ".deployer" / "runs" / "r1" / "journal.jsonl"
        journal.parent.mkdir(parents=True)
        journal.write_text('{"event": "run", "seq": 1}\n')
        r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory)
        assert r.code == 2, r.text
        assert "a process still running on this machine" in r.err and "lab init --force` would delete" in r.err
        assert (ws.server("DEMOSRV") / ".deployer" / "lock").is_file() and journal.is_file()
    finally:
        lock.release()


def test_lab_init_force_refuses_a_site_with_an_unfinished_run_and_recreates_a_clean_one(ws: Workspace):
    runs = ws.server("DEMOSRV") / ".deployer" / "runs" / "20261127T000000Z-abcd"
    runs.mkdir(parents=True)
    (runs / "journal.jsonl").write_text('{"event": "run", "seq": 1}\n{"event": "begin", "action": 1, "seq": 2}\n')
    r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "unfinished run: 20261127T000000Z-abcd (interrupted)" in r.err
    assert "deployer recover --site DEMO" in r.err
    assert (runs / "journal.jsonl").is_file()
    shutil.rmtree(runs)
    (ws.site / "DEMOSRV" / "C" / "SMS" / "stray.txt").write_text("x")
    r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert not (ws.site / "DEMOSRV" / "C" / "SMS" / "stray.txt").exists()
    assert not (ws.server("DEMOSRV") / ".deployer").exists()  # its own lock went with the old site


# --- item 7: disk full while the site is being changed ----------------------------------------


@pytest.fixture
def small_disk(ws: Workspace, tmp_path: Path):
    """The mock site on a tmpfs with room for the site and the run's staging, little more."""
    aside = tmp_path / "aside"
    shutil.copytree(ws.site, aside, symlinks=True)
    used = sum(p.stat().st_size for p in aside.rglob("*") if p.is_file())
    shutil.rmtree(ws.site)
    ws.site.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + (24 << 20)}", "tmpfs", str(ws.site)], check=True)
    try:
        shutil.copytree(aside, ws.site, symlinks=True, dirs_exist_ok=True)
        yield ws
    finally:
        subprocess.run(["umount", str(ws.site)], check=True)


def _fill(site: Path):
    """Fill the disk to the last byte, as another program writing a log would."""
    def callback(name: str) -> None:
        fd = os.open(site / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 4096, 1):  # unbuffered, down to the last byte
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
    return callback


def test_disk_full_during_execute_is_error_112_then_recover_restores_once_there_is_room(small_disk: Workspace):
    """The disk fills just before the site reset: the SCM cannot write its copies (error 112),
    the rollback tries every step, lists what it could not restore, and `recover` finishes
    the job once space is freed."""
    ws = small_disk
    before = ws.state()
    failpoints.arm("apply.action.14.before", "call", _fill(ws.site))
    r = _apply(ws)
    assert r.code == 4, r.text
    assert "there is not enough space on the disk (Windows error 112)" in r.text
    assert "Errno 28" not in r.text and "Traceback" not in r.text
    assert r.out.count("! undo of action") >= 9  # it tried every file, not just the first
    assert "could NOT be fully restored" in r.err and "then run `deployer recover --site DEMO" in r.err
    # the journal is on the full disk too: where its last page still had room the undo journaled
    # every step; where it had none, that is said and the undo went on anyway
    journal = "".join(p.read_text() for p in ws.site.rglob("journal.jsonl"))
    assert "Warning: the journal cannot be written" in r.err or '"event": "rollback_failed"' in journal
    (ws.site / "filler").unlink()
    failpoints.reset()
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert ws.state() == before
    assert not [p for p in ws.site.rglob("*~dpl*") if ".deployer" not in p.parts]
    assert not list(ws.site.rglob("*.~scm"))


def test_disk_full_during_the_rollback_restores_what_it_can_lists_the_rest_and_recover_finishes(
        small_disk: Workspace):
    ws = small_disk
    before = ws.state()
    failpoints.arm("apply.action.9.after", "raise")
    failpoints.arm("undo.action.8.before", "call", _fill(ws.site))  # the disk fills while restoring
    r = _apply(ws)
    assert r.code == 4, r.text
    assert "Traceback" not in r.text and "Errno 28" not in r.text
    assert "could NOT be fully restored" in r.err and "is not as before the run" in r.err
    restored_despite = [line for line in r.out.splitlines() if "restore " in line and "from its backup" in line]
    assert restored_despite  # it went on after the first failure
    assert "not enough space on the disk (Windows error 112)" in r.text
    (ws.site / "filler").unlink()
    failpoints.reset()
    nxt = _apply(ws)
    assert nxt.code == 2 and "deployer recover --site DEMO" in nxt.err
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert ws.state() == before


# --- item 8: killed while the SCM copies service files ----------------------------------------


def test_a_run_killed_during_the_site_reset_leaves_no_scm_temp_file_after_recover(ws: Workspace):
    before = ws.state()
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": "mock.reset.copy.written=kill"})
    assert r.code == -signal.SIGKILL, r.text
    left = [p for p in ws.site.rglob("*.~scm")]
    assert left, "the kill did not leave the SCM's temporary copy (the test is not testing anything)"
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert re.search(r"remove \S+ \S+\.~scm \(a temporary copy of PCMSVC32\.EXE left by an interrupted write\)",
                     rec.out), rec.out
    assert not list(ws.site.rglob("*.~scm"))
    assert ws.state() == before


def test_the_check_after_an_undo_notices_a_new_file_in_a_touched_folder(ws: Workspace):
    def drop_and_fail(name: str) -> None:
        (_x86_bin(ws) / "NOTES.TXT").write_text("someone copied this here during the run")
        raise InjectedFault(f"injected fault at {name}")

    before = snapshot(ws.site)
    failpoints.arm("apply.action.6.after", "call", drop_and_fail)
    r = _apply(ws)
    assert r.code == 4, r.text
    assert r"DEMOSRV C:\SMS\SITE.SRV\X86.BIN\NOTES.TXT was not in its folder when the run began" in r.err
    assert "deployer did not create it and leaves it to you" in r.err
    assert (_x86_bin(ws) / "NOTES.TXT").exists()  # reported, never deleted
    (_x86_bin(ws) / "NOTES.TXT").unlink()
    assert diff(before, snapshot(ws.site)) == []
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert rec.code == 1, rec.text  # the retry finds the folder as it was and closes the run


# --- item 11: the advice after a crash works the first time ------------------------------------


def test_after_a_crash_every_command_gives_the_one_command_that_works(ws: Workspace):
    before = ws.state()
    r = run_subprocess("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, cwd=ws.path,
                       env={"DEPLOYER_FAILPOINTS": "apply.action.5.after=kill"})
    assert r.code == -signal.SIGKILL
    advice = []
    for args in (("plan", ws.playbook), ("verify", ws.playbook), ("apply", ws.playbook, "--yes"),
                 ("rollback", "--yes"), ("recover", "--yes"), ("lab", "init", "DEMO", "--force")):
        got = ws.cli(*args, *(("--site", "DEMO") if args[0] != "lab" else ()), "-i", ws.inventory)
        assert "Traceback" not in got.text
        commands = re.findall(r"`(deployer [^`]*)`", got.err)
        assert commands, f"{args[0]}: no command advised: {got.err}"
        advice.append((args[0], commands[-1]))
        assert "Wait for it" not in got.err  # the holder is known to be gone
    assert {c for _, c in advice} == {"deployer recover --site DEMO --break-lock"}, advice
    # follow the advice exactly, once
    cmd = advice[0][1].split()[1:]
    rec = ws.cli(*cmd, "--yes", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert ws.state() == before
    assert _apply(ws).code == 0
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [x["state"] for x in runs] == ["rolled_back", "committed"]
