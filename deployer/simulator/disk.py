"""The local disk under a mock site: JSON replaced whole, a folder's entries made durable, the
local OS's errors as the errors Windows would answer, and files held open by "other programs".

    <SERVER>/handles.json          files other programs hold open (see `hold_open`)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import Iterator

from ..model import winpath
from ..targets.base import AccessDenied, AlreadyExists, DiskFull, NotADirectory, PathNotFound, TargetError


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
