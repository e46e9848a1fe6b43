"""What a file on a server looks like, as observed and as a plan wants it, and how that reads.

These are the words every layer shares (steps make them, plans carry them, runs journal
them, reports print them), so they live at the bottom: a step kind that describes its
action in a plan needs no report code, and a plan needs no step to read a state back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..sms import attrs


@dataclass
class FileState:
    size: int  # -1: a folder stands where the file should be
    mtime_ns: int
    sha256: str | None = None
    name: str | None = None  # the name's case on the server

    def same_content(self, other: "FileState | None") -> bool:
        return other is not None and (self.size, self.mtime_ns, self.sha256) == (other.size, other.mtime_ns, other.sha256)

    def matches(self, other: "FileState | None") -> bool:
        """Whether `other` is this state: its content where this one's sha256 is known; else (a
        before-state identified by fingerprint only, steps/base.py `by_identity`) its size and
        write time, the quick check (the sha256 `other` may carry decides nothing then)."""
        if self.sha256 is not None:
            return self.same_content(other)
        return other is not None and (self.size, self.mtime_ns) == (other.size, other.mtime_ns)


@dataclass(frozen=True)
class Touched:
    """A file a plan changes: what it was before (None: did not exist) and what it will be."""

    server: str
    path: str
    before: FileState | None
    after: FileState


def file_state(d: dict[str, Any] | None) -> FileState | None:
    """A FileState from its JSON form (None stays None: the file did not exist)."""
    return None if d is None else FileState(**d)


def stamp(ns: int, tz: ZoneInfo) -> str:
    """A write time as Explorer shows it on a server in zone `tz` (the articles' style)."""
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz)
    return f"{attrs.format_date(dt.date())} {attrs.format_time(dt.time())}"


def describe(state: FileState | None, tz: ZoneInfo) -> str:
    """`535,616 bytes, 9/10/99 7:00 PM`, or `(none)` for a file that does not exist."""
    if state is None:
        return "(none)"
    return f"{state.size:,} bytes, {stamp(state.mtime_ns, tz)}"
