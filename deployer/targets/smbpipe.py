"""Writes and hard links of many files over SMB 2/3 in the round trips of one.

A small file is written with one related compound, CREATE + WRITE (all of it) + SET_INFO
(its write time, when asked) + FLUSH, and closed (with its attributes) in a second one: two
round trips, where one request at a time took four or five (open, write, flush, close, and
set_mtime's own open, set and close). The files of a batch do not depend on each other, so
each step is sent for every file before any answer is taken (smbbatch.compounds): a batch
costs what one file costs, within the credits the server granted.

FLUSH stays last in its compound (it may go asynchronous, which Samba allows only to the
last request of a compound) and the CLOSE waits for its answer: the data is on the server's
disk before the handle is closed, as write_file's own order has it. What each answer proves
is unchanged (each WRITE's count checked; the content remembered only on a signed or
encrypted session: smbknown.py).

`SmbFileTransport.deferred_writes()` queues the write_file (and set_mtime of a file written
meanwhile) calls of a block and sends them here on leaving it; any other request of the
transport sends the queue first, so nothing is reordered around it.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileAttributes, FileLinkInformation
from smbprotocol.open import CreateDisposition, CreateOptions, FilePipePrinterAccessMask as File, Open, ShareAccess

from . import smbbatch
from .smbbatch import SPARE_CREDITS  # kept back for the requests that follow a batch
from .base import TargetError
from .smbbase import SHARE_ALL, Action, _norm, ns_to_filetime
from .smbconn import IO_SIZE
from .smbfast import PAYLOAD_UNIT  # a WRITE of this much charges one credit
from .smbknown import version_of

if TYPE_CHECKING:
    from .smb import SmbFileTransport


@dataclass
class Pending:
    """A file to write: its content (read when its compound is built), and the write time to
    give it (ns) if any."""

    rel: str
    chunks: Iterable[bytes]
    exclusive: bool = False
    mtime_ns: int | None = None
    data: bytes = b""


INLINE = IO_SIZE  # the largest file written in one WRITE of a compound (a larger one is streamed)


def _charge(p: Pending) -> int:
    return 3 + (1 if p.mtime_ns is not None else 0) + max(1, (len(p.data) - 1) // PAYLOAD_UNIT + 1)


def _caught(unpack: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The unpack, its TargetError (a short count) returned as the answer: every answer of a
    batch is taken, whatever one of them says."""
    def unpack_or_error(request: Any) -> Any:
        try:
            return unpack(request)
        except TargetError as exc:
            return exc
    return unpack_or_error


def _read(p: Pending, limit: int) -> Iterator[bytes] | None:
    """Take the file's bytes into p.data, up to `limit`; the rest (to stream) if there is more."""
    it = iter(p.chunks)
    head: list[bytes] = []
    size = 0
    for c in it:
        head.append(c)
        size += len(c)
        if size > limit:
            return itertools.chain(head, it)
    p.data = b"".join(head)
    return None


class _Batch:
    """Compounds sent as each file's bytes are read (a file read later is still on its way while
    earlier ones are in flight), answers taken at the end."""

    def __init__(self, t: "SmbFileTransport", tree: Any):
        self.t, self.tree = t, tree
        self.items: list[int] = []
        self.handles: dict[int, Open] = {}
        self.groups: list[list[Action]] = []
        self.sent: list[list[Any]] = []

    def add(self, k: int, p: Pending) -> None:
        t, fh = self.t, Open(self.tree, p.rel)
        group = [t._create(fh, File.FILE_WRITE_DATA | File.FILE_APPEND_DATA | File.FILE_WRITE_ATTRIBUTES
                           | File.FILE_READ_ATTRIBUTES, ShareAccess.FILE_SHARE_READ,
                           CreateDisposition.FILE_CREATE if p.exclusive else CreateDisposition.FILE_OVERWRITE_IF,
                           CreateOptions.FILE_NON_DIRECTORY_FILE, FileAttributes.FILE_ATTRIBUTE_ARCHIVE)]
        if p.data:
            write, _ = fh.write(p.data, 0, send=False)
            group.append((write, _caught(t._written(len(p.data), p.rel))))
        if p.mtime_ns is not None:
            group.append(t._set_info(fh, smbbatch._write_time(ns_to_filetime(p.mtime_ns))))
        group.append(fh.flush(send=False))  # last: it may go asynchronous
        self.items.append(k)
        self.handles[k] = fh
        self.groups.append(group)
        self.sent.append(smbbatch.send(t.link, self.tree, group))

    def finish(self, items: list[Pending], out: list[Any]) -> None:
        """Every answer taken, then every opened handle closed (the FLUSH answered first)."""
        t = self.t
        generation = t.link.generation
        opened: list[int] = []
        try:
            answers = smbbatch.take(t.link, self.groups, self.sent)
            for k, got in zip(self.items, answers):
                if not isinstance(got[0], SMBResponseException):
                    opened.append(k)
                bad = next((a for a in got if isinstance(a, (SMBResponseException, TargetError))), None)
                out[k] = t._fail(bad.status, "write", items[k].rel) if isinstance(bad, SMBResponseException) \
                    else bad if bad is not None else len(items[k].data)
            closing, opened = opened, []
            closed = smbbatch.compounds(t.link, self.tree, [[self.handles[k].close(get_attributes=True, send=False)
                                                             for k in closing]], related=False)[0] if closing else []
        except BaseException:
            for k in opened:
                t._close_quietly(self.handles[k], generation)
            raise
        protected = t._protected(self.tree)
        for k, answer in zip(closing, closed):
            if isinstance(out[k], TargetError):
                continue
            if isinstance(answer, SMBResponseException):
                out[k] = t._fail(answer.status, "write", items[k].rel)
                continue
            fh = self.handles[k]
            if items[k].mtime_ns is not None:
                t.known.saw_times_set(version_of(fh))  # as set_mtime learns it
            if protected:  # counted, flushed and signed: see smbknown.py
                t.known.remember(items[k].rel, version_of(fh), hashlib.sha256(items[k].data).hexdigest(), wrote=True)


