"""The mock site's file system: a local folder that behaves like an NTFS share.

Layout of a mock site folder (made by `deployer lab init`):
    site.json                      the site's servers, platforms and SMS roots
    <SERVER>/<drive>/<sms root>/   each server's SMS root (C/SMS for C:\\SMS)
    <SERVER>/scm.json              its Service Control Manager's state
    <SERVER>/handles.json          files other programs hold open (see `hold_open`, disk.py)

Windows behaviour simulated here, because the procedures depend on it:
  - names are matched case-insensitively and keep the case they were created with;
  - a file that a running service has loaded (its image or a DLL), or that another
    program holds open, cannot be written, renamed, deleted or re-timed: ERROR_SHARING_VIOLATION;
  - a read-only file cannot be written or deleted: ERROR_ACCESS_DENIED (root's Unix
    privileges are deliberately ignored: Windows would refuse);
  - a folder on the way that is a file: ERROR_DIRECTORY; a missing one: ERROR_PATH_NOT_FOUND.
"""

from __future__ import annotations

import errno
import os
import stat as st
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..model import winpath
from .disk import (KeptAppends, copy_durably, fsync_dir, handles_file, held_open, hold_open,  # noqa: F401 - their home was here
                   lstat_or_none, windows_error, write_all, write_json_atomic)
from ..targets.base import (CHUNK, AccessDenied, AlreadyExists, FileStat, NotADirectory, NotFound,
                            PathNotFound, SharingViolation, TargetError, makedirs_via, sha256_of)


