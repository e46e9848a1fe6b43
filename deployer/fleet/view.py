"""What the operator sees while a fleet runs, drawn on ONE console from many site threads.

On a terminal: a live panel (rich) with the counts (done, failed, running, waiting), the
payload bytes uploaded so far, and the current action (and bytes) of each running site,
and a summary line printed above it as each site ends (with the bytes it uploaded).
Piped: the same summary lines, one per site, in the order sites end, and nothing else, so
a log reads cleanly. With `-f json` nothing is drawn: standard output carries
the final JSON only (warnings still go to standard error). Each site's narrative goes to
the command's log, every line tagged with its site. Every entry point takes one lock:
site threads call in at any time.
"""

from __future__ import annotations

import sys
import threading
import time


from rich.console import Group
from rich.live import Live
from rich.text import Text

from .engine import SiteOutcome, SiteState
from ..run.prune import human
from ..report.heartbeat import Heartbeat, describe
from ..report.log import output as log_output
from ..report.escape import visible_line
from ..report.out import Out
from ..run import context as ev
from ..run.context import Event

STATE_STYLE = {SiteState.DONE: "good", SiteState.NOTHING: "good", SiteState.FAILED: "bad",
               SiteState.NOT_RESTORED: "bad", SiteState.MISMATCH: "bad", SiteState.UNREACHABLE: "bad",
               SiteState.NOT_STARTED: "warn"}
MAX_RUNNING_SHOWN = 20  # the panel stays a screenful whatever --forks is


def site_line(o: SiteOutcome) -> str:
    return f"{o.site}: {o.message}" + (f" ({human(o.bytes)} uploaded)" if o.bytes else "")


class _Panel:
    """The live panel as rich renders it: built at each refresh (4 a second), not at each
    event, so its clock runs while every site waits and nothing happens (issue 22). It reads
    the view's state without its lock: the refresh thread must not wait for a site thread
    that is itself waiting for the Live's lock to update it."""

    def __init__(self, view: "FleetConsole"):
        self.view = view

    def __rich__(self) -> Group:
        return self.view._panel()


