r"""Where a RelPath is on an SFTP server, as Windows would find it (the path half of sftp.SftpFiles).

Names match case-insensitively and keep their stored case: the exact name is tried first
(Windows OpenSSH already matches any case), and on a miss the folder is listed and matched
with casefold, so a Linux test host behaves the same. A missing folder on the way is
PathNotFound, a missing last component NotFound; links below the SMS root are refused.
"""

from __future__ import annotations

import stat as st
from contextlib import AbstractContextManager
from dataclasses import dataclass

from paramiko.sftp import SFTP_NO_SUCH_FILE
from paramiko.sftp_attr import SFTPAttributes

from ..errors import InputError
from ..model import winpath
from .base import AccessDenied, FileStat, NotFound, PathNotFound, TargetError
from .sftpsession import SftpSession, SftpStatusError


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


class SftpPaths:
    """Path lookups of an SFTP file transport; SftpFiles supplies the session and its errors."""

    root: str
    _folds_case: bool | None
    # Stored names per folder, as last listed: {casefold(folder RelPath): (remote folder,
    # {casefold: name})}. A hint only: a name found through it is confirmed with lstat, a
    # name is declared missing only after a fresh listing, and deployer's own changes
    # forget the folder.
    _folders: dict[str, tuple[str, dict[str, str]]]

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

    def _find(self, rel: str, *, want_parent: bool = False, stored: bool = False) -> _Found:
        with self._guard("look up", rel):
            return self._lookup(rel, self._parts(rel), want_parent, stored)

    def _lookup(self, rel: str, parts: list[str], want_parent: bool, stored: bool) -> _Found:
        path = self._join(parts)
        attrs = self._lstat(path)
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
            # the spelling this folder had last time: one lstat instead of a listing
            seen = self._folders.get(_key(parts[:-1]))
            if seen and name.casefold() in seen[1]:
                candidate = f"{seen[0].rstrip('/')}/{seen[1][name.casefold()]}"
                attrs = self._lstat(candidate)
                if attrs is not None:
                    return self._no_links(_Found(candidate, attrs, seen[1][name.casefold()]), rel)
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
        return names

    def _names(self, folder: list[str], remote: str, need: str) -> dict[str, str]:
        seen = self._folders.get(_key(folder))
        if seen and need.casefold() in seen[1]:
            return seen[1]
        return self._remember(folder, remote, self._entries(remote))

    def _forget(self, *rels: str) -> None:
        for rel in rels:
            self._folders.pop(_key(winpath.split(rel)[:-1]), None)

    def _no_links(self, found: _Found, rel: str) -> _Found:
        if found.attrs is not None and st.S_ISLNK(found.attrs.st_mode or 0):
            raise self._err(AccessDenied, "links are not followed below the SMS root", rel)
        return found

    def _entries(self, path: str) -> list[SFTPAttributes]:
        return [e for e in self._session().listdir_attr(path) if e.filename not in (".", "..")]

    @staticmethod
    def _stat_of(name: str, attrs: SFTPAttributes) -> FileStat:
        is_dir = st.S_ISDIR(attrs.st_mode or 0)
        return FileStat(name, 0 if is_dir else int(attrs.st_size or 0), int(attrs.st_mtime or 0) * 10**9, is_dir,
                        not ((attrs.st_mode or 0) & st.S_IWUSR))

    def _refuse_readonly(self, found: _Found, rel: str) -> None:
        if found.attrs is not None and not found.is_dir and found.readonly:
            raise self._err(AccessDenied, "access is denied (the file is read-only)", rel)


def _key(folder: list[str]) -> str:
    return "\\".join(folder).casefold()
