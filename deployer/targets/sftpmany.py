"""Many changes on one SFTP server at once (the SFTP half of what smbbatch.py does for SMB 2/3):
an action's backups, a rollback's restores and the folders a run touches cost the round trips of
one file, not those of each.

Every request that needs no earlier answer goes out with the others, on the one SFTP channel,
and each answer is matched to its request by number (sftpsession._Replies), never dropped:

  - lookups: the LSTAT of every path's exact spelling (and, on a server that matches names in
    any case, of each destination's folder) together: one round trip;
  - copy_many: every source and destination OPENed together (one round trip), then for each
    pair copy-data, fsync@openssh.com on the copy, its CLOSE, its write time and the source's
    CLOSE, all pairs together (one round trip). OpenSSH's sftp-server runs a session's
    requests one at a time in the order they come, so each fsync covers its copy, exactly as
    copy() does it, and nothing is renamed over a site file before the caller has read the
    answers;
  - rename_many: every posix-rename@openssh.com (a plain RENAME where nothing is at the
    destination, as rename() does) together, each one atomic step on the server as before;
  - listdir_many: every OPENDIR together, then two READDIRs of each folder together.

Whatever a batch does not settle exactly as one call at a time would (a lookup that needs a
listing, a failed OPEN or copy, a server without copy-data or posix-rename, a write time SFTP
cannot carry) is done again alone by the one-file method, which also reports its error; one
pair's error never stops the others.
"""

from __future__ import annotations

import stat as st
import uuid
from typing import TYPE_CHECKING, Iterator

from paramiko.sftp import (
    CMD_CLOSE,
    CMD_EXTENDED,
    CMD_HANDLE,
    CMD_OPEN,
    CMD_REMOVE,
    CMD_RENAME,
    CMD_SETSTAT,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    int64,
)
from paramiko.sftp_attr import SFTPAttributes

from ..model import winpath
from .base import AccessDenied, AlreadyExists, FileStat, NotADirectory, TargetError, makedirs_via
from .sftppaths import _Found, _key
from .sftpsession import AT_ONCE, SftpStatusError, _Replies, _wait_all
from .temps import SFTP_ASIDE, temp_name

if TYPE_CHECKING:
    from .sftp import SftpFiles

PAIRS = AT_ONCE // 2  # a copy or a rename looks up two paths


def _batches(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def find_many(files: "SftpFiles", rels: list[str], *, want_parent: bool | list[bool] = False
              ) -> list[_Found | TargetError]:
    """_find() of each path, the exact spellings' LSTATs in flight together (one round trip);
    each path's _Found or the error _find() raises. On a server that matches names in any case,
    a destination's folder is asked in the same round trip, so a name not there yet needs no
    second one; anything else that does not settle is looked up as _find() looks, a folder
    listed for one miss answering the batch's other misses in it (as stat_many does)."""
    parts = [files._parts(r) for r in rels]  # a '..' is refused as _find() refuses it
    if not rels:
        return []
    wants = want_parent if isinstance(want_parent, list) else [want_parent] * len(rels)
    with files._guard("look up", rels[0]):
        folds = files.folds_case()
        spelled = [files._spelled(p) for p in parts]
        asked = [remote for remote, _ in spelled]
        parents = [files._join(p[:-1]) for p in parts] if any(wants) and folds else []
        got = files._session().lstat_many(asked + parents)
    out: list[_Found | TargetError | None] = [None] * len(rels)
    respelled: list[tuple[int, str, str]] = []  # (index, remote path, name) to ask together
    files._fresh = set()
    try:
        for i, (rel, pp, (remote, name)) in enumerate(zip(rels, parts, spelled)):
            attrs = got[i]
            try:
                if isinstance(attrs, SFTPAttributes) and pp and not st.S_ISLNK(attrs.st_mode or 0):
                    out[i] = _Found(remote, attrs, name)
                    continue
                parent = got[len(rels) + i] if parents and wants[i] and attrs is None and pp else None
                if isinstance(parent, SFTPAttributes) and st.S_ISDIR(parent.st_mode or 0):
                    # a server that matches any case found no such name: a new file in an existing folder
                    out[i] = _Found(f"{parents[i].rstrip('/')}/{name}", None, name)
                    continue
                missed = attrs is None and remote == files._join(pp)
                if missed and pp and not folds:
                    # a case-sensitive server: the folder's kept listing (one listed by an earlier
                    # miss of this batch) gives the stored spelling, asked with the others below
                    seen = files._folders.get(_key(pp[:-1]))
                    stored = seen[1].get(name.casefold()) if seen else None
                    if seen and stored is not None and stored != name:
                        respelled.append((i, f"{seen[0].rstrip('/')}/{stored}", stored))
                        continue
                out[i] = files._find(rel, want_parent=wants[i], asked=missed)
            except TargetError as exc:
                out[i] = exc
        if respelled:
            with files._guard("look up", rels[respelled[0][0]]):
                again = files._session().lstat_many([remote for _, remote, _ in respelled])
            for (i, remote, name), attrs in zip(respelled, again):
                try:
                    if isinstance(attrs, SFTPAttributes) and not st.S_ISLNK(attrs.st_mode or 0):
                        out[i] = _Found(remote, attrs, name)
                    else:  # gone or changed since the listing: looked up as _find() looks
                        out[i] = files._find(rels[i], want_parent=wants[i])
                except TargetError as exc:
                    out[i] = exc
    finally:
        files._fresh = None
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]


