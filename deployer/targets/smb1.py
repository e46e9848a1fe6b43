r"""FileTransport over SMB1 (NT LM 0.12, impacket): Windows NT 4.0 and 2000 servers.

The same contract as the SMB 2/3 transport (smb.py), with what SMB1 offers:

- **stat/listdir** by TRANS2_FIND_FIRST2 (SMB_FIND_FILE_DIRECTORY_INFO): names as stored,
  sizes, attributes, write times as FILETIMEs; **set_mtime** by SMB_SET_FILE_BASIC_INFO, to
  the 100 ns.
- **read/write** by READ_ANDX/WRITE_ANDX, several in flight (up to the server's MaxMpxCount);
  writes are write-through and flushed before `write_file` returns.
- **rename(replace=True)** is atomic where the server accepts the pass-through rename
  information level (CAP_INFOLEVEL_PASSTHRU: Windows 2000, Samba). Windows NT 4.0 does not:
  there the file in the way is first renamed aside (`<name>.~smb1-old`), the new one renamed
  into place, and the aside file removed. For that moment the destination name does not
  exist; if the connection dies in between, the run's journal has the replace as started and
  rollback (or `deployer recover`) restores the file from its backup (and then removes the
  aside file). Should the second rename fail, the aside file is renamed back before the error
  is raised.
- **copy** has no server-side form in SMB1 (no FSCTL_SRV_COPYCHUNK): the data makes a round
  trip through deployer, and the copy gets the source's write time.
- **sharing violations, read-only files** as smb.py: a replace checks the destination first,
  because Samba's rename does not apply other clients' share modes (Windows does).
"""

from __future__ import annotations

import struct
from collections import deque
from contextlib import AbstractContextManager
from typing import Any, Iterable, Iterator

from ..model import winpath
from .temps import SMB1_ASIDE
from ..model.inventory import SmbFiles as SmbFilesSpec
from ..model.secrets import SecretSource
from .adapters import impacket_internals as lib
from .base import (CHUNK, AccessDenied, FileStat, NotADirectory, TargetError, filetime_to_ns, ns_to_filetime,
                   sha256_of)
from .connect import ConnectContext, register_files
from .smb1conn import Smb1Link, Smb1Options
from .smbconn import MISSING, NOT_A_DIRECTORY, status_error

_DIR_ENTRY = struct.Struct("<IIqqqqqqII")  # SMB_FIND_FILE_DIRECTORY_INFO up to the name (MS-CIFS 2.2.8.1.4)
_WILDCARDS = set('*?<>"')
ASIDE_SUFFIX = SMB1_ASIDE.suffix  # registered in deployer/targets/temps.py, so recovery knows it


_norm = winpath.join  # a path with one separator between its names


def _entries(buf: bytes, unicode: bool) -> list[FileStat]:
    out = []
    pos = 0
    while pos + _DIR_ENTRY.size <= len(buf):
        (next_off, _index, _created, _accessed, written, _changed, eof, _alloc, attrs,
         name_len) = _DIR_ENTRY.unpack_from(buf, pos)
        raw = buf[pos + _DIR_ENTRY.size:pos + _DIR_ENTRY.size + name_len]
        name = raw.decode("utf-16-le") if unicode else raw.decode("latin-1")
        name = name.rstrip("\x00")
        is_dir = bool(attrs & lib.ATTR_DIRECTORY)
        out.append(FileStat(name, 0 if is_dir else eof, filetime_to_ns(written), is_dir,
                            bool(attrs & lib.ATTR_READONLY)))
        if not next_off:
            break
        pos += next_off
    return out


