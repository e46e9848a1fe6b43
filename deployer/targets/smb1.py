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
- **many files at once** (stat_many, listdir_many, stat_sha256_many, read_many, copy_many,
  rename_many: smb1batch.py): independent requests sent together, each answered under its own
  Mid, so a batch costs the round trips of one file; a handle's last requests go with its
  CLOSE, but never a CLOSE while a READ of its file is unanswered (Samba crashes closing a file
  under its asynchronous reads).
"""

from __future__ import annotations

from collections import deque
from contextlib import AbstractContextManager
from typing import Any, Iterable, Iterator

from .temps import SMB1_ASIDE
from ..model.inventory import SmbFiles as SmbFilesSpec
from . import deferred, smb1batch, smb1write
from .adapters import impacket_internals as lib
from .adapters import impacket_pipeline as pipe
from .base import CHUNK, AccessDenied, FileStat, NotADirectory, TargetError, filetime_to_ns, ns_to_filetime, sha256_of
from .connect import ConnectContext, register_files
from .smb1conn import Smb1Link, Smb1Options
from .smbsession import MISSING, NO_MORE_FILES, NOT_A_DIRECTORY, status_error
from .smbshare import Held, ShareBase, _norm, check_name, dir_entries, files_from_inventory

ROUND = 32  # READs or WRITEs of a transfer sent together, then all answered (at most MaxMpxCount - 1)
ASIDE_SUFFIX = SMB1_ASIDE.suffix  # registered in deployer/targets/temps.py, so recovery knows it


class Smb1FileTransport(ShareBase):
    """FileTransport rooted at one share of an SMB1 server (what SMB 2/3 does alike is smbshare.ShareBase's)."""

    link: Smb1Link
    listing_is_stat = True  # stat() is a one-name TRANS2 FIND, a listing the same for `*`: same entries

    def __init__(self, server: str, link: Smb1Link, share: str, *, timeout: float | None = None,
                 owns_link: bool = False):
        super().__init__(server, link, share, timeout=timeout, owns_link=owns_link)
        self.atomic_replace: bool | None = None  # None: as the server's capabilities say
        self._deferred: list[deferred.Pending] | None = None  # see deferred_writes()

    def deferred_writes(self) -> AbstractContextManager[None]:
        """The prepare's uploads queued and sent together (deferred.py, smb1write.py)."""
        return deferred.deferred_writes(self, smb1write.write_many)

    def _op(self, what: str, path: str | None = None) -> Any:
        if self._deferred:  # nothing is reordered around the queued writes: they go out first
            deferred.send_deferred(self, smb1write.write_many)
        return super()._op(what, path)

    # --- plumbing ---------------------------------------------------------------------------

    def _open(self, rel: str, what: str, access: int, share: int, disposition: int, options: int,
              attributes: int = 0, override: dict | None = None) -> lib.Opened:
        try:
            return self.link.conn.create(self._tree(), rel, access, share, disposition, options, attributes)
        except lib.SessionError as exc:
            raise status_error(lib.status_of(exc), what, server=self.server, path=rel, override=override) from None

    def _close(self, fid: int, what: str, rel: str) -> None:
        try:
            self.link.conn.close_fid(self._tree(), fid)
        except lib.SessionError as exc:
            raise status_error(lib.status_of(exc), what, server=self.server, path=rel) from None

    def _close_quietly(self, fid: int, generation: int) -> None:
        if not self.link.is_current(generation):
            return
        try:
            with self._op("close"):
                self.link.conn.close_fid(self._tree(), fid)
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

    def stat(self, path: str) -> FileStat | None:
        rel = _norm(path)
        with self._op("stat", rel):
            if not rel:
                o = self._open("", "stat", lib.READ_ATTRIBUTES, lib.SHARE_ALL, lib.FILE_OPEN, lib.FILE_DIRECTORY_FILE)
                self._close(o.fid, "stat", rel)
                return FileStat("", 0, filetime_to_ns(o.write_time), True, False)
            check_name(rel.rpartition("\\")[2], self.server, rel)
            try:
                pages = list(self.link.conn.find(self._tree(), rel, single=True))
            except lib.SessionError as exc:
                status = lib.status_of(exc)
                if status in MISSING or status == NO_MORE_FILES:
                    return None
                raise status_error(status, "stat", server=self.server, path=rel) from None
        found = [e for page in pages for e in dir_entries(page, self.link.conn._unicode())]
        return found[0] if found else None

    def listdir(self, path: str) -> list[FileStat]:
        """The folder's one-name FIND (is it a folder?) and its listing's FIND_FIRST2 in one round trip."""
        got = smb1batch.listdir_many(self, [path])[0]
        if isinstance(got, TargetError):
            raise got
        return got

    def _list_entries(self, rel: str) -> list[FileStat]:
        """A folder's whole listing, FIND_NEXT2 after FIND_FIRST2 (one known to be a folder)."""
        with self._op("list", rel):
            pattern = f"{rel}\\*" if rel else "*"
            entries = []
            try:
                for page in self.link.conn.find(self._tree(), pattern):
                    entries += dir_entries(page, self.link.conn._unicode())
            except lib.SessionError as exc:
                if lib.status_of(exc) not in (NO_MORE_FILES, 0xC000000F):
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
            depth = max(1, min(ROUND, conn.max_mpx - 1))
            offset = 0
            buf = bytearray()
            arrived: dict[int, bytes] = {}
            while offset < o.size or pending:
                with self._op("read", rel):
                    if not self.link.is_current(generation):
                        raise TargetError("read: the connection was lost while reading", server=self.server,
                                          path=rel, winerror=64)
                    tid = self._tree()
                    # in rounds (sent together, then all taken): a window refilled answer by answer
                    # would wait once per answer
                    if not pending:
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

    # --- many at once (smb1batch.py: the requests of a batch in flight together) -------------

    def stat_many(self, paths: list[str]) -> list[FileStat | None]:
        return smb1batch.stat_many(self, paths)

    def stat_sha256(self, path: str) -> tuple[FileStat | None, str | None]:
        """stat() and sha256() in three round trips (FIND and open; READs; close), not four."""
        return smb1batch.stat_sha256_many(self, [path])[0]

    def stat_sha256_many(self, paths: list[str], sizes: list[int | None] | None = None
                         ) -> list[tuple[FileStat | None, str | None]]:
        return smb1batch.stat_sha256_many(self, paths, sizes)

    def read_many(self, paths: list[str], limit: int) -> list[bytes | None]:
        return smb1batch.read_many(self, paths, limit)

    def listdir_many(self, paths: list[str]) -> list[list[FileStat] | TargetError]:
        return smb1batch.listdir_many(self, paths)

    def copy_many(self, pairs: list[tuple[str, str]], mtimes: list[int | None] | None = None
                  ) -> list[TargetError | None]:
        return smb1batch.copy_many(self, pairs, mtimes)

    def rename_many(self, pairs: list[tuple[str, str]], *, replace: bool = False) -> list[TargetError | None]:
        return smb1batch.rename_many(self, pairs, replace=replace)

    # --- writing ----------------------------------------------------------------------------

    def _write_all(self, fid: int, chunks: Iterable[bytes], offset: int, rel: str, what: str,
                   flush: bool = True) -> int:
        conn = self.link.conn
        tid = self._tree()
        size = conn.io_unit(write=True)
        depth = max(1, min(ROUND, conn.max_mpx - 1))
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
            if len(pending) >= depth:  # in rounds: a window refilled answer by answer waits once per answer
                while pending:
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
        if flush:
            self._call(what, rel, conn.flush, tid, fid)
        return written

    def _finish(self, fid: int, rel: str, *steps: tuple[str, "pipe.Request"]) -> None:
        """The last requests on a handle, its CLOSE behind them, in one round trip: the server runs
        them in order, and none may go asynchronous under the CLOSE (every READ and WRITE on the
        handle is answered before; Samba crashes closing a file under its asynchronous reads).
        Raises the first failure, as one request at a time would."""
        answers = pipe.round_trip(self.link.conn, [r for _, r in steps] + [pipe.close(self._tree(), fid)])
        for what, got in zip([w for w, _ in steps] + [steps[-1][0] if steps else "close"], answers):
            if isinstance(got, lib.SessionError):
                raise status_error(lib.status_of(got), what, server=self.server, path=rel)

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        """Inside deferred_writes() queued (its chunks read when it is sent; 0 returned)."""
        if deferred.queue(self, path, chunks, exclusive):
            return 0
        rel = _norm(path)
        with self._op("write", rel):
            self._release_append(rel)
            o = self._open(rel, "write", lib.WRITE_DATA | lib.APPEND_DATA | lib.WRITE_ATTRIBUTES | lib.READ_ATTRIBUTES,
                           lib.SHARE_READ, lib.FILE_CREATE if exclusive else lib.FILE_OVERWRITE_IF,
                           lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE)
            generation = self.link.generation
            try:
                written = self._write_all(o.fid, chunks, 0, rel, "write", flush=False)
                self._finish(o.fid, rel, ("write", pipe.flush(self._tree(), o.fid)))  # flushed, then closed
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
            if held is not None and (held.key != rel.casefold() or not self.link.is_current(held.generation)):
                self._release_append()
                held = None
            if held is None:
                o = self._open(rel, "append", lib.WRITE_DATA | lib.APPEND_DATA | lib.READ_ATTRIBUTES, lib.SHARE_READ,
                               lib.FILE_OPEN_IF, lib.FILE_NON_DIRECTORY_FILE, lib.ATTR_ARCHIVE)
                held = Held(rel.casefold(), o.fid, self.link.generation, o.size)
            fid, generation, offset = held.fh, held.generation, held.offset
            self._appending = None
            conn = self.link.conn
            try:
                if len(data) <= conn.io_unit(write=True):
                    mid = conn.send_write(self._tree(), fid, offset, data)
                    _, got = self._call("append", rel, conn.receive_write, {mid})
                    if got != len(data):
                        raise TargetError(f"append: the server wrote {got} of {len(data)} bytes", server=self.server,
                                          path=rel)
                else:
                    self._write_all(fid, [data], offset, rel, "append")
            except BaseException:
                self._close_quietly(fid, generation)
                raise
            held.offset += len(data)
            self._appending = held

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
            self._forget_made(s_rel, d_rel)
            if not replace:
                self._rename_path(s_rel, d_rel)
                return
            same_folder = s_rel.rpartition("\\")[0].casefold() == d_rel.rpartition("\\")[0].casefold()
            if self._passthru() and same_folder:  # checked, renamed and closed in two round trips
                error = smb1batch.rename_many(self, [(s_rel, d_rel)], replace=True)[0]
                if error is not None:
                    raise error
                return
            exists = self._check_replaceable(s_rel, d_rel)
            if not exists:
                self._rename_path(s_rel, d_rel)
                if not self._passthru() and self.stat(d_rel + ASIDE_SUFFIX) is not None:
                    # an earlier replace in steps was cut off between its renames, and this one (a
                    # rollback's restore) has just put the file back: the aside copy is not needed
                    self._delete(d_rel + ASIDE_SUFFIX, "remove", lib.FILE_NON_DIRECTORY_FILE, {})
                return
            self._replace_in_steps(s_rel, d_rel)

    def _rename_path(self, s_rel: str, d_rel: str) -> None:
        self._call(f"rename {s_rel} to", d_rel, self.link.conn.rename_path, self._tree(), s_rel, d_rel)

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
            o = self.link.conn.create(self._tree(), dst, lib.DELETE | lib.READ_ATTRIBUTES, lib.SHARE_ALL,
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
        self._forget_made(rel)
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

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        if deferred.queue_mtime(self, path, mtime_ns):
            return  # set with the queued file's FLUSH
        rel = _norm(path)
        with self._op("set write time", rel):
            self._release_append(rel)
            o = self._open(rel, "set write time", lib.WRITE_ATTRIBUTES | lib.READ_ATTRIBUTES, lib.SHARE_ALL,
                           lib.FILE_OPEN, 0)
            generation = self.link.generation
            try:
                self._finish(o.fid, rel, ("set write time", pipe.set_write_time(self._tree(), o.fid,
                                                                               ns_to_filetime(mtime_ns))))
            except BaseException:
                self._close_quietly(o.fid, generation)
                raise


# --- from the inventory ------------------------------------------------------------------


def options_of(spec: SmbFilesSpec) -> Smb1Options:
    return Smb1Options(spec.host, spec.port, spec.username, spec.domain, spec.require_signing, spec.allow_ntlmv1)


@register_files("smb1")
def smb1_files(ctx: ConnectContext) -> Smb1FileTransport:
    return files_from_inventory(ctx, Smb1Link, options_of, Smb1FileTransport)