def find_pair(files: "SftpFiles", src: str, dst: str) -> tuple[_Found, _Found | TargetError]:
    """_find(src) and _find(dst, want_parent=True) with their LSTATs in one round trip (copy(),
    rename()): the source's error raised, the destination's returned for the caller to raise in
    its turn (after what it says of the source)."""
    s, d = find_many(files, [src, dst], want_parent=[False, True])
    if isinstance(s, TargetError):
        raise s
    return s, d


def check_copy(files: "SftpFiles", s: _Found, d: "_Found | TargetError", src: str, dst: str) -> None:
    """What copy() refuses before it opens anything, in its order: a folder to copy, the
    destination's lookup error, a folder or a read-only file to copy over."""
    if s.is_dir:
        raise files._err(AccessDenied, "is a folder, not a file", src)
    if isinstance(d, TargetError):
        raise d
    if d.is_dir:
        raise files._err(AccessDenied, "is a folder, not a file", dst)
    files._refuse_readonly(d, dst)


def replace_in_two_steps(files: "SftpFiles", src: str, dst: str) -> None:
    """Replace without posix-rename: SFTP version 3's RENAME refuses an existing target.

    The old file steps aside under a unique name, the new one takes its place, the old
    one is deleted. Not atomic: for a moment nothing is at `dst`, but both contents exist
    under some name at every instant, and if the second step fails the old file goes
    back.
    """
    sftp = files._session()
    aside = temp_name(dst, SFTP_ASIDE, uuid.uuid4().hex[:8])
    sftp.rename(dst, aside)
    try:
        sftp.rename(src, dst)
    except BaseException:
        sftp.rename(aside, dst)
        raise
    try:
        sftp.remove(aside)
    except SftpStatusError:
        pass  # the replace is done; a leftover .~old- file is harmless and named for what it is


def _pairs_found(files: "SftpFiles", pairs: list[tuple[str, str]]
                 ) -> tuple[list[_Found | TargetError], list[_Found | TargetError]]:
    """Each pair's source and destination (as copy() and rename() look them up), all in one find_many."""
    found = find_many(files, [s for s, _ in pairs] + [d for _, d in pairs],
                      want_parent=[False] * len(pairs) + [True] * len(pairs))
    return found[:len(pairs)], found[len(pairs):]


def makedirs(files: "SftpFiles", path: str) -> None:
    """Made or found once, a folder is taken as there for the rest of the session (until deployer
    removes or renames it or a folder above it), as over SMB 2/3: a run's backups go to a few
    folders, asked for again before each backup."""
    parts = winpath.split(path)
    if _key(parts) in files._present:
        return
    makedirs_via(files, path)
    files._present.update(_key(parts[:i]) for i in range(1, len(parts) + 1))


def copy_many(files: "SftpFiles", pairs: list[tuple[str, str]], mtimes: list[int | None] | None = None
              ) -> list[TargetError | None]:
    """copy(src, dst) of every pair, then set_mtime(dst, mtimes[i]) where a write time is given
    (set in the copy's own request instead); None where it was done, else the error the calls one
    at a time would have raised (the other pairs are still done). Three round trips a batch."""
    out: list[TargetError | None] = [None] * len(pairs)
    alone: list[int] = []
    files._release_append(*(p for pair in pairs for p in pair))
    if pairs and not files._session().offers("copy-data"):
        alone = list(range(len(pairs)))  # copy() streams through deployer then, one file at a time
    else:
        for idx in _batches(len(pairs), PAIRS):
            alone += _copy_batch(files, pairs, idx, out, mtimes)
    for i in alone:
        try:
            files.copy(*pairs[i])
            if mtimes is not None and mtimes[i] is not None:
                files.set_mtime(pairs[i][1], mtimes[i])  # type: ignore[arg-type]
        except TargetError as exc:
            out[i] = exc
    return out


