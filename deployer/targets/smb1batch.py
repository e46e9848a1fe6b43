r"""Many files at once over SMB1 (the batch interface SMB 2/3 offers in smbbatch.py): stats,
listings, reads, read-backs, copies and renames of a batch of files in the round trips of one.

SMB1 has no compounds of unrelated requests, but a client may keep up to the server's
MaxMpxCount requests outstanding, each answered under its own Mid
(adapters/impacket_pipeline.py). Files of a batch do not depend on each other, so each step
(open, read, write, set the write time and close) is sent for every file of the batch before
any answer is taken, and the batch costs what one file costs. The order of each file's
steps is unchanged and so is what each answer proves: a copy's data is written through
(WRITE_ANDX write-through, answered once on disk), its write time set and the file flushed
and closed before copy_many returns, so a caller's journal record that follows it is never
ahead of the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .adapters import impacket_internals as lib
from .adapters import impacket_pipeline as pipe
from .base import AccessDenied, FileStat, NotADirectory, TargetError, filetime_to_ns, ns_to_filetime, sha256_of
from .smb1rounds import _status, check_written, finish_written
from .smbsession import MISSING, NO_MORE_FILES, status_error
from .smbshare import _WILDCARDS, _norm, dir_entries

if TYPE_CHECKING:
    from .smb1 import Smb1FileTransport

BATCH = 32  # files a batch carries (their requests go in rounds of the server's MaxMpxCount)
BATCH_BYTES = 8 << 20  # data a batch reads or copies at once; a larger file is read or copied on its own
IS_A_DIRECTORY = 0xC00000BA  # STATUS_FILE_IS_A_DIRECTORY
LIST_DONE = (NO_MORE_FILES, 0xC000000F)  # STATUS_NO_MORE_FILES, STATUS_NO_SUCH_FILE: nothing (more) to list


def _plain(rel: str) -> bool:
    """A path a one-name FIND answers as stat() does (not the share's root, not a pattern)."""
    return bool(rel) and not _WILDCARDS & set(rel.rpartition("\\")[2])


def _found(t: "Smb1FileTransport", rel: str, answer: Any, unicode: bool) -> FileStat | None:
    """A one-name FIND's answer as stat() gives it."""
    status = _status(answer)
    if status is not None:
        if status in MISSING or status == NO_MORE_FILES:
            return None
        raise status_error(status, "stat", server=t.server, path=rel)
    entries = dir_entries(answer[0], unicode)
    return entries[0] if entries else None


def _raise_first(results: list[Any]) -> None:
    for r in results:
        if isinstance(r, TargetError):
            raise r


def stat_many(t: "Smb1FileTransport", paths: list[str]) -> list[FileStat | None]:
    """stat() of every path, the one-name FINDs of the batch in flight at once: one round trip."""
    rels = [_norm(p) for p in paths]
    out: list[Any] = [None] * len(rels)
    simple = [k for k, r in enumerate(rels) if _plain(r)]
    for k in sorted(set(range(len(rels))) - set(simple)):
        out[k] = t.stat(rels[k])  # the root, or a pattern stat() refuses
    for start in range(0, len(simple), BATCH * 2):
        part = simple[start:start + BATCH * 2]
        with t._op("stat", rels[part[0]]):
            tid = t._tree()
            answers = pipe.round_trip(t.link.conn, [pipe.find(rels[k], tid, single=True) for k in part])
            unicode = t.link.conn._unicode()
        for k, got in zip(part, answers):
            try:
                out[k] = _found(t, rels[k], got, unicode)
            except TargetError as exc:
                out[k] = exc
    _raise_first(out)
    return out


def listdir_many(t: "Smb1FileTransport", paths: list[str]) -> list[list[FileStat] | TargetError]:
    """listdir() of every folder: each folder's one-name FIND (is it a folder?) and its listing's
    FIND_FIRST2 in flight with the others', one round trip for the batch. Each folder's entries
    or the error listdir() would have raised; a folder too large for one answer is listed again
    on its own, page after page."""
    rels = [_norm(p) for p in paths]
    out: list[Any] = [None] * len(rels)
    for start in range(0, len(rels), BATCH):
        part = list(range(start, min(len(rels), start + BATCH)))
        with t._op("list", rels[part[0]]):
            tid = t._tree()
            requests = []
            for k in part:
                rel = rels[k]
                requests += [pipe.find(rel, tid, single=True)] if rel else []
                requests.append(pipe.find(f"{rel}\\*" if rel else "*", tid, single=False))
            answers = iter(pipe.round_trip(t.link.conn, requests))
            unicode = t.link.conn._unicode()
            for k in part:
                rel = rels[k]
                # both of the folder's answers taken before either is judged: a refused FIND must
                # not leave its listing's answer to be taken for the next folder's
                found = next(answers) if rel else None
                listing = next(answers)
                try:
                    st = _found(t, rel, found, unicode) if rel else FileStat("", 0, 0, True)
                    if st is None:
                        raise status_error(0xC000003A, "list", server=t.server, path=rel)
                    if not st.is_dir:
                        raise NotADirectory("list: is a file, not a folder", server=t.server, path=rel)
                    status = _status(listing)
                    if status is not None:
                        if status not in LIST_DONE:
                            raise status_error(status, "list", server=t.server, path=rel)
                        entries: list[FileStat] = []
                    elif listing[1]:
                        entries = dir_entries(listing[0], unicode)
                    else:  # more than one answer holds: listed again, page after page
                        out[k] = t._list_entries(rel)
                        continue
                    out[k] = sorted((e for e in entries if e.name not in (".", "..")), key=lambda e: e.name.casefold())
                except TargetError as exc:
                    out[k] = exc
    return out


def _groups(sizes: list[int | None], count: int = BATCH) -> list[tuple[int, int]]:
    """(start, end) of consecutive batches of at most `count` items and about BATCH_BYTES."""
    out, start, total = [], 0, 0
    for k, size in enumerate(sizes):
        if k > start and (k - start >= count or total + (size or 0) > BATCH_BYTES):
            out.append((start, k))
            start, total = k, 0
        total += size or 0
    if start < len(sizes):
        out.append((start, len(sizes)))
    return out


def _reads(tid: int, o: lib.Opened, unit: int) -> list[pipe.Request]:
    return [pipe.read(tid, o.fid, off, min(unit, o.size - off)) for off in range(0, o.size, unit)]


def _content(t: "Smb1FileTransport", rel: str, o: lib.Opened, unit: int, answers: list[Any]) -> list[bytes]:
    """A file's READ answers, each checked as read_chunks checks them."""
    for off, got in zip(range(0, o.size, unit), answers):
        status = _status(got)
        if status is not None:
            raise status_error(status, "read", server=t.server, path=rel)
        want = min(unit, o.size - off)
        if len(got) != want:
            raise TargetError(f"read: the server returned {len(got)} of {want} bytes (the file changed while it "
                              "was read?)", server=t.server, path=rel)
    return answers


def _read_requests(tid: int, opened: dict[int, lib.Opened], unit: int
                   ) -> tuple[list[pipe.Request], dict[int, tuple[int, int]]]:
    """The READs of every opened file, whole; where each file's are: (first, count)."""
    requests: list[pipe.Request] = []
    spans: dict[int, tuple[int, int]] = {}
    for k, o in opened.items():
        reads = _reads(tid, o, unit)
        spans[k] = (len(requests), len(reads))
        requests += reads
    return requests, spans


def _read_round(t: "Smb1FileTransport", tid: int, rels: list[str], opened: dict[int, lib.Opened],
                extra: list[pipe.Request] | None = None) -> tuple[dict[int, list[bytes] | TargetError], list[Any]]:
    """Every opened file read whole, then closed (with `extra` requests after the closes): two
    rounds, each file's chunks (or its error), and the answers to `extra`. A CLOSE never goes
    out while a READ of its file is unanswered: Samba (4.17) crashes closing a file whose
    asynchronous reads are still running."""
    unit = t.link.conn.io_unit(write=False)
    requests, spans = _read_requests(tid, opened, unit)
    answers = pipe.round_trip(t.link.conn, requests) if requests else []
    closed = pipe.round_trip(t.link.conn, [pipe.close(tid, o.fid) for o in opened.values()] + (extra or []))
    out: dict[int, list[bytes] | TargetError] = {}
    for j, (k, (at, n)) in enumerate(spans.items()):
        try:
            out[k] = _content(t, rels[k], opened[k], unit, answers[at:at + n])
            if _status(closed[j]) is not None:
                raise status_error(_status(closed[j]) or 0, "read", server=t.server, path=rels[k])
        except TargetError as exc:
            out[k] = exc
    return out, closed[len(opened):]


def _read_or_close(t: "Smb1FileTransport", tid: int, rels: list[str], opened: dict[int, lib.Opened],
                   unread: list[int], generation: int) -> dict[int, list[bytes] | TargetError]:
    """_read_round of the opened files, the FIDs of `unread` closed with them; on any failure
    every opened file is closed before the error goes on."""
    try:
        return _read_round(t, tid, rels, opened, [pipe.close(tid, fid) for fid in unread])[0]
    except BaseException:
        for o in opened.values():
            t._close_quietly(o.fid, generation)
        raise


def _read_access(tid: int, rel: str) -> pipe.Request:
    return pipe.create(tid, rel, lib.READ_DATA | lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN,
                       lib.FILE_NON_DIRECTORY_FILE)


def _stat_sha256_alone(t: "Smb1FileTransport", rel: str) -> tuple[FileStat | None, str | None]:
    """stat() then sha256(), one request at a time (the root, a pattern, a file too large for a batch)."""
    found = t.stat(rel)
    return found, None if found is None or found.is_dir else t.sha256(rel)


def stat_sha256_many(t: "Smb1FileTransport", paths: list[str], sizes: list[int | None] | None = None
                     ) -> list[tuple[FileStat | None, str | None]]:
    """stat_sha256() of every path: three round trips a batch (each file's one-name FIND and open;
    its READs; its close). The stat is the FIND's entry with the size and write time of the
    content hashed. Raises the first error in the order of `paths`, as one call at a time would."""
    rels = [_norm(p) for p in paths]
    hints = sizes or [None] * len(rels)
    out: list[Any] = [None] * len(rels)
    simple = [k for k, r in enumerate(rels) if _plain(r)]
    for k in sorted(set(range(len(rels))) - set(simple)):
        out[k] = _stat_sha256_alone(t, rels[k])
    large: list[int] = []
    for a, b in _groups([hints[k] for k in simple]):
        part = simple[a:b]
        with t._op("stat", rels[part[0]]):
            tid = t._tree()
            conn = t.link.conn
            generation = t.link.generation
            answers = pipe.round_trip(conn, [r for k in part for r in (pipe.find(rels[k], tid, single=True),
                                                                        _read_access(tid, rels[k]))])
            unicode = conn._unicode()
            opened: dict[int, lib.Opened] = {}
            stale: list[int] = []  # opened, but not to be read here: closed in the same round
            for j, k in enumerate(part):
                listed, got = answers[2 * j], answers[2 * j + 1]
                try:
                    found = _found(t, rels[k], listed, unicode)
                except TargetError as exc:
                    found, out[k] = None, exc
                if isinstance(got, lib.Opened) and (out[k] is not None or found is None or got.size > BATCH_BYTES):
                    stale.append(got.fid)
                    if out[k] is None and found is None:
                        out[k] = (None, None)  # created between the two requests: as stat() saw it
                    elif out[k] is None:
                        large.append(k)  # hashed on its own, streamed
                    continue
                if out[k] is not None:
                    continue
                if found is None:
                    out[k] = (None, None)
                elif found.is_dir:
                    out[k] = (found, None)
                elif isinstance(got, lib.Opened):
                    opened[k] = got
                    out[k] = FileStat(found.name, got.size, filetime_to_ns(got.write_time), False,
                                      bool(got.attributes & lib.ATTR_READONLY))
                else:  # gone between the two requests: as stat() then sha256() would see it
                    out[k] = status_error(_status(got) or 0xC0000034, "read", server=t.server, path=rels[k])
            data = _read_or_close(t, tid, rels, opened, stale, generation)
        for k, chunks in data.items():
            out[k] = chunks if isinstance(chunks, TargetError) else (out[k], sha256_of(chunks))
    for k in large:
        out[k] = _stat_sha256_alone(t, rels[k])
    _raise_first(out)
    return out


def read_many(t: "Smb1FileTransport", paths: list[str], limit: int) -> list[bytes | None]:
    """The content of each small file: three round trips a batch (open; READs; close). None for
    a file that is missing, a folder, or larger than `limit` bytes; other errors are raised, the
    first in the order of `paths`, as one read at a time would."""
    rels = [_norm(p) for p in paths]
    out: list[Any] = [None] * len(rels)
    for a, b in _groups([limit] * len(rels)):
        part = list(range(a, b))
        with t._op("read", rels[part[0]]):
            tid = t._tree()
            generation = t.link.generation
            answers = pipe.round_trip(t.link.conn, [_read_access(tid, rels[k]) for k in part])
            opened: dict[int, lib.Opened] = {}
            too_large: list[int] = []
            for k, got in zip(part, answers):
                status = _status(got)
                if status is not None:
                    if status not in MISSING and status != IS_A_DIRECTORY:
                        out[k] = status_error(status, "read", server=t.server, path=rels[k])
                elif got.size > limit:
                    too_large.append(got.fid)
                else:
                    opened[k] = got
            data = _read_or_close(t, tid, rels, opened, too_large, generation)
        for k, chunks in data.items():
            out[k] = chunks if isinstance(chunks, TargetError) else b"".join(chunks)
    _raise_first(out)
    return out


def copy_many(t: "Smb1FileTransport", pairs: list[tuple[str, str]],
              mtimes: list[int | None] | None = None) -> list[TargetError | None]:
    """copy(src, dst) of every pair; None where it was done, else the error copy() would have
    raised (the others are still done). SMB1 has no server-side copy: four round trips a batch,
    the sources opened; read, with the destinations created; closed, with the destinations
    written through; the destinations' write times set (the source's, or `mtimes`), flushed
    and closed. A source larger than a
    batch holds is copied on its own, as copy() does."""
    out: list[TargetError | None] = [None] * len(pairs)
    rels = [(_norm(s), _norm(d)) for s, d in pairs]
    alone: list[int] = []
    for k, (s, d) in enumerate(rels):
        if s.casefold() == d.casefold():
            out[k] = TargetError("copy: the source and the destination are the same file", server=t.server, path=s)
    todo = [k for k in range(len(pairs)) if out[k] is None]
    for start in range(0, len(todo), BATCH):
        alone += _copy_batch(t, rels, todo[start:start + BATCH], out, mtimes)
    for k in alone:  # too large for a batch: as copy() and set_mtime() one at a time
        out[k] = _copy_alone(t, pairs[k], mtimes[k] if mtimes is not None else None)
    return out


def _copy_alone(t: "Smb1FileTransport", pair: tuple[str, str], mtime: int | None) -> TargetError | None:
    try:
        t.copy(*pair)
        if mtime is not None:
            t.set_mtime(pair[1], mtime)
    except TargetError as exc:
        return exc
    return None


def _copy_batch(t: "Smb1FileTransport", rels: list[tuple[str, str]], part: list[int], out: list[TargetError | None],
                mtimes: list[int | None] | None) -> list[int]:
    """One batch of copy_many; returns the pairs too large for it (copied alone afterwards)."""
    alone: list[int] = []
    with t._op("copy", rels[part[0]][0]):
        t._release_append(*(d for _, d in (rels[k] for k in part)))
        tid = t._tree()
        conn = t.link.conn
        generation = t.link.generation
        sources: dict[int, lib.Opened] = {}
        dests: dict[int, lib.Opened] = {}
        try:
            for k, got in zip(part, pipe.round_trip(conn, [_read_access(tid, rels[k][0]) for k in part])):
                if isinstance(got, lib.Opened):
                    sources[k] = got
                else:
                    out[k] = status_error(_status(got) or 0, "copy", server=t.server, path=rels[k][0])
            budget, going, large = BATCH_BYTES, {}, []
            for k, o in sources.items():  # the batch's data held at once: at most about BATCH_BYTES
                if o.size > budget and going:
                    large.append(o.fid)
                    alone.append(k)
                else:
                    going[k] = o
                    budget -= o.size
            sources = going
            times = {k: o.write_time for k, o in sources.items()}  # FILETIMEs, as copy() gives them
            # each source read whole, each destination created beside the READs (another file)
            creates = [pipe.create(tid, rels[k][1], lib.WRITE_DATA | lib.APPEND_DATA | lib.WRITE_ATTRIBUTES
                                   | lib.READ_ATTRIBUTES, lib.SHARE_READ, lib.FILE_OVERWRITE_IF,
                                   lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE) for k in sources]
            unit = conn.io_unit(write=False)
            reads, spans = _read_requests(tid, sources, unit)
            answers = pipe.round_trip(conn, reads + [pipe.close(tid, fid) for fid in large] + creates)
            data: dict[int, Any] = {}
            for k, got in zip(list(sources), answers[len(reads) + len(large):]):
                if isinstance(got, lib.Opened):
                    dests[k] = got  # closed below whatever else happens to it
                at, n = spans[k]
                try:
                    data[k] = _content(t, rels[k][0], sources[k], unit, answers[at:at + n])
                except TargetError as exc:
                    out[k] = exc
                    continue
                if not isinstance(got, lib.Opened):
                    out[k] = status_error(_status(got) or 0, "write", server=t.server, path=rels[k][1])
            # the sources closed (every READ answered) with the destinations' WRITEs, written through
            closing = list(sources)
            requests = [pipe.close(tid, sources[k].fid) for k in closing]
            sources = {}
            unit = conn.io_unit(write=True)
            writes: list[tuple[int, int]] = []  # (pair, bytes) of each WRITE
            for k, o in dests.items():
                if out[k] is None:
                    offset = 0
                    for chunk in data[k]:
                        for at in range(0, len(chunk), unit):
                            piece = chunk[at:at + unit]
                            requests.append(pipe.write(tid, o.fid, offset, piece))
                            writes.append((k, len(piece)))
                            offset += len(piece)
            answers = pipe.round_trip(conn, requests)
            for k, got in zip(closing, answers):
                if out[k] is None and _status(got) is not None:
                    out[k] = status_error(_status(got) or 0, "read", server=t.server, path=rels[k][0])
            for (k, want), got in zip(writes, answers[len(closing):]):
                if out[k] is None:
                    out[k] = check_written(t, rels[k][1], want, got)
            # CopyFile keeps the source's write time
            when = {k: ns_to_filetime(mtimes[k]) if mtimes is not None and mtimes[k] is not None  # type: ignore[arg-type]
                    else times[k] for k in dests}
            finish_written(t, tid, dests, when, out, lambda k: rels[k][1])
            dests = {}
        except BaseException:
            for o in [*sources.values(), *dests.values()]:
                t._close_quietly(o.fid, generation)
            raise
    return alone


def rename_many(t: "Smb1FileTransport", pairs: list[tuple[str, str]], *, replace: bool = False
                ) -> list[TargetError | None]:
    """rename(src, dst, replace=replace) of every pair, each one atomic step on the server as
    before; None where it was done, else the error rename() would have raised. Where the server
    renames by pass-through information (CAP_INFOLEVEL_PASSTHRU) within a folder, two round
    trips a batch: each source opened and each destination checked as _check_replaceable does;
    then the checks' handles closed, each source renamed and closed, in this order. Anything
    else (Windows NT 4.0's rename in steps, another folder) one pair at a time, as before."""
    out: list[TargetError | None] = [None] * len(pairs)
    rels = [(_norm(s), _norm(d)) for s, d in pairs]
    batched = [k for k, (s, d) in enumerate(rels)
               if t._passthru() and s.rpartition("\\")[0].casefold() == d.rpartition("\\")[0].casefold()]
    for k in sorted(set(range(len(pairs))) - set(batched)):
        try:
            t.rename(*pairs[k], replace=replace)
        except TargetError as exc:
            out[k] = exc
    for start in range(0, len(batched), BATCH):
        _rename_batch(t, rels, batched[start:start + BATCH], out, replace)
    return out


def _rename_batch(t: "Smb1FileTransport", rels: list[tuple[str, str]], part: list[int],
                  out: list[TargetError | None], replace: bool) -> None:
    with t._op("rename", rels[part[0]][0]):
        for k in part:
            t._release_append(*rels[k])
            t._forget_made(*rels[k])
        tid = t._tree()
        conn = t.link.conn
        generation = t.link.generation
        access = lib.DELETE | lib.READ_ATTRIBUTES
        requests = [pipe.create(tid, rels[k][0], access, lib.SHARE_ALL, lib.FILE_OPEN, 0) for k in part]
        if replace:
            requests += [pipe.create(tid, rels[k][1], access, lib.SHARE_ALL, lib.FILE_OPEN, 0) for k in part]
        answers = pipe.round_trip(conn, requests)
        sources = {k: got for k, got in zip(part, answers) if isinstance(got, lib.Opened)}
        checks = {k: got for k, got in zip(part, answers[len(part):]) if isinstance(got, lib.Opened)}
        for j, k in enumerate(part):  # what rename() reports first: the destination's check, then the source
            s, d = rels[k]
            if replace and k in checks and checks[k].attributes & lib.ATTR_READONLY:
                out[k] = AccessDenied(f"rename {s} to {d}: access is denied (the file is read-only)",
                                      server=t.server, path=d)
            elif replace and k not in checks and (_status(answers[len(part) + j]) or 0) not in MISSING:
                out[k] = status_error(_status(answers[len(part) + j]) or 0, f"rename {s} to", server=t.server,
                                      path=d)
            elif k not in sources:
                out[k] = status_error(_status(answers[j]) or 0, "rename", server=t.server, path=s)
        # the checks' handles closed first: the server refuses to replace a file still open
        requests = [pipe.close(tid, o.fid) for o in checks.values()]
        steps: list[int | None] = [None] * len(requests)
        for k, o in sources.items():
            if out[k] is None:
                requests.append(pipe.rename_fid(tid, o.fid, rels[k][1].rpartition("\\")[2], replace))
                steps.append(k)
            requests.append(pipe.close(tid, o.fid))
            steps.append(None)
        try:
            answers = pipe.round_trip(conn, requests)
        except BaseException:
            for o in [*sources.values(), *checks.values()]:
                t._close_quietly(o.fid, generation)
            raise
        for k, got in zip(steps, answers):
            if k is not None and _status(got) is not None:
                out[k] = status_error(_status(got) or 0, f"rename {rels[k][0]} to", server=t.server, path=rels[k][1])