class Smb1FileTransport:
    """FileTransport rooted at one share of an SMB1 server."""

    listing_is_stat = True  # stat() is a one-name TRANS2 FIND, a listing the same for `*`: same entries
    def __init__(self, server: str, link: Smb1Link, share: str, *, timeout: float | None = None,
                 owns_link: bool = False):
        self.server = server
        self.link = link
        self.share = share
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self.atomic_replace: bool | None = None  # None: as the server's capabilities say
        # append()'s handle, kept open between records: (casefolded RelPath, fid, session generation, next offset)
        self._appending: tuple[str, int, int, int] | None = None

    def __repr__(self) -> str:
        return f"Smb1FileTransport({self.server}, \\\\{self.link.options.host}\\{self.share})"

    # --- plumbing ---------------------------------------------------------------------------

    def _op(self, what: str, path: str | None = None) -> AbstractContextManager[Smb1Link]:
        return self.link.op(what, path, self.timeout, server=self.server)

    def _tid(self) -> int:
        return self.link.tree(self.share)

    def _open(self, rel: str, what: str, access: int, share: int, disposition: int, options: int,
              attributes: int = 0, override: dict | None = None) -> lib.Opened:
        try:
            return self.link.conn.create(self._tid(), rel, access, share, disposition, options, attributes)
        except lib.SessionError as exc:
            raise status_error(lib.status_of(exc), what, server=self.server, path=rel, override=override) from None

    def _close(self, fid: int, what: str, rel: str) -> None:
        try:
            self.link.conn.close_fid(self._tid(), fid)
        except lib.SessionError as exc:
            raise status_error(lib.status_of(exc), what, server=self.server, path=rel) from None

    def _close_quietly(self, fid: int, generation: int) -> None:
        if not self.link.is_current(generation):
            return
        try:
            with self._op("close"):
                self.link.conn.close_fid(self._tid(), fid)
        except (TargetError, lib.SessionError):
            pass

    def _call(self, what: str, rel: str, fn: Any, *args: Any, override: dict | None = None) -> Any:
        try:
            return fn(*args)
        except lib.SessionError as exc:
            raise status_error(lib.status_of(exc), what, server=self.server, path=rel, override=override) from None

    def _passthru(self) -> bool:
        if self.atomic_replace is not None:
            return self.atomic_replace
        return bool(self.link.conn.capabilities & lib.CAP_PASSTHRU)

    # --- reading ----------------------------------------------------------------------------

    def connect(self) -> None:
        with self._op(f"connect to share {self.share}"):
            self._tid()

    def stat(self, path: str) -> FileStat | None:
        rel = _norm(path)
        with self._op("stat", rel):
            if not rel:
                o = self._open("", "stat", lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN, lib.FILE_DIRECTORY_FILE)
                self._close(o.fid, "stat", rel)
                return FileStat("", 0, filetime_to_ns(o.write_time), True, False)
            name = rel.rpartition("\\")[2]
            if _WILDCARDS & set(name):
                raise TargetError(f"stat: {name!r} is not a valid file name", server=self.server, path=rel,
                                  winerror=123)
            try:
                pages = list(self.link.conn.find(self._tid(), rel, single=True))
            except lib.SessionError as exc:
                status = lib.status_of(exc)
                if status in MISSING or status == 0x80000006:  # STATUS_NO_MORE_FILES
                    return None
                raise status_error(status, "stat", server=self.server, path=rel) from None
        found = [e for page in pages for e in _entries(page, self.link.conn._unicode())]
        return found[0] if found else None

    def listdir(self, path: str) -> list[FileStat]:
        rel = _norm(path)
        with self._op("list", rel):
            st = self.stat(rel) if rel else FileStat("", 0, 0, True)
            if st is None:
                raise status_error(0xC000003A, "list", server=self.server, path=rel)
            if not st.is_dir:
                raise NotADirectory("list: is a file, not a folder", server=self.server, path=rel)
            pattern = f"{rel}\\*" if rel else "*"
            entries = []
            try:
                for page in self.link.conn.find(self._tid(), pattern):
                    entries += _entries(page, self.link.conn._unicode())
            except lib.SessionError as exc:
                if lib.status_of(exc) not in (0x80000006, 0xC000000F):
                    raise status_error(lib.status_of(exc), "list", server=self.server, path=rel) from None
        return sorted((e for e in entries if e.name not in (".", "..")), key=lambda e: e.name.casefold())

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        rel = _norm(path)
        with self._op("read", rel):
            o = self._open(rel, "read", lib.READ_DATA | lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN,
                           lib.FILE_NON_DIRECTORY_FILE)
            generation = self.link.generation
        done = False
        pending: deque[tuple[int, int]] = deque()
        try:
            conn = self.link.conn
            step = conn.io_unit(write=False)
            depth = max(1, min(16, conn.max_mpx - 1))
            offset = 0
            buf = bytearray()
            arrived: dict[int, bytes] = {}
            while offset < o.size or pending:
                with self._op("read", rel):
                    if not self.link.is_current(generation):
                        raise TargetError("read: the connection was lost while reading", server=self.server,
                                          path=rel, winerror=64)
                    tid = self._tid()
                    while offset < o.size and len(pending) < depth:
                        n = min(step, o.size - offset)
                        pending.append((conn.send_read(tid, o.fid, offset, n), n))
                        offset += n
                    mid, want = pending.popleft()
                    while mid not in arrived:  # replies may come out of order: keep them until their turn
                        got_mid, got = self._call("read", rel, conn.receive_read, {m for m, _ in pending} | {mid})
                        arrived[got_mid] = got
                    data = arrived.pop(mid)
                if len(data) != want:
                    raise TargetError(f"read: the server returned {len(data)} of {want} bytes (the file changed "
                                      "while it was read?)", server=self.server, path=rel)
                buf += data
                if len(buf) >= chunk:
                    yield bytes(buf)
                    buf.clear()
            if buf:
                yield bytes(buf)
            with self._op("read", rel):
                self._close(o.fid, "read", rel)
            done = True
        finally:
            if not done:
                if self.link.is_current(generation):
                    self.link.conn.forget(m for m, _ in pending)
                self._close_quietly(o.fid, generation)

    def sha256(self, path: str) -> str:
        return sha256_of(self.read_chunks(path))

    # --- writing ----------------------------------------------------------------------------

    def _write_all(self, fid: int, chunks: Iterable[bytes], offset: int, rel: str, what: str) -> int:
        conn = self.link.conn
        tid = self._tid()
        size = conn.io_unit(write=True)
        depth = max(1, min(16, conn.max_mpx - 1))
        pending: dict[int, int] = {}  # Mid -> bytes sent
        written = 0
        buf = bytearray()

        def reap() -> None:  # the next reply, whichever write it answers
            nonlocal written
            mid, got = self._call(what, rel, conn.receive_write, set(pending))
            want = pending.pop(mid)
            if got != want:
                raise TargetError(f"{what}: the server wrote {got} of {want} bytes", server=self.server, path=rel)
            written += got

        def send(data: bytes | memoryview) -> None:
            nonlocal offset
            while len(pending) >= depth:
                reap()
            pending[conn.send_write(tid, fid, offset, data)] = len(data)
            offset += len(data)

        try:
            for chunk in chunks:
                buf += chunk
                if len(buf) >= size:
                    view = memoryview(buf)
                    whole = len(buf) - len(buf) % size
                    for start in range(0, whole, size):
                        send(view[start:start + size])
                    view.release()
                    del buf[:whole]
            if buf:
                send(bytes(buf))
            while pending:
                reap()
        except BaseException:
            conn.forget(pending)
            raise
        self._call(what, rel, conn.flush, tid, fid)
        return written

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        rel = _norm(path)
        with self._op("write", rel):
            self._release_append(rel)
            o = self._open(rel, "write", lib.WRITE_DATA | lib.APPEND_DATA | lib.WRITE_ATTRIBUTES | lib.READ_ATTRIBUTES,
                           lib.SHARE_READ, lib.FILE_CREATE if exclusive else lib.FILE_OVERWRITE_IF,
                           lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE)
            generation = self.link.generation
            try:
                written = self._write_all(o.fid, chunks, 0, rel, "write")
                self._close(o.fid, "write", rel)
            except BaseException:
                self._close_quietly(o.fid, generation)
                raise
        return written

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """One WRITE_ANDX a record (one round trip) on a handle kept open between appends to the
        same file (the run's journal), closed before deployer changes that file or a folder above
        it, and with the transport. SMB1 writes here are write-through: every append is durable
        when answered, asked or not."""
        rel = _norm(path)
        with self._op("append", rel):
            held = self._appending
            if held is not None and (held[0] != rel.casefold() or not self.link.is_current(held[2])):
                self._release_append()
                held = None
            if held is None:
                o = self._open(rel, "append", lib.WRITE_DATA | lib.APPEND_DATA | lib.READ_ATTRIBUTES, lib.SHARE_READ,
                               lib.FILE_OPEN_IF, lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE)
                held = (rel.casefold(), o.fid, self.link.generation, o.size)
            key, fid, generation, offset = held
            self._appending = None
            conn = self.link.conn
            try:
                if len(data) <= conn.io_unit(write=True):
                    mid = conn.send_write(self._tid(), fid, offset, data)
                    _, got = self._call("append", rel, conn.receive_write, {mid})
                    if got != len(data):
                        raise TargetError(f"append: the server wrote {got} of {len(data)} bytes", server=self.server,
                                          path=rel)
                else:
                    self._write_all(fid, [data], offset, rel, "append")
            except BaseException:
                self._close_quietly(fid, generation)
                raise
            self._appending = (key, fid, generation, offset + len(data))

    def _release_append(self, *paths: str) -> None:
        """Close append()'s handle (only if it is one of `paths` or below one of them, when given)."""
        held = self._appending
        if held is None:
            return
        keys = [_norm(p).casefold() for p in paths]
        if paths and not any(not k or held[0] == k or held[0].startswith(k + "\\") for k in keys):
            return
        self._appending = None
        self._close_quietly(held[1], held[2])

    def copy(self, src: str, dst: str) -> None:
        """SMB1 has no server-side copy: read and write back, then give the copy the source's write time."""
        s_rel, d_rel = _norm(src), _norm(dst)
        if s_rel.casefold() == d_rel.casefold():
            raise TargetError("copy: the source and the destination are the same file", server=self.server,
                              path=s_rel)
        with self._op("copy", s_rel):
            self._release_append(d_rel)
            st = self.stat(s_rel)
            if st is None:
                raise status_error(0xC0000034, "copy", server=self.server, path=s_rel)
            self.write_file(d_rel, self.read_chunks(s_rel))
            self.set_mtime(d_rel, st.mtime_ns)

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        s_rel, d_rel = _norm(src), _norm(dst)
        with self._op("rename", s_rel):
            self._release_append(s_rel, d_rel)
            if not replace:
                self._rename_path(s_rel, d_rel)
                return
            exists = self._check_replaceable(s_rel, d_rel)
            same_folder = s_rel.rpartition("\\")[0].casefold() == d_rel.rpartition("\\")[0].casefold()
            if self._passthru() and same_folder:
                o = self._open(s_rel, "rename", lib.DELETE | lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN, 0)
                generation = self.link.generation
                try:
                    self._call(f"rename {s_rel} to", d_rel, self.link.conn.rename_fid, self._tid(), o.fid,
                               d_rel.rpartition("\\")[2], True)
                finally:
                    self._close_quietly(o.fid, generation)
                return
            if not exists:
                self._rename_path(s_rel, d_rel)
                if not self._passthru() and self.stat(d_rel + ASIDE_SUFFIX) is not None:
                    # an earlier replace in steps was cut off between its renames, and this one (a
                    # rollback's restore) has just put the file back: the aside copy is not needed
                    self._delete(d_rel + ASIDE_SUFFIX, "remove", lib.FILE_NON_DIRECTORY_FILE, {})
                return
            self._replace_in_steps(s_rel, d_rel)

    def _rename_path(self, s_rel: str, d_rel: str) -> None:
        self._call(f"rename {s_rel} to", d_rel, self.link.conn.rename_path, self._tid(), s_rel, d_rel)

    def _replace_in_steps(self, s_rel: str, d_rel: str) -> None:
        """The closest SMB1 without pass-through levels offers: aside, into place, remove the aside file."""
        aside = d_rel + ASIDE_SUFFIX
        if self.stat(aside) is not None:  # left by an earlier interrupted replace: the backup has it
            self._delete(aside, "remove", lib.FILE_NON_DIRECTORY_FILE, {})
        self._rename_path(d_rel, aside)
        try:
            self._rename_path(s_rel, d_rel)
        except BaseException:
            try:
                self._rename_path(aside, d_rel)
            except (TargetError, lib.SessionError):
                pass  # the journal and the backup cover it; the first error is the one to report
            raise
        self._delete(aside, "remove", lib.FILE_NON_DIRECTORY_FILE, {})

    def _check_replaceable(self, src: str, dst: str) -> bool:
        """Whether dst exists; refuses to replace a file another client holds without sharing delete,
        or a read-only file, as Windows does (Samba's rename would replace both; see smb.py)."""
        try:
            o = self.link.conn.create(self._tid(), dst, lib.DELETE | lib.READ_ATTRIBUTES, lib.SHARE_ALL,
                                      lib.FILE_OPEN, 0)
        except lib.SessionError as exc:
            if lib.status_of(exc) in MISSING:
                return False
            raise status_error(lib.status_of(exc), f"rename {src} to", server=self.server, path=dst) from None
        self._close(o.fid, f"rename {src} to", dst)
        if o.attributes & lib.ATTR_READONLY:
            raise AccessDenied(f"rename {src} to {dst}: access is denied (the file is read-only)",
                               server=self.server, path=dst)
        return True

    def remove(self, path: str) -> None:
        with self._op("remove", _norm(path)):
            self._delete(_norm(path), "remove", lib.FILE_NON_DIRECTORY_FILE, {})

    def rmdir(self, path: str) -> None:
        with self._op("rmdir", _norm(path)):
            self._delete(_norm(path), "rmdir", lib.FILE_DIRECTORY_FILE,
                         {NOT_A_DIRECTORY: (NotADirectory, "is a file, not a folder")})

    def _delete(self, rel: str, what: str, options: int, override: dict) -> None:
        self._release_append(rel)
        o = self._open(rel, what, lib.DELETE | lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN,
                       options | lib.FILE_DELETE_ON_CLOSE, override=override)
        self._close(o.fid, what, rel)

    def mkdir(self, path: str) -> None:
        rel = _norm(path)
        with self._op("mkdir", rel):
            self._mkdir(rel, lib.FILE_CREATE)

    def _mkdir(self, rel: str, disposition: int) -> None:
        o = self._open(rel, "mkdir", lib.LIST_DIRECTORY | lib.READ_ATTRIBUTES, lib.SHARE_ALL, disposition,
                       lib.FILE_DIRECTORY_FILE, lib.ATTR_DIRECTORY)
        self._close(o.fid, "mkdir", rel)

    def makedirs(self, path: str) -> None:
        from .base import PathNotFound

        rel = _norm(path)
        parts = winpath.split(rel)
        with self._op("makedirs", rel):
            try:
                self._mkdir(rel, lib.FILE_OPEN_IF)
                return
            except PathNotFound:
                pass
            for i in range(1, len(parts) + 1):
                sub = "\\".join(parts[:i])
                try:
                    self._mkdir(sub, lib.FILE_OPEN_IF)
                except PathNotFound:
                    raise PathNotFound(f"makedirs: the system cannot find the path specified ({sub} is a file, "
                                       "not a folder)", server=self.server, path=rel) from None

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        rel = _norm(path)
        with self._op("set write time", rel):
            self._release_append(rel)
            o = self._open(rel, "set write time", lib.WRITE_ATTRIBUTES | lib.READ_ATTRIBUTES, lib.SHARE_ALL,
                           lib.FILE_OPEN, 0)
            generation = self.link.generation
            try:
                self._call("set write time", rel, self.link.conn.set_write_time, self._tid(), o.fid,
                           ns_to_filetime(mtime_ns))
                self._close(o.fid, "set write time", rel)
            except BaseException:
                self._close_quietly(o.fid, generation)
                raise

    def close(self) -> None:
        if self._appending is not None:
            try:
                with self._op("close"):
                    self._release_append()
            except TargetError:
                self._appending = None  # the server drops the handle with the session
        if self._owns_link:
            self.link.close()


# --- from the inventory ------------------------------------------------------------------


def shared_link(ctx: ConnectContext, options: Smb1Options, password: SecretSource, timeout: float) -> Smb1Link:
    return ctx.session(Smb1Link, options, password, timeout)


def options_of(spec: SmbFilesSpec) -> Smb1Options:
    return Smb1Options(spec.host, spec.port, spec.username, spec.domain, spec.require_signing, spec.allow_ntlmv1)


@register_files("smb1")
def smb1_files(ctx: ConnectContext) -> Smb1FileTransport:
    spec = ctx.server.files
    assert isinstance(spec, SmbFilesSpec)
    link = shared_link(ctx, options_of(spec), spec.password, spec.timeout)
    files = Smb1FileTransport(ctx.name, link, spec.share, timeout=spec.timeout)
    files.connect()
    return files

