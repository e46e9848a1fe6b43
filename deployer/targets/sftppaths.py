r"""Where a RelPath is on an SFTP server, as Windows would find it (the path half of sftp.SftpFiles).

Names match case-insensitively and keep their stored case: the exact name is tried first
(Windows OpenSSH already matches any case), and on a miss the folder is listed and matched
with casefold, so a Linux test host behaves the same. A missing folder on the way is
PathNotFound, a missing last component NotFound; links below the SMS root are refused.
"""

from __future__ import annotations

import stat as st
from contextlib import AbstractContextManager
import functools
from dataclasses import dataclass
from typing import Callable, TypeVar

from paramiko.sftp import SFTP_NO_SUCH_FILE
from paramiko.sftp_attr import SFTPAttributes

from ..errors import InputError
from ..model import winpath
from . import temps
from .base import AccessDenied, FileStat, NotFound, PathNotFound, TargetError
from .sftpsession import SftpSession, SftpStatusError

T = TypeVar("T")


@dataclass
class _Found:
    path: str  # the remote path
    attrs: SFTPAttributes | None  # None: nothing there (only with want_parent)
    name: str  # the last component, as stored where that was looked up

    @property
    def is_dir(self) -> bool:
        return self.attrs is not None and st.S_ISDIR(self.attrs.st_mode or 0)

    @property
    def readonly(self) -> bool:
        return self.attrs is not None and not ((self.attrs.st_mode or 0) & st.S_IWUSR)


def _changes_folders(added: tuple[int, ...] = (0,), removed: tuple[int, ...] = ()
                     ) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """The method adds (the arguments at `added`) or removes (at `removed`) entries: the kept
    listings of their folders are brought up to date when it succeeds, forgotten when it fails."""

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: "SftpPaths", *args: object, **kwargs: object) -> T:
            names = [a for a in args if isinstance(a, str)]
            if method.__name__ != "append":  # the journal's held handle is closed before its file or folder changes
                self._release_append(*names)
            try:
                out = method(self, *args, **kwargs)
            except BaseException:
                self._forget(*names)
                raise
            gone = tuple(str(args[i]) for i in removed)
            new = tuple(str(args[i]) for i in added)
            if not (gone and new and winpath.key(gone[0]) == winpath.key(new[0])):  # a rename in case only: no change
                self._noted(new, gone)
            return out

        return wrapper

    return decorate


