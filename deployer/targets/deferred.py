"""Deferred writes (the DEFERRED_WRITES capability, model/transport.py), the part every transport
does alike: write_file and set_mtime inside `deferred_writes()` are queued, and sent together
on leaving the block by the transport's own `write_many` (smb1write.py, sftpwrite.py). Any other
request of the transport sends the queue first (the transport calls `send_deferred` before it),
so nothing is reordered around the queued writes; a block left by an exception sends nothing
of it; the first error is raised after every queued file was sent, the others written.

The transport keeps the queue in its `_deferred` attribute: None outside a block.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..model import winpath
from .base import TargetError

WriteMany = Callable[[Any, list["Pending"]], list[TargetError | None]]


@dataclass
class Pending:
    path: str
    chunks: Iterable[bytes]  # read when the file is sent
    exclusive: bool
    mtime_ns: int | None = None  # set_mtime of the queued file, sent after its last write


@contextmanager
def deferred_writes(t: Any, write_many: WriteMany) -> Iterator[None]:
    if t._deferred is not None:  # within another block: that one sends it all
        yield
        return
    t._deferred = []
    try:
        yield
        send_deferred(t, write_many)
    finally:
        t._deferred = None


def queue(t: Any, path: str, chunks: Iterable[bytes], exclusive: bool) -> bool:
    """write_file inside a block: queued (True); outside one, False (the caller writes it now)."""
    if t._deferred is None:
        return False
    t._deferred.append(Pending(path, chunks, exclusive))
    return True


def queue_mtime(t: Any, path: str, mtime_ns: int) -> bool:
    """set_mtime of a file queued in this block: sent with it (True), else False."""
    key = winpath.key(path)
    item = next((p for p in reversed(t._deferred or []) if winpath.key(p.path) == key), None)
    if item is None:
        return False
    item.mtime_ns = mtime_ns
    return True


def send_deferred(t: Any, write_many: WriteMany) -> None:
    """Send what the block queued so far (inside a block only; outside it nothing is queued)."""
    queued = t._deferred
    if not queued:
        return
    t._deferred = None  # what goes out now (a file written alone among them too) is not queued again
    try:
        errors = write_many(t, queued)
    finally:
        t._deferred = []  # the block goes on queueing; deferred_writes() ends it
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
