"""Many files at once over SMB 2/3: server-side copies and read-backs of a batch of files in a
few round trips whatever the batch's size.

One file's operation is a few compounds, each waiting for the one before (the copy needs the
resume key the source's open answers; the FLUSH must answer before the CLOSE). Files of a
batch do not depend on each other, so each step is sent for every file of the batch before
any answer is taken (pipelined: separate messages, so that a request the server answers
asynchronously, a copy or a FLUSH, is still the last of its compound, as Samba requires), and
the batch costs what one file costs. The order of the steps of each file is unchanged, and so
is what each answer proves (see smb.py's copy and smbknown.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smbprotocol.connection import Request
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileAttributes, FileBasicInformation, FileRenameInformation
from smbprotocol.ioctl import CtlCode, SMB2SrvCopyChunk, SMB2SrvCopyChunkCopy, SMB2SrvCopyChunkResponse, \
    SMB2SrvRequestResumeKey
from smbprotocol.open import CreateDisposition, CreateOptions, DirectoryAccessMask as Dir, \
    FilePipePrinterAccessMask as File, Open, QueryDirectoryFlags, ShareAccess
from smbprotocol.tree import TreeConnect

from .base import AccessDenied, FileStat, NotADirectory, TargetError
from .smbbase import _WILDCARDS, COPY_CHUNK, COPY_CHUNKS, SHARE_ALL, Action, _norm, ns_to_filetime
from .smbconn import END_OF_FILE, IO_SIZE, MISSING, NOT_A_DIRECTORY, SmbLink
from .smbfast import PAYLOAD_UNIT  # a READ of this much charges one credit
from .smbknown import version_of
from .smbread import NO_MORE, listed

if TYPE_CHECKING:
    from .smb import SmbFileTransport

BATCH = 32  # files whose requests are in flight at once (up to 3 requests and credits each a round for a copy)
SPARE_CREDITS = 16  # kept back from a batch of reads for the requests that follow


def compounds(link: SmbLink, tree: TreeConnect, groups: list[list[Action]], related: bool = True) -> list[list[Any]]:
    """Each group sent as one compound, all of them before any answer is taken: one round trip.
    Every answer is taken even after a failure (smbprotocol keeps unreceived ones forever)."""
    sent = [send(link, tree, g, related) for g in groups]
    return take(link, groups, sent)


def send(link: SmbLink, tree: TreeConnect, group: list[Action], related: bool = True) -> list[Request]:
    """One group sent as one compound, its answers not waited for (take() them)."""
    conn = link.connection
    sid, tid = link.session.session_id, tree.tree_connect_id
    return [conn.send(group[0][0], sid, tid)] if len(group) == 1 else \
        conn.send_compound([m for m, _ in group], sid, tid, related=related)


def take(link: SmbLink, groups: list[list[Action]], sent: list[list[Request]]) -> list[list[Any]]:
    """The answers of groups sent by send(), each unpacked or its status error, every one taken."""
    out = []
    for g, requests in zip(groups, sent):
        answers = []
        for (_, unpack), req in zip(g, requests):
            try:
                answers.append(unpack(req))
            except SMBResponseException as exc:
                answers.append(exc)
        out.append(answers)
    link.progress()
    return out


def _first_error(answers: list[Any]) -> SMBResponseException | None:
    return next((a for a in answers if isinstance(a, SMBResponseException)), None)


def copy_many(t: "SmbFileTransport", pairs: list[tuple[str, str]],
              mtimes: list[int | None] | None = None) -> list[TargetError | None]:
    """copy(src, dst) of every pair; None where it was done, else the error copy() would have
    raised (the others are still done). Four round trips a batch: the sources opened with their
    resume keys, the destinations created and filled, their write times set and flushed, all
    closed. A source larger than one copy request is copied on its own, as copy() does.
    `mtimes`: the write time (ns) each copy is to have instead of its source's, set in the same
    request that would set the source's (copy then set_mtime, without set_mtime's round trip)."""
    out: list[TargetError | None] = [None] * len(pairs)
    alone: list[int] = []
    for start in range(0, len(pairs), BATCH):
        idx = list(range(start, min(len(pairs), start + BATCH)))
        for i in idx:
            s, d = _norm(pairs[i][0]), _norm(pairs[i][1])
            if s.casefold() == d.casefold():
                out[i] = TargetError("copy: the source and the destination are the same file", server=t.server,
                                     path=s)
        todo = [i for i in idx if out[i] is None]
        if todo:
            alone += _copy_batch(t, pairs, todo, out, mtimes)
    for i in alone:
        try:
            t.copy(*pairs[i])
            if mtimes is not None and mtimes[i] is not None:
                t.set_mtime(pairs[i][1], mtimes[i])
        except TargetError as exc:
            out[i] = exc
    return out


def _copy_batch(t: "SmbFileTransport", pairs: list[tuple[str, str]], todo: list[int],
                out: list[TargetError | None], mtimes: list[int | None] | None) -> list[int]:
    """One batch of copy_many; returns the pairs too large for it (copied alone afterwards)."""
    rels = {i: (_norm(pairs[i][0]), _norm(pairs[i][1])) for i in todo}
    opened: list[Open] = []
    too_large: list[int] = []
    with t._op("copy", rels[todo[0]][0]):
        t._release_append(*(d for _, d in rels.values()))
        tree = t._tree()
        generation = t.link.generation
        try:
            srcs = {i: Open(tree, rels[i][0]) for i in todo}
            first = compounds(t.link, tree, [[
                t._create(srcs[i], File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                          CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                t._query_basic(srcs[i]), t._ioctl(srcs[i], CtlCode.FSCTL_SRV_REQUEST_RESUME_KEY, output=32)]
                for i in todo])
            going: dict[int, tuple[Open, Open, int, Any]] = {}  # i -> (source, dest, write time, known)
            for i, answers in zip(todo, first):
                if not isinstance(answers[0], SMBResponseException):
                    opened.append(srcs[i])
                bad = _first_error(answers)
                if bad is not None:
                    out[i] = t._fail(bad.status, "copy", rels[i][0])
                    continue
                if not 0 < srcs[i].end_of_file <= COPY_CHUNK * COPY_CHUNKS:  # empty: no chunk to send
                    too_large.append(i)
                    continue
                key = SMB2SrvRequestResumeKey()
                key.unpack(answers[2])
                content = t.known.get(rels[i][0], version_of(srcs[i]))  # the source as this session knows it
                t.known.forget(rels[i][1])
                wanted = mtimes[i] if mtimes is not None else None
                going[i] = (srcs[i], Open(tree, rels[i][1]),
                            ns_to_filetime(wanted) if wanted is not None else answers[1]["last_write_time"].get_value(),
                            (key["resume_key"].get_value(), content))
            # create each destination and copy into it: the copy last in its compound (it may go asynchronous)
            order = list(going)
            second = compounds(t.link, tree, [[
                t._create(going[i][1], File.FILE_WRITE_DATA | File.FILE_READ_DATA | File.FILE_WRITE_ATTRIBUTES
                          | File.FILE_READ_ATTRIBUTES, ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF,
                          CreateOptions.FILE_NON_DIRECTORY_FILE, FileAttributes.FILE_ATTRIBUTE_ARCHIVE),
                t._ioctl(going[i][1], CtlCode.FSCTL_SRV_COPYCHUNK_WRITE, _chunks(going[i][3][0], going[i][0].end_of_file),
                         12)] for i in order])
            done = []
            for i, answers in zip(order, second):
                if not isinstance(answers[0], SMBResponseException):
                    opened.append(going[i][1])
                bad = _first_error(answers)
                if bad is not None:
                    out[i] = t._fail(bad.status, "copy to", rels[i][1])
                    continue
                size = going[i][0].end_of_file
                got = SMB2SrvCopyChunkResponse()
                got.unpack(answers[1])
                chunks = (size - 1) // COPY_CHUNK + 1  # not empty: see the first step
                if got["chunks_written"].get_value() != chunks or got["total_bytes_written"].get_value() != size:
                    out[i] = TargetError(f"copy to: the server copied {got['total_bytes_written'].get_value()} of "
                                         f"{size} bytes", server=t.server, path=rels[i][1])
                    continue
                done.append(i)
            # CopyFile keeps the source's write time; then each copy made durable (FLUSH last in its compound)
            third = compounds(t.link, tree, [[t._set_info(going[i][1], _write_time(going[i][2])),
                                               going[i][1].flush(send=False)] for i in done], related=False)
            for i, answers in zip(done, third):
                bad = _first_error(answers)
                if bad is not None:
                    out[i] = t._fail(bad.status, "copy to", rels[i][1])
            closing = list(opened)
            opened.clear()
            copied = {id(going[i][1]): i for i in done}  # a destination's handle -> its pair
            closed = compounds(t.link, tree, [[o.close(get_attributes=id(o) in copied, send=False)
                                               for o in closing]], related=False)[0] if closing else []
            for o, answer in zip(closing, closed):
                i = copied.get(id(o))
                if i is None or out[i] is not None:
                    continue
                if isinstance(answer, SMBResponseException):
                    out[i] = t._fail(answer.status, "copy to", rels[i][1])
                    continue
                if mtimes is not None and mtimes[i] is not None:
                    t.known.saw_times_set(version_of(o))  # as set_mtime learns it
                if going[i][3][1] is not None:  # every chunk and byte reported copied: see smbknown.py
                    t.known.remember(rels[i][1], version_of(o), going[i][3][1].sha256, wrote=going[i][3][1].wrote)
        except BaseException:
            for o in opened:
                t._close_quietly(o, generation)
            raise
    return too_large


def _chunks(key: bytes, size: int) -> SMB2SrvCopyChunkCopy:
    copy = SMB2SrvCopyChunkCopy()
    copy["source_key"] = key
    chunks = []
    for off in range(0, size, COPY_CHUNK):
        c = SMB2SrvCopyChunk()
        c["source_offset"] = off
        c["target_offset"] = off
        c["length"] = min(COPY_CHUNK, size - off)
        chunks.append(c)
    copy["chunks"] = chunks
    return copy


def _write_time(filetime: int) -> FileBasicInformation:
    basic = FileBasicInformation()
    basic["last_write_time"] = filetime  # 0 in the other fields: leave them as they are
    return basic


def stat_sha256_many(t: "SmbFileTransport", paths: list[str], sizes: list[int | None] | None = None
                     ) -> list[tuple[FileStat | None, str | None]]:
    """stat_sha256() of every path, the compounds of as many as the credits allow in flight at
    once (usually the whole batch: one round trip). `sizes`: what each file is expected to
    hold, so that its READ asks (and charges credits) for about that much; a file larger than
    expected is read on. Raises the first error in the order of `paths`, as one call at a time would."""
    rels = [_norm(p) for p in paths]
    hints = sizes or [None] * len(rels)
    results: list[Any] = [None] * len(rels)
    simple = [k for k, r in enumerate(rels) if r and not _WILDCARDS & set(r.rpartition("\\")[2])]
    for k in set(range(len(rels))) - set(simple):  # the share's root, a pattern: as stat_sha256 answers them
        try:
            results[k] = t.stat_sha256(rels[k])
        except TargetError as exc:
            results[k] = exc
    i = 0
    while i < len(simple):
        with t._op("stat", rels[simple[i]]):
            tree = t._tree()
            budget = max(1, t.link.available_credits() - SPARE_CREDITS)
            batch, finishes = [], []
            while i < len(simple) and len(batch) < BATCH:
                k = simple[i]
                hint = hints[k]
                # room for a file grown since (a patched one read for its restore): a larger one is read on
                first = min(IO_SIZE, 2 * hint + PAYLOAD_UNIT if hint is not None else IO_SIZE)
                charge = 6 + (first - 1) // PAYLOAD_UNIT + 1
                if batch and charge > budget:
                    break
                budget -= charge
                actions, finish = t._stat_sha256_chain(tree, rels[k], first)
                batch.append(actions)
                finishes.append((k, finish))
                i += 1
            answers = compounds(t.link, tree, batch)
        for (k, finish), got in zip(finishes, answers):
            try:
                results[k] = finish(got)
            except TargetError as exc:
                results[k] = exc
    for r in results:
        if isinstance(r, TargetError):
            raise r
    return results


def rename_many(t: "SmbFileTransport", pairs: list[tuple[str, str]], *, replace: bool = False
                ) -> list[TargetError | None]:
    """rename(src, dst, replace=replace) of every pair, each one atomic step on the server as
    before; None where it was done, else the error rename() would have raised. Two round trips
    a batch: every destination checked as _check_replaceable does, then every rename."""
    out: list[TargetError | None] = [None] * len(pairs)
    for start in range(0, len(pairs), BATCH):
        idx = list(range(start, min(len(pairs), start + BATCH)))
        rels = {i: (_norm(pairs[i][0]), _norm(pairs[i][1])) for i in idx}
        with t._op("rename", rels[idx[0]][0]):
            for s, d in rels.values():
                t._release_append(s, d)
                t._forget_made(s, d)
            tree = t._tree()
            if replace:
                dsts = {i: Open(tree, rels[i][1]) for i in idx}
                checked = compounds(t.link, tree, [[
                    t._create(dsts[i], File.DELETE | File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                              0), dsts[i].close(send=False)] for i in idx])
                for i, (opened, _) in zip(idx, checked):
                    s, d = rels[i]
                    if isinstance(opened, SMBResponseException):
                        if opened.status not in MISSING:
                            out[i] = t._fail(opened.status, f"rename {s} to", d)
                    elif (dsts[i].file_attributes or 0) & FileAttributes.FILE_ATTRIBUTE_READONLY:
                        out[i] = AccessDenied(f"rename {s} to {d}: access is denied (the file is read-only)",
                                              server=t.server, path=d)
            going = [i for i in idx if out[i] is None]
            srcs = {i: Open(tree, rels[i][0]) for i in going}
            seen: dict[int, list[Any]] = {i: [] for i in going}
            groups = []
            for i in going:
                info = FileRenameInformation()
                info["replace_if_exists"] = replace  # one atomic step on the server, as MoveFileEx does
                info["file_name"] = rels[i][1]
                groups.append([t._noting(srcs[i], seen[i], t._create(srcs[i], File.DELETE | File.FILE_READ_ATTRIBUTES,
                                                                     SHARE_ALL, CreateDisposition.FILE_OPEN, 0)),
                               t._set_info(srcs[i], info), srcs[i].close(get_attributes=True, send=False)])
            answers = compounds(t.link, tree, groups)
        for i, (opened, renamed, _) in zip(going, answers):
            s, d = rels[i]
            t.known.forget(d)
            if isinstance(opened, SMBResponseException) or isinstance(renamed, SMBResponseException):
                t.known.forget(s)
            else:
                t.known.move(s, d, seen[i][0] if seen[i] else None, version_of(srcs[i]))
            if isinstance(opened, SMBResponseException):
                out[i] = t._fail(opened.status, "rename", s)
            elif isinstance(renamed, SMBResponseException):
                out[i] = t._fail(renamed.status, f"rename {s} to", d)
    return out


IS_A_DIRECTORY = 0xC00000BA  # STATUS_FILE_IS_A_DIRECTORY


def read_many(t: "SmbFileTransport", paths: list[str], limit: int) -> list[bytes | None]:
    """The content of each small file, the compounds (open, READ, close) of as many as the
    credits allow in flight at once: one round trip for a batch. None for a file that is
    missing, a folder, or larger than `limit` bytes (not read); other errors are raised, the
    first in the order of `paths`, as one read at a time would."""
    rels = [_norm(p) for p in paths]
    out: list[Any] = [None] * len(rels)
    length = min(limit + 1, IO_SIZE)  # one byte more than allowed: a larger file shows by its answer
    charge = 3 + (length - 1) // PAYLOAD_UNIT + 1
    i = 0
    while i < len(rels):
        with t._op("read", rels[i]):
            tree = t._tree()
            room = max(1, (t.link.available_credits() - SPARE_CREDITS) // charge)
            batch = list(range(i, min(len(rels), i + min(room, BATCH))))
            handles = {k: Open(tree, rels[k]) for k in batch}
            answers = compounds(t.link, tree, [[
                t._create(handles[k], File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                          CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                t._read(handles[k], 0, length), handles[k].close(send=False)] for k in batch])
        for k, (opened, data, _) in zip(batch, answers):
            if isinstance(opened, SMBResponseException):
                out[k] = None if opened.status in MISSING or opened.status == IS_A_DIRECTORY else \
                    t._fail(opened.status, "read", rels[k])
            elif isinstance(data, SMBResponseException):
                out[k] = b"" if data.status == END_OF_FILE else t._fail(data.status, "read", rels[k])
            else:
                out[k] = data if len(data) <= limit else None
        i = batch[-1] + 1
    for r in out:
        if isinstance(r, TargetError):
            raise r
    return out


def listdir_many(t: "SmbFileTransport", paths: list[str]) -> list[list[FileStat] | TargetError]:
    """listdir() of every folder, each one compound (open, two QUERY_DIRECTORYs, close) sent
    with the others before any answer is taken: one round trip for the batch. Each folder's
    entries or the error listdir() would have raised; a folder too large for two answers is
    listed again on its own, as listdir() does."""
    return listdir_together([(t, paths)])[0]


def listdir_together(parts: list[tuple["SmbFileTransport", list[str]]]) -> list[list[list[FileStat] | TargetError]]:
    """listdir_many() of several servers' shares reached through ONE session (the servers of a
    site that are one machine): every folder's compound, whatever its share, sent before any
    answer is taken, so the servers' listings cost one round trip together, not one each.
    Each part's result is its listdir_many(); the round trip is counted to the first server."""
    first = parts[0][0]
    assert all(t.link is first.link for t, _ in parts), "one session only: each link is its own connection"
    todo = [(p, k, t, _norm(rel)) for p, (t, paths) in enumerate(parts) for k, rel in enumerate(paths)]
    out: list[list[Any]] = [[None] * len(paths) for _, paths in parts]
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        with first._op("list", batch[0][3]):
            opened = []
            for _, _, t, rel in batch:
                tree = t._tree()
                fh = Open(tree, rel)
                opened.append((tree, [
                    t._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                              CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                    t._query_dir(fh, "*", QueryDirectoryFlags.SMB2_RESTART_SCANS), t._query_dir(fh, "*"),
                    fh.close(send=False)]))
            sent = [send(first.link, tree, group) for tree, group in opened]
            answers = take(first.link, [group for _, group in opened], sent)
        for (p, k, t, rel), got in zip(batch, answers):
            out[p][k] = _listing(t, rel, got)
    return out


def _listing(t: "SmbFileTransport", rel: str, answers: list[Any]) -> list[FileStat] | TargetError:
    opened, first, second, _ = answers
    if isinstance(opened, SMBResponseException):
        return t._fail(opened.status, "list", rel, override={NOT_A_DIRECTORY: (NotADirectory, "is a file, not a folder")})
    if isinstance(second, SMBResponseException) and second.status in NO_MORE:
        return t._fail(first.status, "list", rel) if isinstance(first, SMBResponseException) else listed(first)
    try:  # more than two answers' worth: the whole listing, as listdir() takes it
        return t.listdir(rel)
    except TargetError as exc:
        return exc