class SftpPaths:
    """Path lookups of an SFTP file transport; SftpFiles supplies the session and its errors."""

    root: str
    _folds_case: bool | None
    # Stored names per folder, as last listed: {casefold(folder RelPath): (remote folder,
    # {casefold: name})}, taken in this session and kept up to date with deployer's own
    # changes (a failed change forgets the folder). A name found through it is confirmed with
    # lstat; a name missing from it is declared missing only after a fresh listing, except in a
    # folder this session made (_made), which no one else writes to.
    _folders: dict[str, tuple[str, dict[str, str]]]
    _made: set[str]
    _present: set[str]  # folders makedirs made or found: taken as there until deployer removes or renames them
    _fresh: set[str] | None = None  # folders listed during the stat_many under way

    def _session(self) -> SftpSession:
        raise NotImplementedError

    def _guard(self, op: str, rel: str) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _err(self, cls: type[TargetError], msg: str, rel: str, winerror: int | None = None) -> TargetError:
        raise NotImplementedError

    def _join(self, parts: list[str]) -> str:
        if not parts:
            return self.root
        return ("" if self.root == "/" else self.root) + "/" + "/".join(parts)

    def _parts(self, rel: str) -> list[str]:
        parts = winpath.split(rel)
        for p in parts:
            if p in (".", ".."):
                raise InputError(f"path {rel!r} contains {p!r}; paths stay below the SMS root")
        return parts

    def stat(self, path: str) -> FileStat | None:
        raise NotImplementedError

    def _release_append(self, *rels: str) -> None:
        raise NotImplementedError

    def mkdir(self, path: str) -> None:
        raise NotImplementedError

    def stat_many(self, paths: list[str]) -> list[FileStat | None]:
        """stat() of several paths, their LSTATs in flight together (one round trip for up to
        64). What one exact LSTAT does not settle as stat() would (a miss: the name in another
        case, or the folder on the way; a link; the stored spelling on a case-folding server when
        its folder is not listed yet) is then asked as stat() asks it."""
        parts = [self._parts(p) for p in paths]  # a '..' is refused as stat() refuses it
        if not paths:
            return []
        with self._guard("look up", paths[0]):
            folds = self.folds_case()
            spelled = [self._spelled(p) for p in parts]
            got = self._session().lstat_many([remote for remote, _ in spelled])
        out: list[FileStat | None] = []
        # a folder listed for one miss of this batch answers its other misses: the batch is one look
        self._fresh = set()
        try:
            for path, pp, (remote, name), attrs in zip(paths, parts, spelled, got):
                out.append(self._settle(path, pp, remote, name, attrs, folds))
        finally:
            self._fresh = None
        return out

    def _settle(self, path: str, pp: list[str], remote: str, name: str,
                attrs: SFTPAttributes | None | SftpStatusError, folds: bool) -> FileStat | None:
        """One stat_many answer as stat() would give it."""
        if attrs is None and remote == self._join(pp):
            try:  # the exact name is not there: another case, or no such file
                found = self._find(path, stored=True, asked=True)
            except NotFound:
                return None
            assert found.attrs is not None
            return self._stat_of(found.name, found.attrs)
        if not isinstance(attrs, SFTPAttributes) or not pp or st.S_ISLNK(attrs.st_mode or 0):
            return self.stat(path)
        if folds:
            with self._guard("look up", path):
                name = self._names(pp[:-1], self._join(pp[:-1]), name).get(name.casefold(), name)
        return self._stat_of(name, attrs)

    def _lstat_quiet(self, path: str) -> SFTPAttributes | None:
        try:
            with self._guard("look up", path):
                return self._lstat(path)
        except TargetError:
            return None

    def _lstat(self, path: str) -> SFTPAttributes | None:
        try:
            return self._session().lstat(path)
        except SftpStatusError as exc:
            if exc.code == SFTP_NO_SUCH_FILE:  # also for a file on the way (ENOTDIR)
                return None
            raise

    def folds_case(self) -> bool:
        """Whether the server matches names case-insensitively (Windows); asked once per session."""
        if self._folds_case is None:
            # a root without letters cannot tell: then names are matched by listing, which is
            # right on either kind of server
            swapped = self.root.swapcase()
            self._folds_case = swapped != self.root and self._lstat(swapped) is not None
        return self._folds_case

    def _find(self, rel: str, *, want_parent: bool = False, stored: bool = False, asked: bool = False) -> _Found:
        """asked: the exact path's LSTAT has just missed (stat_many, a read): not asked again."""
        with self._guard("look up", rel):
            return self._lookup(rel, self._parts(rel), want_parent, stored, asked)

    def _spelled(self, parts: list[str]) -> tuple[str, str]:
        """The remote path to try first and the last name in it: on a case-sensitive server, the
        spelling the folder's kept listing has for the name (the exact one otherwise)."""
        name = parts[-1] if parts else ""
        if parts and self._folds_case is False:
            seen = self._folders.get(_key(parts[:-1]))
            spelled = seen[1].get(name.casefold()) if seen else None
            if seen and spelled:
                return f"{seen[0].rstrip('/')}/{spelled}", spelled
        return self._join(parts), name

    def _lookup(self, rel: str, parts: list[str], want_parent: bool, stored: bool, asked: bool = False) -> _Found:
        path = self._join(parts)
        attrs = None if asked else self._lstat(path)
        if attrs is not None:
            name = parts[-1] if parts else ""
            if parts and stored and self.folds_case():
                # the server matched whatever case we asked with; its listing has the stored one
                name = self._names(parts[:-1], self._join(parts[:-1]), name).get(name.casefold(), name)
            return self._no_links(_Found(path, attrs, name), rel)
        if not parts:
            raise self._err(PathNotFound, f"the SMS root {self.root} does not exist on the server", rel)
        name = parts[-1]
        if not self.folds_case():
            seen = self._folders.get(_key(parts[:-1]))
            spelled = seen[1].get(name.casefold()) if seen else None
            trusted = (_key(parts[:-1]) in self._made or _key(parts[:-1]) in (self._fresh or ())
                       or _deployers_own(name))
            if seen and spelled is None and trusted:
                # a folder this session made (a run's backups), its listing kept up to date with
                # deployer's own changes, or one listed during the same stat_many; or a name only
                # deployer writes (a run's staged or restored copy): no name in any case (the exact
                # one was just asked). In any other case someone else may have added one since:
                # listed again below
                if want_parent:
                    return _Found(f"{seen[0].rstrip('/')}/{name}", None, name)
                raise self._err(NotFound, "the system cannot find the file specified", rel)
            if seen and spelled is not None and spelled != name:
                # the spelling this folder had last time: one lstat instead of a listing
                candidate = f"{seen[0].rstrip('/')}/{spelled}"
                attrs = self._lstat(candidate)
                if attrs is not None:
                    return self._no_links(_Found(candidate, attrs, str(spelled)), rel)
        here = "\\".join(parts[:-1])
        try:
            parent = self._lookup(rel, parts[:-1], False, False)
        except NotFound:
            raise self._err(PathNotFound, f"the system cannot find the path specified ({here} is missing)",
                            rel) from None
        if not parent.is_dir:
            raise self._err(PathNotFound, f"the system cannot find the path specified ({here} is a file, not a "
                            "folder)", rel)
        if not self.folds_case():  # a case-folding server has looked in every case already
            entries = self._entries(parent.path)
            self._remember(parts[:-1], parent.path, entries)
            matches = [e for e in entries if e.filename.casefold() == name.casefold()]
            if len(matches) > 1:
                raise self._err(TargetError, f"{len(matches)} entries differ only in case "
                                f"({', '.join(e.filename for e in matches)}); a Windows folder cannot hold them", rel)
            if matches:
                found = _Found(f"{parent.path.rstrip('/')}/{matches[0].filename}", matches[0], matches[0].filename)
                return self._no_links(found, rel)
        if want_parent:
            return _Found(f"{parent.path.rstrip('/')}/{name}", None, name)
        raise self._err(NotFound, "the system cannot find the file specified", rel)

    def _remember(self, folder: list[str], remote: str, entries: list[SFTPAttributes]) -> dict[str, str]:
        names = {e.filename.casefold(): e.filename for e in entries}
        self._folders[_key(folder)] = (remote, names)
        if self._fresh is not None:
            self._fresh.add(_key(folder))
        return names

    def _names(self, folder: list[str], remote: str, need: str) -> dict[str, str]:
        seen = self._folders.get(_key(folder))
        if seen and need.casefold() in seen[1]:
            return seen[1]
        return self._remember(folder, remote, self._entries(remote))

    def _forget(self, *rels: str) -> None:
        for rel in rels:
            self._folders.pop(_key(winpath.split(rel)[:-1]), None)
            self._unpresent(rel)

    def _unpresent(self, rel: str) -> None:
        """makedirs asks again for this folder and those below it."""
        key = _key(winpath.split(rel))
        self._present = {k for k in self._present if key and k != key and not k.startswith(key + "\\")}

    def _noted(self, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
        """deployer's own change succeeded: the listings kept of the folders it touched say so
        (instead of being listed again). A name added keeps the spelling a listing already has
        for it (a case-sensitive server resolved the name to that entry); a folder removed takes
        the listings below it along."""
        for rel in removed:
            parts = winpath.split(rel)
            seen = self._folders.get(_key(parts[:-1]))
            if seen and parts:
                seen[1].pop(parts[-1].casefold(), None)
            below = _key(parts)
            self._unpresent(rel)
            for k in [k for k in self._folders if k == below or k.startswith(below + "\\")]:
                del self._folders[k]
                self._made.discard(k)
        for rel in added:
            parts = winpath.split(rel)
            seen = self._folders.get(_key(parts[:-1]))
            if seen and parts:
                seen[1].setdefault(parts[-1].casefold(), parts[-1])

    def _no_links(self, found: _Found, rel: str) -> _Found:
        if found.attrs is not None and st.S_ISLNK(found.attrs.st_mode or 0):
            raise self._err(AccessDenied, "links are not followed below the SMS root", rel)
        return found

    def _entries(self, path: str) -> list[SFTPAttributes]:
        return [e for e in self._session().list_folder(path) if e.filename not in (".", "..")]

    @staticmethod
    def _stat_of(name: str, attrs: SFTPAttributes) -> FileStat:
        is_dir = st.S_ISDIR(attrs.st_mode or 0)
        return FileStat(name, 0 if is_dir else int(attrs.st_size or 0), int(attrs.st_mtime or 0) * 10**9, is_dir,
                        not ((attrs.st_mode or 0) & st.S_IWUSR))

    def _refuse_readonly(self, found: _Found, rel: str) -> None:
        if found.attrs is not None and not found.is_dir and found.readonly:
            raise self._err(AccessDenied, "access is denied (the file is read-only)", rel)


def _deployers_own(name: str) -> bool:
    """A run's staged or restored copy (`NAME.~dpl-<run>-<purpose>`): no one but deployer names a
    file so, and deployer spells it the same way each time, so the exact name's LSTAT is the
    whole answer once a listing of its folder is kept (deployer's own changes keep it up to date)."""
    found = temps.parse(name)
    return found is not None and found[1] is temps.DEPLOYER


def _key(folder: list[str]) -> str:
    return "\\".join(folder).casefold()


def _folder(remote: str) -> str:
    return remote.rsplit("/", 1)[0] or "/"
