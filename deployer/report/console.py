"""The operator's view of a run: a sink for run events (run/context.py), drawing on ONE
console, so step lines print above the live progress bar and never through it.

Questions go to the terminal whenever standard input is one (the answer is read there),
even when the output is piped to a file. Without a terminal and without `--yes` there is
no one to answer: the answer is no and the question is remembered (`refused`), so that the
command ends with exit 2 naming --yes, as Terraform does without -auto-approve. A script
must say --yes; a command that has nothing to ask (nothing to do) needs no --yes. A
rollback freezes the bar: it is removed and the undo's lines follow in plain text.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

from ..errors import InputError
from ..run import context as ev
from .heartbeat import describe
from .log import output as log_output
from .out import Out, RunProgress


class ConsoleRenderer:
    def __init__(self, out: Out, err: Out, *, yes: bool, show_plan: Callable[[Any], None] | None = None,
                 bar: bool = True, quiet: bool = False):
        self.out = out
        self.err = err
        self.yes = yes
        self.quiet = quiet  # -q: the run's narrative goes to the log only
        self.show_plan = show_plan
        self.progress = RunProgress(out) if bar else None
        self.last_progress: tuple[int, int] = (0, 0)
        self.refused: str | None = None  # the question no one was there to answer

    def __call__(self, event: ev.Event) -> Any:
        if event.kind == ev.SAY:
            if event.text.startswith("FAILED") and self.progress is not None:
                self.progress.close()  # the bar would keep saying "13/14" through the rollback
                self.progress = None
            if self.quiet and not event.text.startswith("FAILED"):
                log_output(event.text)
            else:
                self.out.line(event.text)
        elif event.kind == ev.WARN:
            self.err.line(event.text, "warn")
        elif event.kind == ev.PROGRESS:
            self.last_progress = (event.data["done"], event.data["total"])
            if self.progress is not None:
                self.progress(event.text, event.data["done"], event.data["total"])
        elif event.kind == ev.WAIT:
            # on a terminal the bar says how long so far; piped, the run's own heartbeat lines
            # (Runner.wait_for, every 30 s) say it
            if self.out.console is not None and self.progress is not None:
                self.progress(describe(event), *self.last_progress)
        elif event.kind == ev.PLAN:
            if self.show_plan is not None and "plan" in event.data and not (self.quiet and self.yes):
                self.show_plan(event.data["plan"])
        elif event.kind == ev.QUESTION:
            return self.ask(event.text)
        return None

    def ask(self, question: str) -> bool:
        if self.yes:
            return True
        if not _stdin_tty():
            self.refused = self.refused or question
            return False
        if self.progress is not None:
            self.progress.close()
        import typer

        # the question goes to stderr, which is the terminal even when stdout is piped to a log
        try:
            return typer.confirm(question, default=False, err=True)
        except typer.Abort:
            # Ctrl-C (or end of input) at the question: click says Abort, an Exception the run's
            # event sink would swallow as "no"; the operator interrupted, so exit 130
            raise KeyboardInterrupt from None

    def close(self) -> None:
        if self.progress is not None:
            self.progress.close()

    def __enter__(self) -> "ConsoleRenderer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def no_terminal(question: str) -> InputError:
    """The error of a command that would change a site (or delete data) with no one to ask."""
    return InputError(f"no terminal to ask \"{question}\" and --yes was not given, so nothing was done; answer it "
                      "on a terminal, or pass --yes to act without asking (scripts, CI)")


def _stdin_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False