def _copy_batch(files: "SftpFiles", pairs: list[tuple[str, str]], idx: list[int], out: list[TargetError | None],
                mtimes: list[int | None] | None) -> list[int]:
    """One batch of copy_many; returns the pairs to copy alone."""
    srcs, dsts = _pairs_found(files, [pairs[i] for i in idx])
    going: list[tuple[int, _Found, _Found, tuple[int, int]]] = []
    alone: list[int] = []
    for i, s, d in zip(idx, srcs, dsts):
        src, dst = pairs[i]
        try:
            if isinstance(s, TargetError):
                raise s
            check_copy(files, s, d, src, dst)
        except TargetError as exc:
            out[i] = exc
            files._forget(src, dst)
            continue
        if d.attrs is not None:
            alone.append(i)  # an existing file is truncated only once its source is open, as copy() does
            continue
        assert s.attrs is not None
        atime = int(s.attrs.st_atime or s.attrs.st_mtime or 0)
        mtime = int(s.attrs.st_mtime or 0)
        wanted = mtimes[i] if mtimes is not None else None
        if wanted is not None:
            mtime = wanted // 10**9  # SFTP version 3 carries whole seconds, as set_mtime sets them
            if not 0 <= mtime < 2**32:
                alone.append(i)  # set_mtime says why
                continue
            atime = int(s.attrs.st_atime or mtime)
        going.append((i, s, d, (atime, mtime)))
    if not going:
        return alone
    sftp = files._session()
    with files._guard("open the file to copy", pairs[going[0][0]][0]):
        replies = _Replies(sftp)
        nums = [(replies.send(CMD_OPEN, s.path, SFTP_FLAG_READ, SFTPAttributes()),
                 replies.send(CMD_OPEN, d.path, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC,
                              SFTPAttributes())) for _, s, d, _ in going]
        handles = [(_handle(replies, a), _handle(replies, b)) for a, b in nums]
    opened: list[tuple[int, _Found, _Found, tuple[int, int], bytes, bytes]] = []
    undone: list[int] = []
    for (i, s, d, times), (h_src, h_dst) in zip(going, handles):
        if h_src is None or h_dst is None:
            if h_src is not None:
                sftp.close_later(h_src)
            if h_dst is not None:  # made by this batch, empty: gone again before the copy alone says why
                undone += [replies.send(CMD_CLOSE, h_dst), replies.send(CMD_REMOVE, d.path)]
            alone.append(i)  # the copy alone reports why (a full disk, a file in use...)
            continue
        opened.append((i, s, d, times, h_src, h_dst))
    if undone:
        with files._guard("copy the file", pairs[going[0][0]][1]):
            _any_failed(replies, undone)
    if not opened:
        return alone
    with files._guard("copy the file", pairs[opened[0][0]][1]):
        fsync = sftp.offers("fsync@openssh.com")
        sent = []
        for i, s, d, times, h_src, h_dst in opened:
            attr = SFTPAttributes()
            attr.st_atime, attr.st_mtime = times
            nums = [replies.send(CMD_EXTENDED, "copy-data", h_src, int64(0), int64(0), h_dst, int64(0))]
            if fsync:  # the copy on disk before its CLOSE, as copy() makes it
                nums.append(replies.send(CMD_EXTENDED, "fsync@openssh.com", h_dst))
            nums += [replies.send(CMD_CLOSE, h_dst), replies.send(CMD_SETSTAT, d.path, attr),
                     replies.send(CMD_CLOSE, h_src)]
            sent.append(nums)
        failed = [_any_failed(replies, nums) for nums in sent]
    for (i, s, d, *_), bad in zip(opened, failed):
        src, dst = pairs[i]
        if bad:
            files._forget(src, dst)
            alone.append(i)  # copied again alone, which reports its error
        else:
            files._noted((dst,), ())
    return alone


def _handle(replies: _Replies, num: int) -> bytes | None:
    try:
        t, msg = replies.wait(num)
    except SftpStatusError:
        return None
    return msg.get_binary() if t == CMD_HANDLE else None


