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
    out = t.expect("Apply these 19 actions to site DEMO? [y/N]")
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
    assert "[14/19] reset site" in text and "Summary: 31 files: 31 ok" in text


def _tmux_screen(ws: Workspace, *args: str, env: dict[str, str]) -> str:
    """Run `deployer ARGS` in a detached tmux session (its own server socket) and return the
    whole screen and scrollback as a person would see it after the command ended."""
    import shlex
    import shutil
    import uuid

    tmux = shutil.which("tmux")
    assert tmux, "tmux is needed for this test (scripts/test.sh installs it)"
    sock = f"deployer-test-{uuid.uuid4().hex[:8]}"
    done = ws.path / f"{sock}.done"
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in env.items()), shlex.quote(sys.executable),
                        "-m", "deployer", *map(shlex.quote, map(str, args)), f"; echo $? > {shlex.quote(str(done))}",
                        "; sleep 600"])
    subprocess.run([tmux, "-L", sock, "new-session", "-d", "-x", "160", "-y", "50", "-c", str(ws.path), command],
                   check=True)
    try:
        deadline = time.monotonic() + 120
        while not done.exists():
            assert time.monotonic() < deadline, "the command did not finish in tmux"
            time.sleep(0.2)
        return subprocess.run([tmux, "-L", sock, "capture-pane", "-p", "-S", "-2000"], capture_output=True,
                              text=True, check=True).stdout
    finally:
        subprocess.run([tmux, "-L", sock, "kill-server"], capture_output=True)


def test_progress_stays_clean_through_an_apply_and_a_rollback_on_a_terminal(ws: Workspace):
    """One console: step lines print above the live bar, never through it; when a rollback
    starts the bar is gone instead of frozen at "13/19"."""
    before = ws.state()
    screen = _tmux_screen(ws, "apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory,
                          env={"DEPLOYER_FAILPOINTS": "apply.action.13.after=raise", "COLUMNS": "160"})
    lines = [ln.rstrip() for ln in screen.splitlines() if ln.strip()]
    steps = [ln for ln in lines if re.match(r"^\[\d+/19\] ", ln)]
    assert [int(re.match(r"^\[(\d+)/", s).group(1)) for s in steps] == list(range(1, 14)), "\n".join(lines)
    for s in steps:  # nothing of the bar glued to a step line
        assert "━" not in s and not re.search(r"\d+/19\s*\d+:\d\d", s), s
    after_failure = lines[next(i for i, ln in enumerate(lines) if ln.startswith("FAILED")):]
    assert not [ln for ln in after_failure if "━" in ln or re.search(r"\b1[34]/19\b", ln)], "\n".join(after_failure)
    assert any("restore" in ln for ln in after_failure)
    assert ws.state() == before
