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

from typing import TYPE_CHECKING

from .adapters import impacket_internals as lib
from .adapters import impacket_pipeline as pipe
from .base import TargetError, ns_to_filetime
from .deferred import Pending
from .smb1batch import BATCH, BATCH_BYTES
from .smb1rounds import _status, check_written, finish_written
from .smbsession import status_error
from .smbshare import _norm

if TYPE_CHECKING:
    from .smb1 import Smb1FileTransport


def write_many(t: "Smb1FileTransport", items: list[Pending]) -> list[TargetError | None]:
    """write_file (and set_mtime where given) of each item (deferred.py's queue); each one's error or None."""
    items = [Pending(_norm(p.path), p.chunks, p.exclusive, p.mtime_ns) for p in items]
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
        t.write_file(p.path, [data], exclusive=p.exclusive)
        if p.mtime_ns is not None:
            t.set_mtime(p.path, p.mtime_ns)
    except TargetError as exc:
        return exc
    return None


def _write_batch(t: "Smb1FileTransport", items: list[Pending], part: list[int], data: dict[int, bytes],
                 out: list[TargetError | None]) -> None:
    with t._op("write", items[part[0]].path):
        t._release_append(*(items[k].path for k in part))
        tid = t._tree()
        conn = t.link.conn
        generation = t.link.generation
        opened: dict[int, lib.Opened] = {}
        try:
            creates = [pipe.create(tid, items[k].path, lib.WRITE_DATA | lib.APPEND_DATA | lib.WRITE_ATTRIBUTES
                                   | lib.READ_ATTRIBUTES, lib.SHARE_READ,
                                   lib.FILE_CREATE if items[k].exclusive else lib.FILE_OVERWRITE_IF,
                                   lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE) for k in part]
            for k, got in zip(part, pipe.round_trip(conn, creates)):
                if isinstance(got, lib.Opened):
                    opened[k] = got
                else:
                    out[k] = status_error(_status(got) or 0, "write", server=t.server, path=items[k].path)
            unit = conn.io_unit(write=True)
            requests: list[pipe.Request] = []
            writes: list[tuple[int, int]] = []  # (item, bytes) of each WRITE
            for k, o in opened.items():
                blob = memoryview(data[k])
                for at in range(0, len(blob), unit):
                    requests.append(pipe.write(tid, o.fid, at, blob[at:at + unit]))
                    writes.append((k, len(blob[at:at + unit])))
            for (k, want), got in zip(writes, pipe.round_trip(conn, requests)):
                if out[k] is None:
                    out[k] = check_written(t, items[k].path, want, got)
            when = {k: ns_to_filetime(items[k].mtime_ns) for k in opened if items[k].mtime_ns is not None}
            finish_written(t, tid, opened, when, out, lambda k: items[k].path)
            opened = {}
        except BaseException:
            for o in opened.values():
                t._close_quietly(o.fid, generation)
            raise