class FleetConsole:
    def __init__(self, out: Out, err: Out, *, title: str, total: int, draw: bool = True, yes: bool = False,
                 live: bool = True):
        self.out = out
        self.err = err
        self.title = title
        self.total = total
        self.draw = draw  # False with -f json
        self.yes = yes
        self.live_wanted = live  # -q: no live panel, the summary lines only
        self.lock = threading.RLock()
        self.running: dict[str, str] = {}  # site -> its current action
        self.site_bytes: dict[str, int] = {}  # running site -> payload bytes it sent so far
        self.bytes = 0  # payload bytes sent by every site of the fleet so far
        self.finished: dict[SiteState, int] = {}
        self.live: Live | None = None
        self.started_at = time.monotonic()
        self.heartbeat = Heartbeat()  # piped: a line per long wait every 30 s

    # --- the live panel -----------------------------------------------------------------------

    def _panel(self) -> Group:
        finished, running, site_bytes = dict(self.finished), dict(self.running), dict(self.site_bytes)  # snapshots
        done = finished.get(SiteState.DONE, 0) + finished.get(SiteState.NOTHING, 0)
        failed = sum(finished.get(s, 0) for s in (SiteState.FAILED, SiteState.NOT_RESTORED, SiteState.MISMATCH))
        unreachable = finished.get(SiteState.UNREACHABLE, 0)
        ended = sum(finished.values())
        waiting = self.total - ended - len(running)
        head = Text.assemble((f"{self.title}: ", "bold"), (f"{done} done", "green"), ", ",
                             (f"{failed} failed", "bold red" if failed else ""), ", ",
                             *([(f"{unreachable} unreachable", "bold red"), ", "] if unreachable else []),
                             f"{len(running)} running, {waiting} waiting, {human(self.bytes)} uploaded",
                             f"  ({ended}/{self.total}, {time.monotonic() - self.started_at:.0f} s)")
        # one row a site: a newline in a step's text (a file's name) would draw a false row
        rows = [Text(visible_line(f"  {site}: {what}") + (f" ({human(site_bytes[site])})" if site_bytes.get(site) else ""),
                     style="dim", overflow="ellipsis", no_wrap=True)
                for site, what in list(running.items())[:MAX_RUNNING_SHOWN]]
        if len(running) > MAX_RUNNING_SHOWN:
            rows.append(Text(f"  ... and {len(running) - MAX_RUNNING_SHOWN} more", style="dim"))
        return Group(head, *rows)

    def _refresh(self) -> None:
        """Nothing to do: the Live's own thread redraws the _Panel 4 times a second from the
        current state (redrawing at each event would cost a render per uploaded chunk)."""

    def __enter__(self) -> "FleetConsole":
        if self.draw and self.live_wanted and self.out.console is not None:
            self.live = Live(_Panel(self), console=self.out.console, refresh_per_second=4, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self.lock:
            if self.live is not None:
                self.live.stop()
                self.live = None

    # --- FleetView ----------------------------------------------------------------------------

    def site_started(self, site: str) -> None:
        with self.lock:
            self.running[site] = "connecting"
            self._refresh()

    def site_event(self, event: Event) -> None:
        with self.lock:
            if event.kind == ev.WARN:
                self.err.line(f"{event.site}: {event.text}", "warn")
            elif event.kind == ev.PROGRESS and event.site in self.running:
                self.running[event.site] = f"[{event.data.get('done')}/{event.data.get('total')}] {event.text}"
            elif event.kind == ev.WAIT:
                if event.site in self.running:
                    self.running[event.site] = describe(event)
                # piped (no live panel): a heartbeat line, so a ten-minute wait does not look like a hang
                if self.draw and self.live_wanted and self.out.console is None and (
                        line := self.heartbeat.line(event)):
                    self.out.line(line, "dim")
            elif event.kind == ev.BYTES:
                count = int(event.data.get("bytes") or 0)
                self.bytes += count
                if event.site in self.running:
                    self.site_bytes[event.site] = self.site_bytes.get(event.site, 0) + count
            elif event.kind == ev.SAY:
                log_output(f"{event.site}: {event.text}")  # each site's narrative, tagged, in the command's log
                if event.site in self.running and event.text.strip():
                    self.running[event.site] = event.text.strip()
            self._refresh()

    def site_finished(self, outcome: SiteOutcome) -> None:
        with self.lock:
            self.running.pop(outcome.site, None)
            self.site_bytes.pop(outcome.site, None)
            self.finished[outcome.state] = self.finished.get(outcome.state, 0) + 1
            # -q (no live panel): only the sites that did not end well, then the totals (issue 22)
            if self.draw and (self.live_wanted or not outcome.state.finished_well):
                self.out.line(site_line(outcome), STATE_STYLE.get(outcome.state))
            self._refresh()

    def note(self, text: str) -> None:
        with self.lock:
            (self.out if self.draw else self.err).line(text, "warn")

    def ask(self, question: str) -> bool:
        """A question mid-rollout (after the canary). Without a terminal and without --yes the
        answer is no: a canary exists to stop a rollout, so an unattended one pauses there and
        `--resume` continues it."""
        with self.lock:
            if self.yes:
                return True
            if not _stdin_tty():
                self.err.line(f"{question} No terminal to ask on, so the rollout pauses here (--yes goes on "
                              "when the canary passes).", "warn")
                return False
            live = self.live
            if live is not None:
                live.stop()
            import typer

            try:
                return typer.confirm(question, default=False, err=True)
            except (typer.Abort, KeyboardInterrupt, EOFError):
                # Ctrl-C at this question: the canary sites are done, so this is a "no", not
                # "nothing was done"; the rollout stops here and --resume continues it
                return False
            finally:
                if live is not None:
                    live.start()


def _stdin_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