class MockFiles:
    """FileTransport over one mock server's SMS root.

    Paths are plain strings here, never pathlib objects: a 100-site fleet makes some 90,000
    lookups, and a Path costs a parse and several objects per step (11% of a run's wall once).
    Each operation stats an entry once and passes the answer on, instead of asking exists(),
    is_dir() and stat() of the same file in turn."""

    accepts_standins = True  # the lab's own site: the one place lab stand-ins may go (standin.py)

    def __init__(self, server: str, root: Path, locked: Callable[[], set[str]]):
        self.server = server
        self.root = root
        self._root = str(root)
        self._prefix = self._root + os.sep  # joined by hand: posixpath.join checks every part again
        self._folders: dict[str, str] = {}  # case-insensitive key of a folder -> its path on disk
        # folder on disk -> (its stamp, casefolded name -> the names spelled so): a path asked in
        # another case than on disk (a playbook's Pcmsvc32.exe for PCMSVC32.EXE) needs the folder's
        # names, listed again only once the folder changed (_names)
        self._names: dict[str, tuple[tuple[int, int, int], dict[str, list[str]]]] = {}
        self._locked = locked  # RelPath keys of files that are open elsewhere, asked fresh each time
        # files appended to (a run's journal, Maintman.log), kept open while this object is (disk.py)
        self._appends = KeptAppends()

    # --- path resolution ------------------------------------------------------------------

    def _err(self, cls: type[TargetError], msg: str, rel: str) -> TargetError:
        return cls(msg, server=self.server, path=rel)

    def _resolve(self, rel: str, *, want_parent: bool = False) -> Path:
        """Find `rel` case-insensitively. With want_parent, the last component may be missing."""
        return Path(self._lookup_str(rel, want_parent)[0])

    def _find(self, rel: str, want_parent: bool = False) -> tuple[str, os.stat_result | None]:
        """_resolve as a string, with the entry's attributes (None: it is not there)."""
        found, s = self._lookup(rel, want_parent)
        return found, (_stat(found) if s is _UNREAD else s)  # type: ignore[return-value]

    def _lookup(self, rel: str, want_parent: bool = False) -> tuple[str, os.stat_result | None | object]:
        """_lookup_str, saying also when it learnt that the entry is not there (None) or did not
        read it (_UNREAD): a name found in another case is lstat'ed by the walk (is it a link?),
        a name missing from its folder's listing is known missing; neither is stat'ed again."""
        try:
            parts = _checked_parts(rel)
        except winpath.PathRuleError as exc:  # '..' would leave the share; callers never send it
            raise self._err(AccessDenied, str(exc), rel) from None
        exact = self._prefix + os.sep.join(parts) if parts else self._root  # parts never hold a separator
        try:
            found = os.lstat(exact)
        except OSError:
            found = None
        if found is not None:
            if st.S_ISLNK(found.st_mode):
                raise self._err(AccessDenied, "links are not followed on a mock site", rel)
            return exact, found
        return self._walk(rel, parts, want_parent)

    def _lookup_str(self, rel: str, want_parent: bool = False) -> tuple[str, os.stat_result | None]:
        """The path of `rel` on disk, with its attributes when the lookup read them on the way:
        the common case (the path as spelled is there) is one lstat. Most paths arrive in the
        case they have on disk: one lstat finds them. That is what the walk would find too, as it
        takes an exact match first at every step."""
        found, s = self._lookup(rel, want_parent)
        return found, (None if s is _UNREAD else s)  # type: ignore[return-value]

    def _walk(self, rel: str, parts: tuple[str, ...], want_parent: bool) -> tuple[str, object]:
        if parts:
            # the folder as spelled, only the last name missing or in another case: one listing
            folder = os.path.join(self._root, *parts[:-1])
            fs = _stat(folder)
            if fs is not None and st.S_ISDIR(fs.st_mode):
                return self._last(rel, folder, parts[-1], want_parent, folder_stat=fs)
            # a folder spelled in another case than on disk: found by a walk once, then remembered
            # (while it is still there: a folder renamed or removed is walked to again)
            fkey = winpath.key("\\".join(parts[:-1]))
            known = self._folders.get(fkey)
            if known is not None:
                if os.path.isdir(known):
                    return self._last(rel, known, parts[-1], want_parent)
                self._folders.pop(fkey, None)  # pop: Maintenance Manager's thread shares this object
            found = self._walk_all(rel, parts, want_parent)
            if len(parts) > 1:
                self._folders[fkey] = os.path.dirname(found[0])
            return found
        return self._walk_all(rel, parts, want_parent)

    def _walk_all(self, rel: str, parts: tuple[str, ...], want_parent: bool) -> tuple[str, object]:
        cur = self._root
        for i, name in enumerate(parts):
            if not os.path.isdir(cur):
                # Windows (and Samba) answer a path through a file with ERROR_PATH_NOT_FOUND
                here = "\\".join(parts[:i]) or "(share root)"
                raise self._err(PathNotFound, f"the system cannot find the path specified ({here} is a file, "
                                "not a folder)", rel)
            exact = os.path.join(cur, name)
            if os.path.lexists(exact):
                cur = exact
            elif i == len(parts) - 1:
                return self._last(rel, cur, name, want_parent)
            else:
                try:
                    cur = self._last(rel, cur, name, False, final=False)[0]
                except NotFound:
                    raise self._err(PathNotFound, f"the system cannot find the path specified ({name} is missing)",
                                    rel) from None
        s = _lstat(cur)  # is it a link? and the entry's attributes, read once
        if s is not None and st.S_ISLNK(s.st_mode):
            raise self._err(AccessDenied, "links are not followed on a mock site", rel)
        return cur, (_UNREAD if s is None else s)

    def _last(self, rel: str, folder: str, name: str, want_parent: bool, *, final: bool = True,
              folder_stat: os.stat_result | None = None) -> tuple[str, object]:
        """The entry of `folder` named `name` in any case (the exact spelling is not there), with
        its attributes (None: not there; _UNREAD: not read); `final`: the path's last name, which
        must not be a link; `folder_stat`: the folder's, if the caller has it."""
        matches = self._names_in(folder, folder_stat).get(name.casefold(), [])
        if len(matches) > 1:
            raise self._err(TargetError, f"{len(matches)} entries differ only in case ({', '.join(matches)}); "
                            "a Windows folder cannot hold them", rel)
        if not matches:
            if want_parent:
                return os.path.join(folder, name), None
            raise self._err(NotFound, "the system cannot find the file specified", rel)
        found = os.path.join(folder, matches[0])
        if not final:
            return found, _UNREAD
        # the lstat that tells a link is the entry's attributes too: the caller need not stat it
        s = _lstat(found)
        if s is not None and st.S_ISLNK(s.st_mode):
            raise self._err(AccessDenied, "links are not followed on a mock site", rel)
        return found, (_UNREAD if s is None else s)

    def _names_in(self, folder: str, s: os.stat_result | None = None) -> dict[str, list[str]]:
        """The folder's names by their casefold, kept while the folder's stamp (inode, write and
        change times) stays; any entry made, removed or renamed there changes it. A listing is
        kept only once the folder is older than the file system clock's granularity could hide
        (as git does for racy entries): a name added in the same tick would not move the stamp."""
        s = s or _stat(folder)
        if s is None:
            return {}
        stamp = (s.st_ino, s.st_mtime_ns, s.st_ctime_ns)
        hit = self._names.get(folder)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        names: dict[str, list[str]] = {}
        for e in _listdir(folder):
            names.setdefault(e.casefold(), []).append(e)
        if st.S_ISDIR(s.st_mode) and time.time_ns() - max(s.st_mtime_ns, s.st_ctime_ns) > _RACY_NS:
            self._names[folder] = (stamp, names)
        return names

    def _folder_of(self, rel: str, path: str) -> os.stat_result:
        """The folder `path` goes into, which must be one (a missing or file parent: ERROR_PATH_NOT_FOUND)."""
        parent = os.path.dirname(path)
        s = _stat(parent)
        if s is None or not st.S_ISDIR(s.st_mode):
            raise self._err(PathNotFound, f"the system cannot find the path specified ({os.path.basename(parent)} "
                            "is a file, not a folder)", rel)
        return s

    def _check_not_in_use(self, rel: str, path: str, isdir: bool | None = None,
                          locked: set[str] | None = None) -> None:
        """`locked`: the files in use as this operation found them, when it checks two paths
        (a rename): one answer for one operation, as Windows opens both ends at once."""
        locked = self._locked() if locked is None else locked
        if not locked:
            return
        # every resolved path lies under the root: a slice, not os.path.relpath's normalising walk
        under = path.startswith(self._root + os.sep)
        rel_path = path[len(self._root) + 1:] if under else os.path.relpath(path, self._root)
        key = winpath.key(rel_path)
        if key in locked:
            raise self._err(SharingViolation, "the process cannot access the file because it is being used "
                            "by another process", rel)
        if isdir if isdir is not None else os.path.isdir(path):
            prefix = key + "\\"
            if any(k.startswith(prefix) for k in locked):
                raise self._err(SharingViolation, "a file in this folder is in use by another process", rel)

    def _check_writable(self, rel: str, s: os.stat_result | None) -> None:
        """`s`: the file's attributes (None: not there, nothing to refuse)."""
        if s is not None and not st.S_ISDIR(s.st_mode) and not (s.st_mode & st.S_IWUSR):
            raise self._err(AccessDenied, "access is denied (the file is read-only)", rel)

    def _check_folder_writable(self, rel: str, folder: os.stat_result) -> None:
        if not (folder.st_mode & st.S_IWUSR):
            raise self._err(AccessDenied, "access is denied (the folder is read-only)", rel)

    def _os_error(self, exc: OSError, rel: str) -> TargetError:
        return windows_error(exc, self.server, rel)

    # --- reading --------------------------------------------------------------------------

    def stat(self, path: str) -> FileStat | None:
        try:
            p, s = self._lookup(path)
        except NotFound:
            return None
        s = os.stat(p) if s is _UNREAD or s is None else s
        isdir = st.S_ISDIR(s.st_mode)
        return FileStat(os.path.basename(p), 0 if isdir else s.st_size, s.st_mtime_ns, isdir,
                        not (s.st_mode & st.S_IWUSR), s.st_ctime_ns, s.st_ino)

    def listdir(self, path: str) -> list[FileStat]:
        p, s = self._find(path)
        if s is None or not st.S_ISDIR(s.st_mode):
            raise self._err(NotADirectory, "is a file, not a folder", path)
        out = []
        base = p + os.sep
        for name in sorted(_listdir(p), key=str.casefold):
            e = os.lstat(base + name)
            isdir = st.S_ISDIR(e.st_mode)
            out.append(FileStat(name, 0 if isdir else e.st_size, e.st_mtime_ns, isdir, not (e.st_mode & st.S_IWUSR),
                                e.st_ctime_ns, e.st_ino))
        return out

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        p, s = self._find(path)
        if s is not None and st.S_ISDIR(s.st_mode):
            raise self._err(AccessDenied, "is a folder, not a file", path)
        try:
            # os.open, not open(): a buffered file object asks the fd for its size and whether it is
            # a terminal (fstat, ioctl, lseek) on every open, three calls a read that say nothing
            fd = os.open(p, os.O_RDONLY)
        except OSError as exc:
            raise self._os_error(exc, path) from None
        try:
            while block := os.read(fd, chunk):
                yield block
        finally:
            os.close(fd)

    def sha256(self, path: str) -> str:
        return sha256_of(self.read_chunks(path))

    # --- writing --------------------------------------------------------------------------

    def _into(self, rel: str, path: str, s: os.stat_result | None, *, exclusive: bool = False) -> None:
        """What Windows checks before a file is written, copied or renamed over at `path`."""
        if s is None:
            self._check_folder_writable(rel, self._folder_of(rel, path))
            return
        # there, it was found in its folder: no stat of the folder (a file is replaced in place)
        if exclusive:
            raise self._err(AlreadyExists, "the file exists", rel)
        if st.S_ISDIR(s.st_mode):
            raise self._err(AccessDenied, "is a folder, not a file", rel)
        self._check_not_in_use(rel, path, False)
        self._check_writable(rel, s)

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False, durable: bool = True) -> int:
        """durable=False: for the site's own simulated programs (Maintenance Manager, the SCM's
        site reset), which write as Windows programs do, leaving the flush to the system."""
        p, s = self._find(path, want_parent=True)
        self._into(path, p, s, exclusive=exclusive)
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        written = 0
        try:
            fd = os.open(p, flags, 0o644)
            try:  # unbuffered, as read_chunks: no fdopen's fstat, ioctl and lseek
                for block in chunks:
                    write_all(fd, block)
                    written += len(block)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise self._os_error(exc, path) from None
        return written

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        p, s = self._find(path, want_parent=True)
        # Windows checks sharing when a file is opened: the in-use check runs when the kept fd is
        # (re)opened, not on every record written through the handle deployer already holds (a
        # program that opens the file later, denying writes, is the one refused). Was two stats
        # (scm.json's and handles.json's) on each of some 75 appends a site.
        check = None if s is None else (lambda: self._check_not_in_use(path, p, st.S_ISDIR(s.st_mode)))
        try:
            self._appends.append(p, s, data, durable=durable, on_open=check)
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def copy(self, src: str, dst: str) -> None:
        s, s_st = self._find(src)
        d, d_st = self._find(dst, want_parent=True)
        if s_st is None:
            raise self._err(NotFound, "the system cannot find the file specified", src)
        if st.S_ISDIR(s_st.st_mode):
            raise self._err(AccessDenied, "is a folder, not a file", src)
        if d_st is not None:
            if d_st.st_ino == s_st.st_ino and d_st.st_dev == s_st.st_dev:
                raise self._err(AccessDenied, "the file cannot be copied onto itself", dst)
            self._check_not_in_use(dst, d, st.S_ISDIR(d_st.st_mode))
            self._check_writable(dst, d_st)
        elif (folder := _stat(os.path.dirname(d))) is not None and st.S_ISDIR(folder.st_mode):
            self._check_folder_writable(dst, folder)  # one stat: is it a folder, may it change
        try:
            # one open of each file: the bytes (sendfile), then, as CopyFile does, the source's
            # write time and attributes (read-only included), then the copy made durable
            copy_durably(s, d, s_st)
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def hard_link(self, src: str, dst: str) -> None:
        """A hard link, as NTFS makes them: allowed on a file another program has open."""
        s, s_st = self._find(src)
        if s_st is not None and st.S_ISDIR(s_st.st_mode):
            raise self._err(AccessDenied, "is a folder; folders cannot be linked", src)
        d, d_st = self._find(dst, want_parent=True)
        if d_st is not None:
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", dst)
        parent = os.path.dirname(d)
        try:
            self._check_folder_writable(dst, os.stat(parent))
            os.link(s, d)
            fsync_dir(parent)
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def rename(self, src: str, dst: str, *, replace: bool = False, durable: bool = True) -> None:
        s, s_st = self._find(src)
        locked = self._locked()
        self._check_not_in_use(src, s, None if s_st is None else st.S_ISDIR(s_st.st_mode), locked)
        d, d_st = self._find(dst, want_parent=True)
        d_folder = self._folder_of(dst, d)
        # moving an entry out of and into a folder needs the right to change both folders (one
        # stat when it is the same folder: a staged file swapped in beside its original)
        s_dir = os.path.dirname(s)
        self._check_folder_writable(src, d_folder if s_dir == os.path.dirname(d) else os.stat(s_dir))
        self._check_folder_writable(dst, d_folder)
        if d_st is not None and d.casefold() != s.casefold():
            if not replace:
                raise self._err(AlreadyExists, "cannot create a file when that file already exists", dst)
            if st.S_ISDIR(d_st.st_mode):
                raise self._err(AccessDenied, "cannot replace a folder", dst)
            self._check_not_in_use(dst, d, False, locked)
            self._check_writable(dst, d_st)
        try:
            os.replace(s, d)
            if durable:
                fsync_dir(os.path.dirname(d))
        except OSError as exc:
            raise self._os_error(exc, dst) from None

    def remove(self, path: str) -> None:
        p, s = self._find(path)
        if s is not None and st.S_ISDIR(s.st_mode):
            raise self._err(AccessDenied, "is a folder; use rmdir", path)
        self._check_not_in_use(path, p, False)
        self._check_writable(path, s)
        self._check_folder_writable(path, os.stat(os.path.dirname(p)))
        try:
            os.unlink(p)
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def rmdir(self, path: str) -> None:
        p, s = self._find(path)
        self._check_not_in_use(path, p, None if s is None else st.S_ISDIR(s.st_mode))
        try:
            os.rmdir(p)
        except OSError as exc:
            if exc.errno == errno.ENOTEMPTY:
                raise self._err(TargetError, "the directory is not empty", path, ) from None
            raise self._os_error(exc, path) from None

    def mkdir(self, path: str) -> None:
        p, s = self._find(path, want_parent=True)
        if s is not None:
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", path)
        self._folder_of(path, p)
        try:
            os.mkdir(p)
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def makedirs(self, path: str) -> None:
        # the folder is there, as spelled or in another case: one lookup, not a stat per level
        try:
            _p, s = self._find(path)
        except TargetError:
            s = None
        if s is not None and st.S_ISDIR(s.st_mode):
            return
        makedirs_via(self, path)

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        p, s = self._find(path)
        self._check_not_in_use(path, p, None if s is None else st.S_ISDIR(s.st_mode))
        self._check_writable(path, s)
        try:
            os.utime(p, ns=((s or os.stat(p)).st_atime_ns, mtime_ns))
        except OSError as exc:
            raise self._os_error(exc, path) from None

    def close(self) -> None:
        """Close the files kept open for appending (a later append opens its file again)."""
        self._appends.close()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


_lstat = lstat_or_none


# a lookup that did not read the entry's attributes (_find stats it)
_UNREAD = object()


# a folder changed less than this long ago may change again without its stamp moving (coarse
# file system clocks tick every 1 to 10 milliseconds): its listing is not kept
_RACY_NS = 20_000_000


@lru_cache(maxsize=4096)
def _checked_parts(rel: str) -> tuple[str, ...]:
    """The components of a path, each checked against Windows' rules (raises PathRuleError)."""
    parts = winpath.parts_of(rel)
    for name in parts:
        winpath.check_component(name, "path component")
    return parts


def _listdir(p: str) -> list[str]:
    try:
        return os.listdir(p)
    except NotADirectoryError:
        return []
