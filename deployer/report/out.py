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
from rich.table import Table

STYLES = {"ok": "green", "newer": "cyan", "older": "red", "missing": "red", "mismatch": "red",
          "warn": "yellow", "bad": "bold red", "good": "bold green", "dim": "dim", "head": "bold"}


@dataclass
class Out:
    stream: IO[str]
    tty: bool

    def __post_init__(self) -> None:
        self.console = Console(file=self.stream, force_terminal=self.tty, highlight=False, soft_wrap=not self.tty,
                               emoji=False) if self.tty else None

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