def _any_failed(replies: _Replies, nums: list[int]) -> bool:
    """Every answer taken (none left in flight); whether any was an error."""
    try:
        _wait_all(replies, nums)
    except SftpStatusError:
        return True
    return False


def rename_many(files: "SftpFiles", pairs: list[tuple[str, str]], *, replace: bool = False
                ) -> list[TargetError | None]:
    """rename(src, dst, replace=replace) of every pair, each one atomic step on the server as
    before; None where it was done, else the error rename() would have raised. Two round trips a
    batch: the lookups, then every rename."""
    out: list[TargetError | None] = [None] * len(pairs)
    alone: list[int] = []
    files._release_append(*(p for pair in pairs for p in pair))
    for idx in _batches(len(pairs), PAIRS):
        srcs, dsts = _pairs_found(files, [pairs[i] for i in idx])
        going: list[tuple[int, _Found, _Found, bool]] = []  # i, source, destination, whether it replaces
        for i, s, d in zip(idx, srcs, dsts):
            src, dst = pairs[i]
            try:
                if isinstance(s, TargetError):
                    raise s
                if isinstance(d, TargetError):
                    raise d
                same = d.path == s.path or (files.folds_case() and d.path.casefold() == s.path.casefold())
                if d.attrs is not None and same:
                    continue  # the same entry: nothing to move (see rename())
                if d.attrs is not None:
                    if not replace:
                        raise files._err(AlreadyExists, "cannot create a file when that file already exists", dst)
                    if d.is_dir:
                        raise files._err(AccessDenied, "cannot replace a folder", dst)
                    files._refuse_readonly(d, dst)
                    if not files._session().offers("posix-rename@openssh.com"):
                        alone.append(i)  # replaced in two steps by rename()
                        continue
            except TargetError as exc:
                out[i] = exc
                files._forget(src, dst)
                continue
            going.append((i, s, d, d.attrs is not None))
        if not going:
            continue
        with files._guard("rename", pairs[going[0][0]][1]):
            replies = _Replies(files._session())
            nums = [replies.send(CMD_EXTENDED, "posix-rename@openssh.com", s.path, d.path) if replaces
                    # plain RENAME: OpenSSH refuses to overwrite a target created meanwhile
                    else replies.send(CMD_RENAME, s.path, d.path) for _, s, d, replaces in going]
            answers: list[SftpStatusError | None] = []
            for num in nums:
                try:
                    replies.wait(num)
                    answers.append(None)
                except SftpStatusError as exc:
                    answers.append(exc)
        for (i, _, _, replaces), exc in zip(going, answers):
            src, dst = pairs[i]
            if exc is not None:
                out[i] = files._status_error(exc, "replace" if replaces else "rename", dst)
                files._forget(src, dst)
            elif winpath.key(src) != winpath.key(dst):
                files._noted((dst,), (src,))
    for i in alone:
        try:
            files.rename(*pairs[i], replace=replace)
        except TargetError as exc:
            out[i] = exc
    return out


def listdir_many(files: "SftpFiles", paths: list[str]) -> list[list[FileStat] | TargetError]:
    """listdir() of every folder: the lookups together, every OPENDIR together, then two READDIRs
    of each together (three round trips for all); each folder's entries or listdir()'s error."""
    found = find_many(files, paths)
    out: list[list[FileStat] | TargetError] = []
    going: list[tuple[int, _Found]] = []
    for k, (path, f) in enumerate(zip(paths, found)):
        if isinstance(f, TargetError):
            out.append(f)
        elif not f.is_dir:
            out.append(files._err(NotADirectory, "is a file, not a folder", path))
        else:
            out.append([])
            going.append((k, f))
    for batch in _batches(len(going), AT_ONCE):
        part = [going[b] for b in batch]
        with files._guard("list the folder", paths[part[0][0]]):
            got = files._session().list_folders([f.path for _, f in part])
        for (k, _), entries in zip(part, got):
            if isinstance(entries, SftpStatusError):
                out[k] = files._status_error(entries, "list the folder", paths[k])
                continue
            entries = [e for e in entries if e.filename not in (".", "..")]
            if any(st.S_ISLNK(e.st_mode or 0) for e in entries):
                files.listing_is_stat = False
            out[k] = sorted((files._stat_of(e.filename, e) for e in entries), key=lambda s: s.name.casefold())
    return out
