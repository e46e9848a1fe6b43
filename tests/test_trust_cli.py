"""The operator's side of issue 8: output paths, the question, exit codes and the words of a
failure, each as a user meets it. (Closed stdout: test_run_events.py; SIGHUP and SIGPIPE:
test_trust_signals.py; damaged journals and locks: test_trust_journal.py.)"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Workspace


def _plan(ws: Workspace, *extra: str):
    return ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, *extra)


# --- item 9: output paths ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["plan", "verify"])
def test_an_output_path_in_a_missing_folder_is_bad_input(ws: Workspace, tmp_path: Path, command: str):
    target = tmp_path / "nonexistent" / "x"
    opt = "--out" if command == "plan" else "-o"
    r = ws.cli(command, ws.playbook, "--site", "DEMO", "-i", ws.inventory, opt, target)
    assert r.code == 2, r.text
    assert "Traceback" not in r.text
    assert f"the folder {target.parent} does not exist" in r.err
    assert not target.parent.exists()


def test_plan_out_to_a_folder_is_refused_and_leaves_no_stray_file(ws: Workspace, tmp_path: Path):
    folder = tmp_path / "plans"
    folder.mkdir()
    r = _plan(ws, "--out", folder)
    assert r.code == 2 and "is a folder; give a file name" in r.err, r.text
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob("plans*.tmp"))


# --- item 12: exit codes and the words of a failure ---------------------------------------------


def test_rollback_with_nothing_to_undo_exits_0(ws: Workspace):
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "Nothing to roll back: site DEMO has no committed run to roll back." in r.out


# A repeated --site selects several sites (a fleet, issue 9): a name the inventory lacks is
# refused, and so is the same site named twice; either way nothing is touched.
@pytest.mark.parametrize("args, needle", [
    (("--site", "DEMO", "--site", "OTHER"), "no site named 'OTHER' in the inventory"),
    (("-s", "DEMO", "--site=DEMO"), "--site is given more than once for DEMO"),
])
def test_a_repeated_site_is_refused(ws: Workspace, args, needle):
    before = ws.state()
    r = ws.cli("apply", ws.playbook, *args, "--yes", "-i", ws.inventory)
    assert r.code == 2 and needle in r.err, r.text
    assert ws.state() == before


def test_json_format_prints_a_json_error_object_when_a_command_fails(ws: Workspace):
    r = ws.cli("plan", ws.path / "playbooks" / "nope.yaml", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 2
    err = json.loads(r.out)
    assert err["exit_code"] == 2 and err["kind"] == "InputError" and "nope.yaml" in err["error"]


def test_a_saved_plan_with_a_utf8_bom_is_accepted(ws: Workspace, tmp_path: Path):
    plan = tmp_path / "plan.json"
    assert _plan(ws, "--out", plan).code == 0
    plan.write_bytes(b"\xef\xbb\xbf" + plan.read_bytes())  # as Notepad saves it
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "Applied Q241656 to site DEMO" in r.out


def test_a_missing_destination_folder_is_refused_at_plan_time(ws: Workspace):
    text = ws.playbook.read_text().replace(r"Client.src\{{ platform }}", r"Client.sorc\{{ platform }}", 1)
    ws.playbook.write_text(text)
    before = ws.state()
    r = _plan(ws)
    assert r.code == 2, r.text
    assert "does not exist on DEMOSRV" in r.err and "CLIENT.SORC" in r.err.upper()
    assert ws.state() == before


# --- item 10 and 12: the question -------------------------------------------------------------


class StdinTerminal:
    """`deployer ...` with a terminal on stdin and stderr only; stdout is a pipe (`| tee log`)."""

    def __init__(self, *args: str, cwd: Path):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "deployer", *map(str, args)], cwd=cwd, stdin=slave,
                                     stdout=subprocess.PIPE, stderr=slave, env={**os.environ, "COLUMNS": "160"})
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            assert left > 0 and self.proc.poll() is None, f"never saw {text!r}; saw {self.seen[-1500:]!r}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if ready:
                self.seen += os.read(self.master, 65536).decode("utf-8", "replace")

    def finish(self) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=60)
        os.close(self.master)
        return self.proc.returncode, out.decode()


def test_the_question_is_asked_when_stdin_is_a_terminal_even_if_stdout_is_piped(ws: Workspace):
    before = ws.state()
    t = StdinTerminal("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    t.expect("Apply these 19 actions to site DEMO? [y/N]")
    os.write(t.master, b"n\n")
    code, out = t.finish()
    assert code == 0 and "Nothing was done." in out
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV" in out  # the plan still went to stdout
    assert ws.state() == before


def test_ctrl_c_at_the_question_exits_130_and_touches_nothing(ws: Workspace):
    before = ws.state()
    t = StdinTerminal("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    t.expect("[y/N]")
    t.proc.send_signal(signal.SIGINT)
    code, _ = t.finish()
    assert code == 130
    assert ws.state() == before
    assert not (ws.server("DEMOSRV") / ".deployer" / "lock").exists()


@pytest.mark.parametrize("key", ["checks", "observations", "actions"])
def test_a_saved_plan_without_one_of_its_lists_is_never_a_traceback(ws: Workspace, tmp_path: Path, key: str):
    """The lists have defaults in the Plan, so the shape check let a plan without them through
    to a KeyError (found by test_fuzz_loaders.py after the merge)."""
    from deployer.errors import InputError
    from deployer.plan.saved import digest, load_plan

    plan = tmp_path / "plan.json"
    assert _plan(ws, "--out", plan).code == 0
    data = json.loads(plan.read_text())
    del data[key], data["digest"]
    data["digest"] = digest(data)
    plan.write_text(json.dumps(data))
    try:
        loaded = load_plan(plan)
    except InputError:
        return
    assert getattr(loaded, key) == []
