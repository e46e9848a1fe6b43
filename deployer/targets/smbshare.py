r"""What a file transport rooted at one SMB share does, whichever dialect carries it: SMB 2/3
(smbbase.SmbBase, smbread.py, smb.py) and SMB1 (smb1.py) are its two cases.

The share, its link and the bound of each operation; connecting to the share up front; the
append handle kept open on the run's journal and closed before deployer touches that file
or a folder above it; folders made or found once a session (makedirs); closing; and the
transport's construction from the inventory. A dialect supplies `_mkdir(rel, disposition)`,
`_close_quietly(handle, generation)` and its requests.
"""

from __future__ import annotations

import struct
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from ..model import winpath
from ..model.inventory import SmbFiles as SmbFilesSpec
from .base import FileStat, PathNotFound, TargetError, filetime_to_ns
from .connect import ConnectContext
from .smbsession import LinkBase, LinkOptions

_DIR_ENTRY = struct.Struct("<IIqqqqqqII")  # FILE_DIRECTORY_INFORMATION (MS-FSCC 2.4.10) up to the name
_WILDCARDS = set('*?<>"')
ATTR_READONLY, ATTR_DIRECTORY = 0x01, 0x10  # FILE_ATTRIBUTE_* (MS-FSCC 2.6), the same in SMB1
FILE_OPEN_IF = 3  # the NT create disposition (MS-SMB2 2.2.13, MS-CIFS 2.2.4.64.1): open, or create if missing

_norm = winpath.join  # a path with one separator between its names


def dir_entries(buf: bytes, unicode: bool = True) -> list[FileStat]:
    """A listing's entries as FILE_DIRECTORY_INFORMATION carries them: SMB 2/3's QUERY_DIRECTORY and
    SMB1's TRANS2_FIND_FIRST2/NEXT2 (SMB_FIND_FILE_DIRECTORY_INFO, MS-CIFS 2.2.8.1.4) alike. Parsed
    here rather than by the libraries, whose time fields round FILETIMEs to microseconds: write
    times must round-trip exactly. An SMB1 server without CAP_UNICODE names in its code page."""
    out = []
    pos = 0
    while pos + _DIR_ENTRY.size <= len(buf):
        (next_off, _index, _created, _accessed, written, _changed, eof, _alloc, attrs,
         name_len) = _DIR_ENTRY.unpack_from(buf, pos)
        raw = buf[pos + _DIR_ENTRY.size:pos + _DIR_ENTRY.size + name_len]
        name = (raw.decode("utf-16-le") if unicode else raw.decode("latin-1")).rstrip("\x00")
        is_dir = bool(attrs & ATTR_DIRECTORY)
        out.append(FileStat(name, 0 if is_dir else eof, filetime_to_ns(written), is_dir, bool(attrs & ATTR_READONLY)))
        if not next_off:
            break
        pos += next_off
    return out


def check_name(name: str, server: str, rel: str) -> None:
    """A name with wildcards would match other files: stat refuses it as Windows does (123)."""
    if _WILDCARDS & set(name):
        raise TargetError(f"stat: {name!r} is not a valid file name", server=server, path=rel, winerror=123)


@dataclass
class Held:
    """The handle append() keeps open on the file it appends to (the run's journal)."""

    key: str  # casefolded RelPath
    fh: Any  # the dialect's handle: an smbprotocol Open, an SMB1 FID
    generation: int  # the session it was opened on
    offset: int  # where the next record goes


