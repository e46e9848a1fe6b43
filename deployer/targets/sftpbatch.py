"""Many files of one SFTP server at once (the SFTP half of what smbbatch.py does for SMB 2/3): a
run's read-backs and restores (stat_sha256_many) and the planner's small reads (read_many) cost
the round trips of one file, not one each.

A batch sends the LSTAT and OPEN of every file together (one round trip), then every READ of
every file, each sized by what its LSTAT saw plus one READ past that (the end of the file, or
what was added since), together again; the handles are closed without waiting. Whatever a
batch does not settle exactly as one file at a time would (a miss: the name in another case or
no file; a link; a folder; a case-folding server's stored spelling not known yet; a file that
changed size while read; any error) is asked again alone, which also reports its error in its
turn.
"""

from __future__ import annotations

import hashlib
import stat as st
from typing import TYPE_CHECKING, Iterator

from paramiko.sftp import CMD_READ, SFTP_FLAG_READ, int64

from .base import FileStat
from .sftppaths import _Found
from .sftpsession import AT_ONCE, SftpStatusError, _data, _Replies

if TYPE_CHECKING:
    from .sftp import SftpFiles


def stat_sha256_many(files: "SftpFiles", paths: list[str], sizes: list[int | None] | None = None
                     ) -> list[tuple[FileStat | None, str | None]]:
    """stat_sha256() of every path (`sizes` is not needed: each LSTAT says how much to ask for)."""
    out: list[tuple[FileStat | None, str | None]] = []
    for i in range(0, len(paths), AT_ONCE):
        group = paths[i:i + AT_ONCE]
        opened = _open_many(files, group)
        got = _read_all(files, [o for o in opened if o is not None])
        for path, o in zip(group, opened):
            data = got.pop(0) if o is not None else None
            if o is None or data is None:
                out.append(files.stat_sha256(path))
            else:
                found = o[0]
                assert found.attrs is not None
                out.append((files._stat_of(found.name, found.attrs), hashlib.sha256(data).hexdigest()))
    return out


def read_many(files: "SftpFiles", paths: list[str], limit: int) -> list[bytes | None]:
    """The content of each small file: None for a file that is missing, a folder, or larger than
    `limit` bytes (not read); other errors raised, as one read at a time would."""
    out: list[bytes | None] = []
    for i in range(0, len(paths), AT_ONCE):
        group = paths[i:i + AT_ONCE]
        opened = _open_many(files, group)
        small: list[tuple[_Found, bytes] | None] = []
        for o in opened:
            if o is not None and int(o[0].attrs.st_size or 0) > limit:  # type: ignore[union-attr]
                files._session().close_later(o[1])  # not read: nothing to wait for
                small.append(None)
            else:
                small.append(o)
        got = _read_all(files, [o for o in small if o is not None])
        for path, o, seen in zip(group, small, opened):
            if o is None and seen is not None:
                out.append(None)  # larger than the limit
                continue
            data = got.pop(0) if o is not None else None
            out.append(data if data is not None and len(data) <= limit else _read_alone(files, path, limit))
    return out


def read_found(files: "SftpFiles", found: _Found, handle: bytes, path: str, chunk: int) -> Iterator[bytes]:
    """The file just looked up and opened, to its end: its READs sized by what the lookup saw
    and one past that (read_pipelined's to_end), so no FSTAT round trip; CLOSE not waited for."""
    assert found.attrs is not None
    sftp = files._session()
    done = False
    try:
        with files._guard("read the file", path):
            yield from sftp.read_pipelined(handle, int(found.attrs.st_size or 0), chunk, to_end=True)
        with files._guard("close the file", path):
            sftp.close_later(handle)
        done = True
    finally:
        if not done:  # failed, or the reader stopped early
            files._close_quietly(handle)


def _read_alone(files: "SftpFiles", path: str, limit: int) -> bytes | None:
    found = files.stat(path)
    if found is None or found.is_dir or found.size > limit:
        return None
    data = b"".join(files.read_chunks(path))
    return data if len(data) <= limit else None


def _open_many(files: "SftpFiles", paths: list[str]) -> list[tuple[_Found, bytes] | None]:
    """Each file looked up and opened, all in one round trip; None where that does not settle it."""
    parts = [files._parts(p) for p in paths]
    out: list[tuple[_Found, bytes] | None] = []
    with files._guard("open the file for reading", paths[0]):
        sftp = files._session()
        folds = files.folds_case()
        spelled = [files._spelled(p) for p in parts]
        got = sftp.lstat_and_open_many([remote for remote, _ in spelled], SFTP_FLAG_READ)
        for pp, (remote, name), (attrs, handle) in zip(parts, spelled, got):
            if (handle is None or attrs is None or not pp or st.S_ISLNK(attrs.st_mode or 0)
                    or st.S_ISDIR(attrs.st_mode or 0)):
                if handle is not None:
                    sftp.close_later(handle)
                out.append(None)
                continue
            if folds:  # the stored spelling, from the folder's kept listing
                name = files._names(pp[:-1], files._join(pp[:-1]), name).get(name.casefold(), name)
            out.append((_Found(remote, attrs, name), handle))
    return out


def _read_all(files: "SftpFiles", opened: list[tuple[_Found, bytes]]) -> list[bytes | None]:
    """Every READ of every opened file in flight together; each file's bytes, or None where the
    file changed size since its LSTAT or a READ failed (read alone then). Handles closed."""
    if not opened:
        return []
    with files._guard("read the file", opened[0][0].path):
        sftp = files._session()
        replies = _Replies(sftp)
        asked: list[tuple[list[tuple[int, int]], int]] = []
        for found, handle in opened:
            size = int(found.attrs.st_size or 0)  # type: ignore[union-attr]
            reads = []
            for offset in range(0, size, sftp.read_len):
                n = min(sftp.read_len, size - offset)
                reads.append((replies.send(CMD_READ, handle, int64(offset), n), n))
            asked.append((reads, replies.send(CMD_READ, handle, int64(size), sftp.read_len)))
        out: list[bytes | None] = []
        for (found, handle), (reads, past) in zip(opened, asked):
            data = bytearray()
            whole = True
            for num in [n for n, _ in reads] + [past]:
                try:
                    got = _data(replies, num)
                except SftpStatusError:
                    whole = False
                    continue
                data += got
            if sftp.meter is not None:
                sftp.meter.read(len(data))
            whole = whole and len(data) == int(found.attrs.st_size or 0)  # type: ignore[union-attr]
            out.append(bytes(data) if whole else None)
        for _, handle in opened:
            # after every answer is taken: a CLOSE sent between two files' answers would make the
            # wait for the next one, already in flight, a round trip of its own
            sftp.close_later(handle)
    return out
