"""On a terminal: apply shows the plan, asks before acting, and shows progress while it runs."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time

from conftest import Workspace

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """`deployer ...` on a pseudo-terminal, read and answered like an operator would."""

    def __init__(self, *args: str, cwd):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "deployer", *map(str, args)], cwd=cwd, stdin=slave,
                                     stdout=slave, stderr=slave, env={**os.environ, "COLUMNS": "160"})
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while text not in ANSI.sub("", self.seen):
            left = deadline - time.monotonic()
            assert left > 0, f"never saw {text!r}; saw:\n{ANSI.sub('', self.seen)[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:  # the child closed the terminal
                    break
        return ANSI.sub("", self.seen)

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if ready:
                try:
                    self.seen += os.read(self.master, 65536).decode("utf-8", "replace")
                except OSError:
                    break
        code = self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        os.close(self.master)
        return code


def test_apply_asks_before_acting_and_answering_no_touches_nothing(ws: Workspace):
    before = ws.state()
    t = Terminal("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    out = t.expect("Apply these 14 actions to site DEMO? [y/N]")
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV" in out  # the plan came first
    t.send("n\n")
    assert t.finish() == 0
    assert "Nothing was done." in ANSI.sub("", t.seen)
    assert ws.state() == before


def test_apply_on_a_terminal_runs_with_colour_and_progress_once_confirmed(ws: Workspace):
    t = Terminal("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    t.expect("[y/N]")
    t.send("y\n")
    assert t.finish() == 0
    raw = t.seen
    assert "\x1b[" in raw  # rich styled it: a terminal gets colour, a pipe plain text
    assert "\x1b[?25l" in raw  # the live progress display hid the cursor while it ran
    text = ANSI.sub("", raw)
    assert "[14/14] reset site" in text and "Summary: 15 files: 15 ok" in text