class ShareBase:
    """A FileTransport's common part: one share of one server, on a link shared with its services."""

    def __init__(self, server: str, link: Any, share: str, *, timeout: float | None = None,
                 owns_link: bool = False):
        self.server = server
        self.link = link
        self.share = share
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self._appending: Held | None = None  # see append()
        self._made: set[str] = set()  # casefolded folders makedirs made or found (see makedirs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server}, \\\\{self.link.options.host}\\{self.share})"

    def _op(self, what: str, path: str | None = None) -> AbstractContextManager[Any]:
        return self.link.op(what, path, self.timeout, server=self.server)

    def _tree(self) -> Any:
        return self.link.tree(self.share)

    def connect(self) -> None:
        """Log on and connect to the share now, so that a wrong password or share shows up first."""
        with self._op(f"connect to share {self.share}"):
            self._tree()

    # --- what a dialect supplies ------------------------------------------------------------

    def _mkdir(self, rel: str, disposition: int) -> None:
        raise NotImplementedError

    def _close_quietly(self, fh: Any, generation: int) -> None:
        """Close a handle after a failure, if its session is still there (never reconnecting for it)."""
        raise NotImplementedError

    # --- the held append handle -------------------------------------------------------------

    def _release_append(self, *paths: str) -> None:
        """Close the held append handle (of any file, or only if it is one of `paths` or below one)."""
        held = self._appending
        if held is None:
            return
        if paths and not any(held.key == p.casefold() or held.key.startswith(p.casefold() + "\\") or not p
                             for p in map(_norm, paths)):
            return
        self._appending = None
        self._close_quietly(held.fh, held.generation)

    # --- folders ----------------------------------------------------------------------------

    def makedirs(self, path: str) -> None:
        """Made or found once, a folder is taken as there for the rest of the session (until
        deployer removes or renames it or a folder above it): the backups of a run's actions
        go to a few folders, asked for again and again."""
        rel = _norm(path)
        parts = winpath.split(rel)
        if rel.casefold() in self._made:
            return
        with self._op("makedirs", rel):
            try:
                self._mkdir(rel, FILE_OPEN_IF)  # usually all there but the last
            except PathNotFound:
                for i in range(1, len(parts) + 1):
                    sub = "\\".join(parts[:i])
                    try:
                        self._mkdir(sub, FILE_OPEN_IF)
                    except PathNotFound:
                        raise PathNotFound(f"makedirs: the system cannot find the path specified ({sub} is a file, "
                                           "not a folder)", server=self.server, path=rel) from None
        self._made.update("\\".join(parts[:i]).casefold() for i in range(1, len(parts) + 1))

    def _forget_made(self, *rels: str) -> None:
        for rel in rels:
            key = _norm(rel).casefold()
            self._made = {k for k in self._made if key and k != key and not k.startswith(key + "\\")}

    def close(self) -> None:
        if self._appending is not None:
            try:
                with self._op("close", self._appending.key):
                    self._release_append()
            except TargetError:
                self._appending = None  # the server drops the handle with the session
        if self._owns_link:
            self.link.close()


# --- from the inventory ------------------------------------------------------------------

L = TypeVar("L", bound=LinkBase)
S = TypeVar("S", bound=ShareBase)


def shared_link(ctx: ConnectContext, link: type[L], options: LinkOptions, password: Any, timeout: float) -> L:
    """The server's link of that dialect: one per options key, shared by its files and services."""
    return ctx.session(link, options, password, timeout)


def files_from_inventory(ctx: ConnectContext, link: type[LinkBase], options_of: Callable[[SmbFilesSpec], LinkOptions],
                         transport: type[S]) -> S:
    """The server's file transport, connected to its share (a wrong password or share shows up first)."""
    spec = ctx.server.files
    assert isinstance(spec, SmbFilesSpec)
    options = options_of(spec)
    shared = shared_link(ctx, link, options, spec.password, spec.timeout)
    for other in ctx.site.site.servers.values():  # the site's other shares on this link: connected together
        theirs = other.files
        if isinstance(theirs, SmbFilesSpec) and theirs.smb1 == spec.smb1 and \
                theirs.share.casefold() != spec.share.casefold() and options_of(theirs).key == options.key:
            shared.expect(theirs.share)
    files = transport(ctx.name, shared, spec.share, timeout=spec.timeout)
    files.connect()
    return files

