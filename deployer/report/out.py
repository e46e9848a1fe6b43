"""Where output goes: rich (colour, tables) on a terminal, plain text when piped.

Tables are built once as rows and drawn either as a rich Table or as plain aligned
columns, so the two forms cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Sequence

from ..model.owned import check_replace, write_atomic  # noqa: F401 (the writer lives below the layers)
from .escape import visible, visible_line
from .log import output as log_output

# rich is imported where a terminal is drawn on, not with this module: every command imports
# it, and `deployer --version`, `--help` or output to a pipe need none of rich's console.
if TYPE_CHECKING:
    from rich.progress import Progress


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)

STYLES = {"ok": "green", "newer": "cyan", "older": "red", "missing": "red", "mismatch": "red",
          "warn": "yellow", "bad": "bold red", "good": "bold green", "dim": "dim", "head": "bold"}


_color = True


def set_color(enabled: bool) -> None:
    """--no-color. (NO_COLOR in the environment is honoured by rich itself.)"""
    global _color
    _color = enabled


@dataclass
class Out:
    stream: IO[str]
    tty: bool
    # A terminal or pipe that fails (closed by `| head`, a dropped SSH session) must not stop
    # what is being reported: with tolerant=True the first failure is remembered and every
    # later write dropped. Files (reports, saved plans) are never tolerant: a full disk there
    # is an error the operator must see.
    tolerant: bool = False
    failed: OSError | None = None

    def __post_init__(self) -> None:
        if self.tty:
            from rich.console import Console
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False, soft_wrap=not self.tty,
                               emoji=False, no_color=True if not _color else None) if self.tty else None

    def line(self, text: str = "", style: str | None = None) -> None:
        self._guard(self._line, text, style)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] | None = None,
              indent: int = 2) -> None:
        self._guard(self._table, headers, rows, styles, indent)

    def _guard(self, fn, *args) -> None:
        if self.failed is not None:
            return
        if not self.tolerant:
            fn(*args)
            return
        try:
            fn(*args)
        except OSError as exc:  # EPIPE, EIO, ENOSPC...
            self.failed = exc

    def _line(self, text: str = "", style: str | None = None) -> None:
        text = visible(text)  # outside text (names, titles, quoted files) never drives the terminal
        if self.tolerant:
            log_output(text)
        if self.console is not None:
            self.console.print(f"[{STYLES.get(style, style)}]{escape(text)}[/]" if style else escape(text))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] | None,
               indent: int) -> None:
        # a cell is one line: a newline in outside text (an error quoting a file) would start a false row
        headers = [visible_line(h) for h in headers]
        rows = [[visible_line(c) for c in r] for r in rows]
        if self.tolerant:
            log_output("  " + "  ".join(headers))
            for r in rows:
                log_output("  " + "  ".join(r))
        if self.console is not None:
            from rich.table import Table

            t = Table(show_edge=False, box=None, padding=(0, 2, 0, 0), header_style="bold")
            for h in headers:
                t.add_column(h)
            for i, r in enumerate(rows):
                st = styles[i] if styles else None
                t.add_row(*[escape(c) for c in r], style=STYLES.get(st or "", st))
            self.console.print(t)
            return
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        pad = " " * indent
        self.stream.write(pad + "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip() + "\n")
        self.stream.write(pad + "  ".join("-" * w for w in widths) + "\n")
        for r in rows:
            self.stream.write(pad + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
        self.stream.flush()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):  # closed
        return False


def stdout() -> Out:
    return Out(sys.stdout, _isatty(sys.stdout), tolerant=True)


def stderr() -> Out:
    return Out(sys.stderr, _isatty(sys.stderr), tolerant=True)




class RunProgress:
    """A progress bar under the run's lines, on a terminal only. It starts at the first step
    (after any question to the operator, which a live display would garble) and is gone
    when the run ends."""

    def __init__(self, out: Out):
        self.out = out
        self.bar: Progress | None = None
        self.task = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.out.console is None:
            return
        if self.bar is None:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                       TimeElapsedColumn)

            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.out.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(what, total=total)
        self.bar.update(self.task, description=escape(visible(what)), completed=done, total=total)

    def say(self, text: str) -> None:
        self.out.line(text)  # rich prints above a live bar on the same console

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

