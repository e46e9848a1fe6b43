"""SFTP's deferred writes (the DEFERRED_WRITES capability, model/transport.py): the prepare's
uploads, write_file and set_mtime inside deferred_writes(), queued and sent together on leaving
the block, in the round trips of about one file instead of five each:

  - every file's lookup together (sftpmany.find_many: one round trip);
  - every OPEN (create, exclusive where asked) together: one round trip;
  - for each file its WRITEs, fsync@openssh.com, CLOSE and the SETSTAT of its write time, all
    files' together (up to IN_FLIGHT bytes of writes in flight): a round trip per IN_FLIGHT.
    OpenSSH's sftp-server runs a session's requests one at a time in the order they come, so
    each fsync covers its file's writes and each write time is set after its last write,
    exactly as write_file() then set_mtime() do it one by one.

Whatever a batch does not settle as one call at a time would (a name that exists, a failed
lookup or OPEN, a write time SFTP cannot carry) is written alone by write_file(), which reports
its error. A write that fails once its bytes went out is reported as write_file() reports it
(a full disk said as such). The first error is raised after every file was sent.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from paramiko.sftp import (CMD_CLOSE, CMD_EXTENDED, CMD_OPEN, CMD_SETSTAT, CMD_WRITE, SFTP_FLAG_CREATE, SFTP_FLAG_EXCL,
                           SFTP_FLAG_TRUNC, SFTP_FLAG_WRITE, int64)
from paramiko.sftp_attr import SFTPAttributes

from .base import TargetError
from .deferred import Pending
from .sftpmany import _handle, find_many
from .sftppaths import _folder, _Found
from .sftpsession import IN_FLIGHT, SftpStatusError, _Replies

if TYPE_CHECKING:
    from .sftp import SftpFiles


def write_many(files: "SftpFiles", items: list[Pending]) -> list[TargetError | None]:
    """write_file (and set_mtime where given) of each item (deferred.py's queue); each one's error or None."""
    out: list[TargetError | None] = [None] * len(items)
    files._release_append(*(p.path for p in items))
    found = find_many(files, [p.path for p in items], want_parent=True)
    going: list[tuple[int, _Found]] = []
    alone: list[int] = []
    for i, (p, f) in enumerate(zip(items, found)):
        seconds = None if p.mtime_ns is None else p.mtime_ns // 10**9
        if isinstance(f, TargetError) or f.attrs is not None or (seconds is not None and not 0 <= seconds < 2**32):
            alone.append(i)  # write_file and set_mtime alone say what is wrong, or replace what is there
        else:
            going.append((i, f))
    if going:
        alone += _write_batch(files, items, going, out)
    for i in sorted(alone):
        p = items[i]
        try:
            files.write_file(p.path, p.chunks, exclusive=p.exclusive)
            if p.mtime_ns is not None:
                files.set_mtime(p.path, p.mtime_ns)
        except TargetError as exc:
            out[i] = exc
    return out


def _write_batch(files: "SftpFiles", items: list[Pending], going: list[tuple[int, _Found]],
                 out: list[TargetError | None]) -> list[int]:
    """One batch of new files: opened together, then written, fsynced, closed and given their
    write times together. Returns the items to write alone (their OPEN failed: nothing sent)."""
    sftp = files._session()
    first = items[going[0][0]].path
    with files._writing("create the file", first, _folder(going[0][1].path)):
        replies = _Replies(sftp)
        nums = [replies.send(CMD_OPEN, f.path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE
                             | (SFTP_FLAG_EXCL if items[i].exclusive else SFTP_FLAG_TRUNC), SFTPAttributes())
                for i, f in going]
        handles = [_handle(replies, n) for n in nums]
    alone = [i for (i, _), h in zip(going, handles) if h is None]  # write_file alone says why
    opened = [(i, f, h) for (i, f), h in zip(going, handles) if h is not None]
    failed: dict[int, SftpStatusError] = {}
    pending: deque[tuple[int, int, int]] = deque()  # (item, request, bytes) in flight, oldest first
    flying = 0  # bytes of WRITEs in flight: the window counts bytes, so small requests never wait

    def reap() -> None:
        nonlocal flying
        i, num, size = pending.popleft()
        flying -= size
        try:
            replies.wait(num)
        except SftpStatusError as exc:
            failed.setdefault(i, exc)

    fsync = sftp.offers("fsync@openssh.com")
    total = 0
    try:
        with files._guard("write the file", first):
            for i, f, handle in opened:
                offset = 0
                for block in items[i].chunks:
                    view = memoryview(block)
                    for k in range(0, len(view), sftp.write_len):
                        piece = bytes(view[k:k + sftp.write_len])
                        pending.append((i, replies.send(CMD_WRITE, handle, int64(offset), piece), len(piece)))
                        offset += len(piece)
                        flying += len(piece)
                        while flying > IN_FLIGHT:
                            reap()
                total += offset
                if fsync:  # on disk before its CLOSE, as write_file makes it
                    pending.append((i, replies.send(CMD_EXTENDED, "fsync@openssh.com", handle), 0))
                pending.append((i, replies.send(CMD_CLOSE, handle), 0))
                if items[i].mtime_ns is not None:
                    seconds = items[i].mtime_ns // 10**9  # SFTP version 3 carries whole seconds
                    attr = SFTPAttributes()
                    attr.st_atime, attr.st_mtime = int(time.time()), seconds
                    pending.append((i, replies.send(CMD_SETSTAT, f.path, attr), 0))
            while pending:
                reap()
    except BaseException:
        for _, _, handle in opened:  # a source that failed or a cancellation: no handle left open
            files._close_quietly(handle)
        files._forget(*(items[i].path for i, _, _ in opened))
        raise
    if sftp.meter is not None:
        sftp.meter.wrote(total)
    for i, f, _ in opened:
        p = items[i]
        if i in failed:
            files._forget(p.path)
            try:
                with files._writing("write the file", p.path, _folder(f.path)):
                    raise failed[i]
            except TargetError as exc:
                out[i] = exc
        else:
            files._noted((p.path,), ())
    return alone
