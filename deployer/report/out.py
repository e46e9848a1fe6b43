"""Where output goes: rich (colour, tables) on a terminal, plain text when piped.

Tables are built once as rows and drawn either as a rich Table or as plain aligned
columns, so the two forms cannot drift apart.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import IO, Sequence

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

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

    def __post_init__(self) -> None:
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False, soft_wrap=not self.tty,
                               emoji=False, no_color=True if not _color else None) if self.tty else None

    def line(self, text: str = "", style: str | None = None) -> None:
        if self.console is not None:
            self.console.print(f"[{STYLES.get(style, style)}]{escape(text)}[/]" if style else escape(text))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], styles: Sequence[str | None] | None = None,
              indent: int = 2) -> None:
        if self.console is not None:
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


def stdout() -> Out:
    return Out(sys.stdout, sys.stdout.isatty())


def stderr() -> Out:
    return Out(sys.stderr, sys.stderr.isatty())


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
            self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=self.out.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(what, total=total)
        self.bar.update(self.task, description=escape(what), completed=done, total=total)

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

