"""SMB1's deferred writes (the DEFERRED_WRITES capability, model/transport.py): the prepare's
uploads, write_file and set_mtime inside deferred_writes(), queued and sent together on leaving
the block, pipelined under their own Mids (impacket_pipeline.round_trip) as smb1batch.py's
copies are: three round trips a batch instead of three or four a file:

  - every file created (NT_CREATE_ANDX, FILE_CREATE where exclusive) together;
  - every file's WRITE_ANDX requests together;
  - each file's write time set, FLUSHed and CLOSEd, in this order (the server runs a file's
    requests in order, every WRITE answered before: nothing asynchronous left under the CLOSE),
    all files' together.

Each file is flushed before its CLOSE is sent, exactly as write_file() does it one by one. A file
that one batch cannot hold (BATCH_BYTES) is written alone by write_file(). The first error is
raised after every file was sent; the others are written.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .adapters import impacket_internals as lib
from .adapters import impacket_pipeline as pipe
from .base import TargetError, ns_to_filetime
from .smb1batch import BATCH, BATCH_BYTES, _status
from .smbsession import status_error
from .smbshare import _norm

if TYPE_CHECKING:
    from .smb1 import Smb1FileTransport


@dataclass
class Pending:
    rel: str
    chunks: Iterable[bytes]
    exclusive: bool
    mtime_ns: int | None = None  # set_mtime of the queued file, sent with its FLUSH


@contextmanager
def deferred_writes(t: "Smb1FileTransport") -> Iterator[None]:
    """write_file calls of the block (and set_mtime of a file written in it) are queued and sent
    together on leaving it; the first error is raised then. Any other request sends the queue
    first (Smb1FileTransport._op); a block left by an exception sends nothing of it."""
    outer = t._deferred is not None
    if not outer:
        t._deferred = []
    try:
        yield
        if not outer:
            send_deferred(t)
    finally:
        if not outer:
            t._deferred = None


def queue(t: "Smb1FileTransport", path: str, chunks: Iterable[bytes], exclusive: bool) -> bool:
    if t._deferred is None:
        return False
    t._deferred.append(Pending(_norm(path), chunks, exclusive))
    return True


def queue_mtime(t: "Smb1FileTransport", path: str, mtime_ns: int) -> bool:
    key = _norm(path).casefold()
    item = next((p for p in reversed(t._deferred or []) if p.rel.casefold() == key), None)
    if item is None:
        return False
    item.mtime_ns = mtime_ns
    return True


def send_deferred(t: "Smb1FileTransport") -> None:
    """Send what the block queued so far (called inside deferred_writes() only)."""
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


def write_many(t: "Smb1FileTransport", items: list[Pending]) -> list[TargetError | None]:
    """write_file (and set_mtime where given) of each item; each one's error or None."""
    out: list[TargetError | None] = [None] * len(items)
    data: dict[int, bytes] = {}
    part: list[int] = []
    held = 0

    def flush_part() -> None:
        nonlocal part, held
        if part:
            _write_batch(t, items, part, data, out)
            for k in part:
                data.pop(k, None)
        part, held = [], 0

    for k, p in enumerate(items):
        data[k] = b"".join(p.chunks)  # read as its batch goes out: a batch holds at most about BATCH_BYTES
        if len(data[k]) > BATCH_BYTES:
            flush_part()
            out[k] = _write_alone(t, p, data.pop(k))
            continue
        if part and (len(part) >= BATCH or held + len(data[k]) > BATCH_BYTES):
            flush_part()
        part.append(k)
        held += len(data[k])
    flush_part()
    return out


def _write_alone(t: "Smb1FileTransport", p: Pending, data: bytes) -> TargetError | None:
    try:
        t.write_file(p.rel, [data], exclusive=p.exclusive)
        if p.mtime_ns is not None:
            t.set_mtime(p.rel, p.mtime_ns)
    except TargetError as exc:
        return exc
    return None


def _write_batch(t: "Smb1FileTransport", items: list[Pending], part: list[int], data: dict[int, bytes],
                 out: list[TargetError | None]) -> None:
    with t._op("write", items[part[0]].rel):
        t._release_append(*(items[k].rel for k in part))
        tid = t._tree()
        conn = t.link.conn
        generation = t.link.generation
        opened: dict[int, lib.Opened] = {}
        try:
            creates = [pipe.create(tid, items[k].rel, lib.WRITE_DATA | lib.APPEND_DATA | lib.WRITE_ATTRIBUTES
                                   | lib.READ_ATTRIBUTES, lib.SHARE_READ,
                                   lib.FILE_CREATE if items[k].exclusive else lib.FILE_OVERWRITE_IF,
                                   lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE) for k in part]
            for k, got in zip(part, pipe.round_trip(conn, creates)):
                if isinstance(got, lib.Opened):
                    opened[k] = got
                else:
                    out[k] = status_error(_status(got) or 0, "write", server=t.server, path=items[k].rel)
            unit = conn.io_unit(write=True)
            requests: list[pipe.Request] = []
            writes: list[tuple[int, int]] = []  # (item, bytes) of each WRITE
            for k, o in opened.items():
                blob = memoryview(data[k])
                for at in range(0, len(blob), unit):
                    requests.append(pipe.write(tid, o.fid, at, blob[at:at + unit]))
                    writes.append((k, len(blob[at:at + unit])))
            for (k, want), got in zip(writes, pipe.round_trip(conn, requests)):
                _check(t, items[k].rel, want, got, out, k)
            requests, finishing = [], []
            for k, o in opened.items():
                if out[k] is None:
                    if items[k].mtime_ns is not None:
                        requests.append(pipe.set_write_time(tid, o.fid, ns_to_filetime(items[k].mtime_ns)))
                        finishing.append((k, "set write time"))
                    requests.append(pipe.flush(tid, o.fid))
                    finishing.append((k, "write"))
                requests.append(pipe.close(tid, o.fid))
                finishing.append((k, "write"))
            answers = pipe.round_trip(conn, requests)
            opened = {}
            for (k, what), got in zip(finishing, answers):
                if out[k] is None and _status(got) is not None:
                    out[k] = status_error(_status(got) or 0, what, server=t.server, path=items[k].rel)
        except BaseException:
            for o in opened.values():
                t._close_quietly(o.fid, generation)
            raise


def _check(t: "Smb1FileTransport", rel: str, want: int, got: Any, out: list[TargetError | None], k: int) -> None:
    if out[k] is not None:
        return
    if _status(got) is not None:
        out[k] = status_error(_status(got) or 0, "write", server=t.server, path=rel)
    elif got != want:
        out[k] = TargetError(f"write: the server wrote {got} of {want} bytes", server=t.server, path=rel)