def write_many(t: "SmbFileTransport", items: list[Pending]) -> list[int]:
    """Write every file (created anew, or overwritten unless `exclusive`), each made durable
    before its handle is closed; raises the first error in the order of `items` once every
    answer is in (the other files are written). Returns the bytes written of each. A file is
    read when its compound is built, so the files before it are on the wire meanwhile; one
    too large for a single WRITE is streamed once the compounds before it are answered."""
    out: list[Any] = [0] * len(items)
    i = 0
    while i < len(items):
        big: Iterator[bytes] | None = None
        with t._op("write", items[i].rel):
            tree = t._tree()
            limit = min(INLINE, t.link.connection.max_write_size)
            budget = max(1, t.link.available_credits() - SPARE_CREDITS)
            batch = _Batch(t, tree)
            while i < len(items):
                p = items[i]
                t._release_append(p.rel)
                t.known.forget(p.rel)
                try:
                    big = _read(p, limit) if not p.data else None
                except BaseException:  # the caller's generator failed (cancelled): what went out is closed
                    try:
                        batch.finish(items, out)
                    except Exception:  # noqa: BLE001 - the generator's own error is the one to raise
                        pass
                    raise
                if big is not None or (batch.items and _charge(p) > budget):
                    break  # the rest after this batch's answers
                budget -= _charge(p)
                batch.add(i, p)
                i += 1
            batch.finish(items, out)
            if big is not None:  # in the same operation: a link lost while its bytes were read is lost here
                try:
                    out[i] = t._write_streamed(items[i].rel, big, items[i].exclusive)
                    if items[i].mtime_ns is not None:
                        t.set_mtime(items[i].rel, items[i].mtime_ns)
                except TargetError as exc:
                    out[i] = exc
                i += 1
    for r in out:
        if isinstance(r, TargetError):
            raise r
    return out


def hard_link_many(t: "SmbFileTransport", pairs: list[tuple[str, str]]) -> list[TargetError | None]:
    """hard_link(src, dst) of every pair, each one compound (open the source for its attributes,
    FileLinkInformation, close) sent with the others before any answer is taken: one round trip
    a batch. None where it was done, else the error hard_link() would have raised."""
    out: list[TargetError | None] = [None] * len(pairs)
    for start in range(0, len(pairs), smbbatch.BATCH):
        idx = list(range(start, min(len(pairs), start + smbbatch.BATCH)))
        rels = {i: (_norm(pairs[i][0]), _norm(pairs[i][1])) for i in idx}
        with t._op("link", rels[idx[0]][0]):
            for _, d in rels.values():
                t._release_append(d)
                t.known.forget(d)
            tree = t._tree()
            groups = []
            for i in idx:
                fh = Open(tree, rels[i][0])
                info = FileLinkInformation()
                info["replace_if_exists"] = False
                info["file_name"] = rels[i][1]
                groups.append([t._create(fh, File.FILE_WRITE_ATTRIBUTES | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                                         CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                               t._set_info(fh, info), fh.close(send=False)])
            answers = smbbatch.compounds(t.link, tree, groups)
        for i, (opened, linked, _) in zip(idx, answers):
            s, d = rels[i]
            if isinstance(opened, SMBResponseException):
                out[i] = t._fail(opened.status, "link", s)
            elif isinstance(linked, SMBResponseException):
                out[i] = t._fail(linked.status, f"link {s} as", d)
    return out
