"""Heartbeat lines for long waits when output is piped: a log that says nothing for ten
minutes looks like a hang. At most one line per site every EVERY seconds of a wait,
counted on the wait's own clock (the WAIT events' `elapsed`), so the rate does not depend on
how often the wait polls."""

from __future__ import annotations

from ..run.context import Event

EVERY = 30.0


def describe(event: Event) -> str:
    """"waiting for replication to DEMOLOG1, 120 s of 600"."""
    return f"{event.text}, {float(event.data.get('elapsed') or 0):.0f} s of {float(event.data.get('timeout') or 0):.0f}"


class Heartbeat:
    def __init__(self, every: float = EVERY):
        self.every = every
        self.last: dict[str, int] = {}  # site -> the last 30 s mark a line was printed for

    def line(self, event: Event) -> str | None:
        """The line to print for this WAIT event, or None (not yet another EVERY seconds)."""
        mark = int(float(event.data.get("elapsed") or 0) // self.every)
        if mark < self.last.get(event.site, 0):  # a new wait on this site: its clock started again
            self.last[event.site] = 0
        if mark < 1 or mark <= self.last.get(event.site, 0):
            return None
        self.last[event.site] = mark
        return f"{event.site}: {describe(event)}"
