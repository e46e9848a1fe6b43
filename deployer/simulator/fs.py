"""The mock site's file system: a local folder that behaves like an NTFS share.

Layout of a mock site folder (made by `deployer lab init`):
    site.json                      the site's servers, platforms and SMS roots
    <SERVER>/<drive>/<sms root>/   each server's SMS root (C/SMS for C:\\SMS)
    <SERVER>/scm.json              its Service Control Manager's state
    <SERVER>/handles.json          files other programs hold open (see `hold_open`)

Windows behaviour simulated here, because the procedures depend on it:
  - names are matched case-insensitively and keep the case they were created with;
  - a file that a running service has loaded (its image or a DLL), or that another
    program holds open, cannot be written, renamed, deleted or re-timed: ERROR_SHARING_VIOLATION;
  - a read-only file cannot be written or deleted: ERROR_ACCESS_DENIED (root's Unix
    privileges are deliberately ignored: Windows would refuse);
  - a folder on the way that is a file: ERROR_DIRECTORY; a missing one: ERROR_PATH_NOT_FOUND.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat as st
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..model import winpath
from ..targets.base import (CHUNK, AccessDenied, AlreadyExists, DiskFull, FileStat, NotADirectory, NotFound,
                            PathNotFound, SharingViolation, TargetError, makedirs_via, sha256_of)


def fsync_dir(path: Path) -> None:
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


class MockFiles:
    """FileTransport over one mock server's SMS root."""

    accepts_standins = True  # the lab's own site: the one place lab stand-ins may go (standin.py)

    def __init__(self, server: str, root: Path, locked: Callable[[], set[str]]):
        self.server = server
        self.root = root
        self._root = str(root)
        self._folders: dict[str, str] = {}  # case-insensitive key of a folder -> its path on disk
        self._locked = locked  # RelPath keys of files that are open elsewhere, asked fresh each time

    # --- path resolution ------------------------------------------------------------------

    def _err(self, cls: type[TargetError], msg: str, rel: str) -> TargetError:
        return cls(msg, server=self.server, path=rel)

    def _resolve(self, rel: str, *, want_parent: bool = False) -> Path:
        """Find `rel` case-insensitively. With want_parent, the last component may be missing."""
        return self._lookup(rel, want_parent)[0]

    def _lookup(self, rel: str, want_parent: bool = False) -> tuple[Path, os.stat_result | None]:
        """_resolve, with the entry's attributes when the lookup read them on the way."""
        found, s = self._lookup_str(rel, want_parent)
        return (Path(found) if isinstance(found, str) else found), s

    def _lookup_str(self, rel: str, want_parent: bool = False) -> tuple[str | Path, os.stat_result | None]:
        """_lookup, the common case (the path as spelled is there) as a string: a stat, the
        commonest call of a run, then needs no Path object at all."""
        try:
            parts = _checked_parts(rel)
        except winpath.PathRuleError as exc:  # '..' would leave the share; callers never send it
            raise self._err(AccessDenied, str(exc), rel) from None
        # Most paths arrive in the case they have on disk: one lstat finds them. That is what the
        # walk below would find too, as it takes an exact match first at every step.
        exact = os.path.join(self._root, *parts)
        try:
            found = os.lstat(exact)
        except OSError:
            found = None
        if found is not None:
            if st.S_ISLNK(found.st_mode):
                raise self._err(AccessDenied, "links are not followed on a mock site", rel)
            return exact, found
        return self._walk(rel, parts, want_parent), None

    def _walk(self, rel: str, parts: tuple[str, ...], want_parent: bool) -> Path:
        if parts:
            # the folder as spelled, only the last name missing or in another case: one listing
            folder = os.path.join(self._root, *parts[:-1])
            try:
                is_folder = st.S_ISDIR(os.stat(folder).st_mode)
            except OSError:
                is_folder = False
            if is_folder:
                return self._last(rel, Path(folder), parts[-1], want_parent)
            # a folder spelled in another case than on disk: found by a walk once, then remembered
            # (while it is still there: a folder renamed or removed is walked to again)
            fkey = winpath.key("\\".join(parts[:-1]))
            known = self._folders.get(fkey)
            if known is not None:
                try:
                    if st.S_ISDIR(os.stat(known).st_mode):
                        return self._last(rel, Path(known), parts[-1], want_parent)
                except OSError:
                    pass
                del self._folders[fkey]
            found = self._walk_all(rel, parts, want_parent)
            if len(parts) > 1:
                self._folders[fkey] = str(found.parent)
            return found
        return self._walk_all(rel, parts, want_parent)

    def _walk_all(self, rel: str, parts: tuple[str, ...], want_parent: bool) -> Path:
        cur = self.root
        for i, name in enumerate(parts):
            if not cur.is_dir():
                # Windows (and Samba) answer a path through a file with ERROR_PATH_NOT_FOUND
                here = "\\".join(parts[:i]) or "(share root)"
                raise self._err(PathNotFound, f"the system cannot find the path specified ({here} is a file, "
                                "not a folder)", rel)
            exact = cur / name
            if exact.exists() or exact.is_symlink():
                cur = exact
            elif i == len(parts) - 1:
                return self._last(rel, cur, name, want_parent)
            else:
                try:
                    cur = self._last(rel, cur, name, False, final=False)
                except NotFound:
                    raise self._err(PathNotFound, f"the system cannot find the path specified ({name} is missing)",
                                    rel) from None
        if cur.is_symlink():
            raise self._err(AccessDenied, "links are not followed on a mock site", rel)
        return cur

    def _last(self, rel: str, folder: Path, name: str, want_parent: bool, *, final: bool = True) -> Path:
        """The entry of `folder` named `name` in any case (the exact spelling is not there);
        `final`: the path's last name, which must not be a link."""
        matches = [e for e in _listdir(folder) if e.casefold() == name.casefold()]
        if len(matches) > 1:
            raise self._err(TargetError, f"{len(matches)} entries differ only in case ({', '.join(matches)}); "
                            "a Windows folder cannot hold them", rel)
        if not matches:
            if want_parent:
                return folder / name
            raise self._err(NotFound, "the system cannot find the file specified", rel)
        found = folder / matches[0]
        if final and found.is_symlink():
            raise self._err(AccessDenied, "links are not followed on a mock site", rel)
        return found

    def _check_not_in_use(self, rel: str, path: Path) -> None:
        locked = self._locked()
        if not locked:
            return
        text = str(path)
        # every resolved path lies under the root: a slice, not os.path.relpath's normalising walk
        under = text.startswith(self._root + os.sep)
        rel_path = text[len(self._root) + 1:] if under else os.path.relpath(text, self._root)
        key = winpath.key(rel_path)
        if key in locked:
            raise self._err(SharingViolation, "the process cannot access the file because it is being used "
                            "by another process", rel)
        if path.is_dir():
            prefix = key + "\\"
            if any(k.startswith(prefix) for k in locked):
                raise self._err(SharingViolation, "a file in this folder is in use by another process", rel)

    def _check_writable(self, rel: str, path: Path) -> None:
        if path.exists() and not path.is_dir() and not (path.stat().st_mode & st.S_IWUSR):
            raise self._err(AccessDenied, "access is denied (the file is read-only)", rel)

    def _check_folder_writable(self, rel: str, folder: Path) -> None:
        if not (folder.stat().st_mode & st.S_IWUSR):
            raise self._err(AccessDenied, "access is denied (the folder is read-only)", rel)

    def _os_error(self, exc: OSError, rel: str) -> TargetError:
        return windows_error(exc, self.server, rel)

    # --- reading --------------------------------------------------------------------------

    def stat(self, path: str) -> FileStat | None:
        try:
            p, s = self._lookup_str(path)
        except NotFound:
            return None
        s = s or os.stat(p)
        isdir = st.S_ISDIR(s.st_mode)
        return FileStat(os.path.basename(p), 0 if isdir else s.st_size, s.st_mtime_ns, isdir,
                        not (s.st_mode & st.S_IWUSR))

    def listdir(self, path: str) -> list[FileStat]:
        p = self._resolve(path)
        if not p.is_dir():
            raise self._err(NotADirectory, "is a file, not a folder", path)
        out = []
        for name in sorted(_listdir(p), key=str.casefold):
            s = (p / name).lstat()
            isdir = st.S_ISDIR(s.st_mode)
            out.append(FileStat(name, 0 if isdir else s.st_size, s.st_mtime_ns, isdir, not (s.st_mode & st.S_IWUSR)))
        return out

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        p = self._resolve(path)
        if p.is_dir():
            raise self._err(AccessDenied, "is a folder, not a file", path)
        try:
            fh = open(p, "rb")
        except OSError as exc:
            raise self._os_error(exc, path) from None
        with fh:
            while block := fh.read(chunk):
                yield block

    def sha256(self, path: str) -> str:
        return sha256_of(self.read_chunks(path))

    # --- writing --------------------------------------------------------------------------

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False, durable: bool = True) -> int:
        """durable=False: for the site's own simulated programs (Maintenance Manager, the SCM's
        site reset), which write as Windows programs do, leaving the flush to the system."""
        p = self._resolve(path, want_parent=True)
        parent = p.parent
        if not parent.is_dir():
            raise self._err(PathNotFound, f"the system cannot find the path specified ({parent.name} is a file, "
                            "not a folder)", path)
        if p.exists():
            if exclusive:
                raise self._err(AlreadyExists, "the file exists", path)
            if p.is_dir():
                raise self._err(AccessDenied, "is a folder, not a file", path)
            self._check_not_in_use(path, p)
            self._check_writable(path, p)
        else:
            self._check_folder_writable(path, parent)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        written = 0
        try:
            fd = os.open(p, flags, 0o644)
            with os.fdopen(fd, "wb") as fh:
                for block in chunks:
                    fh.write(block)
                    written += len(block)
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
        except OSError as exc:
            raise self._os_error(exc, path) from None
        return written

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        p = self._resolve(path, want_parent=True)
        if p.exists():
            self._check_not_in_use(path, p)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def copy(self, src: str, dst: str) -> None:
        s = self._resolve(src)
        d = self._resolve(dst, want_parent=True)
        if d.exists():
            self._check_not_in_use(dst, d)
            self._check_writable(dst, d)
        elif d.parent.is_dir():
            self._check_folder_writable(dst, d.parent)
        try:
            shutil.copyfile(s, d)  # CopyFile keeps the last write time, as copy2 does
            shutil.copystat(s, d)
            with open(d, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def hard_link(self, src: str, dst: str) -> None:
        """A hard link, as NTFS makes them: allowed on a file another program has open."""
        s = self._resolve(src)
        if s.is_dir():
            raise self._err(AccessDenied, "is a folder; folders cannot be linked", src)
        d = self._resolve(dst, want_parent=True)
        if d.exists():
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", dst)
        self._check_folder_writable(dst, d.parent)
        try:
            os.link(s, d)
            fsync_dir(d.parent)
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def rename(self, src: str, dst: str, *, replace: bool = False, durable: bool = True) -> None:
        s = self._resolve(src)
        self._check_not_in_use(src, s)
        d = self._resolve(dst, want_parent=True)
        if not d.parent.is_dir():
            raise self._err(PathNotFound, f"the system cannot find the path specified ({d.parent.name} is a file, "
                            "not a folder)", dst)
        # moving an entry out of and into a folder needs the right to change both folders
        self._check_folder_writable(src, s.parent)
        self._check_folder_writable(dst, d.parent)
        if d.exists() and str(d).casefold() != str(s).casefold():
            if not replace:
                raise self._err(AlreadyExists, "cannot create a file when that file already exists", dst)
            if d.is_dir():
                raise self._err(AccessDenied, "cannot replace a folder", dst)
            self._check_not_in_use(dst, d)
            self._check_writable(dst, d)
        try:
            os.replace(s, d)
            if durable:
                fsync_dir(d.parent)
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def remove(self, path: str) -> None:
        p = self._resolve(path)
        if p.is_dir():
            raise self._err(AccessDenied, "is a folder; use rmdir", path)
        self._check_not_in_use(path, p)
        self._check_writable(path, p)
        self._check_folder_writable(path, p.parent)
        try:
            p.unlink()
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def rmdir(self, path: str) -> None:
        p = self._resolve(path)
        self._check_not_in_use(path, p)
        try:
            p.rmdir()
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise self._err(TargetError, "the directory is not empty", path, ) from None
            raise self._os_error(exc, path) from None

    def mkdir(self, path: str) -> None:
        p = self._resolve(path, want_parent=True)
        if p.exists():
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", path)
        if not p.parent.is_dir():
            raise self._err(PathNotFound, f"the system cannot find the path specified ({p.parent.name} is a file, "
                            "not a folder)", path)
        try:
            p.mkdir()
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def makedirs(self, path: str) -> None:
        makedirs_via(self, path)

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        p = self._resolve(path)
        self._check_not_in_use(path, p)
        self._check_writable(path, p)
        try:
            os.utime(p, ns=(p.stat().st_atime_ns, mtime_ns))
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def close(self) -> None:
        pass


@lru_cache(maxsize=4096)
def _checked_parts(rel: str) -> tuple[str, ...]:
    """The components of a path, each checked against Windows' rules (raises PathRuleError)."""
    parts = winpath.parts_of(rel)
    for name in parts:
        winpath.check_component(name, "path component")
    return parts


def _listdir(p: Path) -> list[str]:
    try:
        return os.listdir(p)
    except NotADirectoryError:
        return []


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
