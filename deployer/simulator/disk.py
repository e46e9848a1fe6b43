"""The local disk under a mock site: JSON replaced whole, a folder's entries made durable, the
local OS's errors as the errors Windows would answer, files held open by "other programs", files
kept open for appending (KeptAppends) and a copy made durable in one open of each end.

    <SERVER>/handles.json          files other programs hold open (see `hold_open`)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat as st
import threading
from pathlib import Path
from typing import Callable, Iterator

from ..model import winpath
from ..targets.base import AccessDenied, AlreadyExists, DiskFull, NotADirectory, PathNotFound, TargetError


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class KeptAppends:
    """Files appended to (a run's journal, Maintman.log), kept open: path on disk -> (fd, device,
    inode). A run appends some 75 records a site; opening the journal for each was half the opens
    the mock made. The caller looks the path up before each append (as Windows opens it), and the
    kept fd is used only while that lookup finds the file it holds: same device and inode (the fd
    keeps its inode alive, so the number cannot pass to another file). A journal renamed or removed,
    by the mock or by another process, is never written through its old fd: the path is opened
    afresh. The lock: Maintenance Manager's thread appends through the same transport, and an fd
    must not be closed under a write."""

    KEPT = 4  # a run appends to two or three files; more are closed, oldest first

    def __init__(self) -> None:
        self._fds: dict[str, tuple[int, int, int]] = {}
        self._lock = threading.Lock()

    def values(self):
        return self._fds.values()

    def append(self, p: str, s: os.stat_result | None, data: bytes, *, durable: bool,
               on_open: Callable[[], None] | None = None) -> None:
        """Append `data` to `p`, which the caller's lookup found as `s` (None: not there yet);
        `on_open`: what must hold before the file is opened (raises if not), as Windows checks
        sharing when a handle is opened, not on each write through it."""
        with self._lock:
            fd = self._fd(p, s, on_open)
            write_all(fd, data)
            if durable:
                os.fsync(fd)

    def _fd(self, p: str, s: os.stat_result | None, on_open: Callable[[], None] | None) -> int:
        hit = self._fds.get(p)
        if hit is not None:
            if s is not None and (s.st_dev, s.st_ino) == hit[1:]:
                return hit[0]
            del self._fds[p]
            os.close(hit[0])
        if on_open is not None:
            on_open()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # the file opened (made now, or raced in since the lookup): its identity from the fd
            f = os.fstat(fd) if s is None or not st.S_ISREG(s.st_mode) else s
        except OSError:
            os.close(fd)
            raise
        if len(self._fds) >= self.KEPT:
            oldest = next(iter(self._fds))
            os.close(self._fds.pop(oldest)[0])
        self._fds[p] = (fd, f.st_dev, f.st_ino)
        return fd

    def close(self) -> None:
        with self._lock:
            kept, self._fds = self._fds, {}
            for fd, _dev, _ino in kept.values():
                os.close(fd)

    def __del__(self) -> None:
        # a site dropped without close() (lab init's own MockSite, a test's) leaks no fd
        for fd, _dev, _ino in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass


def copy_durably(src: str, dst: str, src_st: os.stat_result) -> None:
    fin = os.open(src, os.O_RDONLY)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            left = src_st.st_size
            offset = 0
            while left > 0:
                sent = os.sendfile(fout, fin, offset, min(left, 1 << 30))
                if sent == 0:
                    break
                offset += sent
                left -= sent
            os.utime(fout, ns=(src_st.st_atime_ns, src_st.st_mtime_ns))
            os.chmod(fout, st.S_IMODE(src_st.st_mode))
            os.fsync(fout)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def lstat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_json_atomic(path: Path, data: object, *, durable: bool = True, indent: int | None = 1) -> None:
    """Replace `path` whole: a reader, or a crash of the writer, sees the old file or the new.
    durable=False leaves flushing to the system, as Windows does with the registry (the SCM's
    database, which it writes back lazily). indent=None writes one line, with json's C encoder
    (indented JSON is encoded in Python, about ten times slower): for files rewritten on every
    service change."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=indent, sort_keys=True))
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)


def windows_error(exc: OSError, server: str, rel: str) -> TargetError:
    """The error Windows would answer for what the local disk said (ENOSPC is error 112, ...)."""
    def err(cls: type[TargetError], msg: str) -> TargetError:
        return cls(msg, server=server, path=rel)

    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return err(DiskFull, "there is not enough space on the disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return err(AccessDenied, "access is denied")
    if exc.errno == errno.ENOTDIR:
        return err(NotADirectory, "a folder on the way is a file (the directory name is invalid)")
    if exc.errno == errno.ENOENT:
        return err(PathNotFound, "the system cannot find the path specified")
    if exc.errno == errno.EEXIST:
        return err(AlreadyExists, "cannot create a file when that file already exists")
    return err(TargetError, f"{exc.strerror or exc}")


# --- files held open by "other programs" -----------------------------------------------


def handles_file(server_dir: Path) -> Path:
    return server_dir / "handles.json"


def held_open(server_dir: Path) -> set[str]:
    try:
        data = json.loads(handles_file(server_dir).read_text())
    except FileNotFoundError:
        return set()
    return {winpath.key(p) for p in data.get("open", [])}


@contextlib.contextmanager
def hold_open(server_dir: Path, rel: str) -> Iterator[None]:
    """Simulate another program holding `rel` open (deny write/delete), like an editor would."""
    f = handles_file(server_dir)
    data = json.loads(f.read_text()) if f.exists() else {"open": []}
    data["open"].append(rel)
    write_json_atomic(f, data)
    try:
        yield
    finally:
        data = json.loads(f.read_text())
        data["open"].remove(rel)
        write_json_atomic(f, data)
