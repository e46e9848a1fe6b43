r"""FileTransport over SFTP, for Windows servers running OpenSSH.

RelPaths (`Site.srv\X86.BIN\Base.dll`) become the inventory's `root` plus '/'-joined
components (`/C:/SMS/Site.srv/X86.BIN/Base.dll`, as Windows OpenSSH names paths).

Windows semantics, where SFTP alone would differ:
  - names match case-insensitively and keep their stored case: the exact name is tried
    first (Windows OpenSSH already matches any case), and on a miss the folder is listed
    and matched with casefold, so a Linux test host behaves the same;
  - a read-only file cannot be written, replaced, deleted or re-timed (AccessDenied), even
    where the server's account could (root on Linux; Windows refuses administrators too);
  - a missing folder on the way is PathNotFound, a missing last component NotFound.

SFTP version 3 (what OpenSSH speaks) carries write times in whole seconds; KB tables give
minutes, and deployer compares what it reads back through the same transport.

Where the server offers them (OpenSSH's sftp-server does, Windows OpenSSH's too), replace
is one posix-rename@openssh.com (atomic, but see rename() for old Windows builds), writes
end with fsync@openssh.com, and copy runs on the server with copy-data; the fallback of
each is explained where it is used.
"""

from __future__ import annotations

import stat as st
from contextlib import AbstractContextManager, contextmanager
from typing import Iterable, Iterator

import paramiko
from paramiko.sftp import (
    SFTP_BAD_MESSAGE,
    SFTP_CONNECTION_LOST,
    SFTP_FLAG_APPEND,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_CONNECTION,
    SFTP_NO_SUCH_FILE,
    SFTP_OP_UNSUPPORTED,
    SFTP_PERMISSION_DENIED,
)

from ..model import winpath
from . import deferred, sftpbatch, sftpmany, sftpwrite
from .base import (
    CHUNK,
    AccessDenied,
    AlreadyExists,
    ConnectionLost,
    DiskFull,
    FileStat,
    NotADirectory,
    NotFound,
    TargetError,
    TransportTimeout,
    sha256_of,
)
from .sftppaths import SftpPaths, _changes_folders, _folder, _Found, _key
from .sftpsession import SftpSession, SftpStatusError
from .sshconn import SshConnection

LOW_SPACE = 1 << 20  # after a failed write, less free space than this means the disk is full


class SftpFiles(SftpPaths):
    """FileTransport for one server's SMS root over SFTP."""

    # a READDIR entry carries what LSTAT answers for the name, spelled as stored: the planner may
    # take a file's stat from the folder listing it holds. Not once a listing showed a link: stat()
    # refuses a link, and the planner must then ask stat() to be refused as before
    listing_is_stat = True

    def __init__(self, server: str, conn: SshConnection, root: str):
        self.server = server
        self.conn = conn
        self.root = root.rstrip("/") or "/"
        self._sftp: SftpSession | None = None
        self._generation = -1
        self._folds_case: bool | None = None
        self._folders: dict[str, tuple[str, dict[str, str]]] = {}
        self._made: set[str] = set()  # folders this session made (their kept listings are complete)
        self._present: set[str] = set()  # folders makedirs made or found (sftpmany.makedirs)
        # append()'s handle, kept open between records: (casefolded RelPath, handle, the SFTP
        # session it belongs to, next offset, remote path)
        self._appending: tuple[str, bytes, SftpSession, int, str] | None = None
        self._deferred: list[deferred.Pending] | None = None  # see deferred_writes()

    def deferred_writes(self) -> AbstractContextManager[None]:
        """The prepare's uploads queued and sent together (deferred.py, sftpwrite.py)."""
        return deferred.deferred_writes(self, sftpwrite.write_many)

    # --- session ----------------------------------------------------------------------------

    def _session(self) -> SftpSession:
        if self._deferred:  # nothing is reordered around the queued writes: they go out first
            deferred.send_deferred(self, sftpwrite.write_many)
        self.conn.transport()  # reconnects if the connection dropped (and bumps its generation)
        if self._sftp is not None and self._generation == self.conn.generation and not self._sftp.sock.closed:
            return self._sftp
        self._drop()
        chan = self.conn.open_channel("SFTP")
        with self.conn.bounded("starting SFTP", chan.close):
            chan.invoke_subsystem("sftp")
            sftp = SftpSession(chan)
        sftp.meter = self.conn.meter
        self._sftp, self._generation = sftp, self.conn.generation
        with self._guard("ask the SFTP server's limits", ""):
            sftp.use_limits()
        return sftp

    def _drop(self) -> None:
        """Forget the SFTP session (after a timeout its byte stream may be cut mid-packet)."""
        if self._sftp is not None:
            try:
                self._sftp.sock.close()
            except Exception:  # it is being thrown away
                pass
        self._sftp = None
        self._folds_case = None
        self._folders = {}
        self._made = set()
        self._present = set()

    def close(self) -> None:
        self._release_append()
        self._drop()

    def _release_append(self, *rels: str) -> None:
        """Close append()'s handle (only if it is one of `rels` or below one of them, when given)."""
        held = self._appending
        if held is None:
            return
        keys = ["\\".join(winpath.split(r)).casefold() for r in rels]
        if rels and not any(not k or held[0] == k or held[0].startswith(k + "\\") for k in keys):
            return
        self._appending = None
        if held[2] is self._sftp:
            self._close_quietly(held[1])

    # --- errors -------------------------------------------------------------------------------

    def _err(self, cls: type[TargetError], msg: str, rel: str, winerror: int | None = None) -> TargetError:
        return cls(msg, server=self.server, path=rel or "(SMS root)", winerror=winerror)

    @contextmanager
    def _guard(self, op: str, rel: str) -> Iterator[None]:
        try:
            yield
        except TargetError:
            raise
        except SftpStatusError as exc:
            raise self._status_error(exc, op, rel) from None
        except TimeoutError:
            self._drop()
            raise self._err(TransportTimeout, f"{op}: no answer from {self.conn.where} within "
                                              f"{self.conn.timeout:g} s", rel) from None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self._drop()
            raise self._err(ConnectionLost, f"{op}: the SSH connection to {self.conn.where} was lost "
                                            f"({exc or type(exc).__name__})", rel) from None

    def _status_error(self, exc: SftpStatusError, op: str, rel: str) -> TargetError:
        if exc.code == SFTP_NO_SUCH_FILE:
            return self._err(NotFound, "the system cannot find the file specified", rel)
        if exc.code == SFTP_PERMISSION_DENIED:
            # Windows OpenSSH reports a file held open by a running service this way too:
            # SFTP version 3 has no status for a sharing violation
            return self._err(AccessDenied, f"access is denied ({op}; on Windows also: the file is in use)", rel)
        if exc.code in (SFTP_NO_CONNECTION, SFTP_CONNECTION_LOST):
            self._drop()
            return self._err(ConnectionLost, f"{op}: the server lost its connection ({exc.text})", rel)
        if exc.code == SFTP_OP_UNSUPPORTED:
            return self._err(TargetError, f"{op}: the SFTP server does not support this ({exc.text})", rel, 50)
        if exc.code == SFTP_BAD_MESSAGE:
            return self._err(TargetError, f"{op}: the server refused the request as malformed ({exc.text}); "
                                          "a name may be too long or invalid", rel, 123)
        # SFTP_FAILURE: OpenSSH's sftp-server sends it for every errno it has no status for
        # (ENOSPC, EEXIST, ENOTEMPTY...): callers look closer where that matters
        return self._err(TargetError, f"{op}: the server reported a failure ({exc.text})", rel)

    @contextmanager
    def _writing(self, op: str, rel: str, folder: str) -> Iterator[None]:
        """_guard for writes: SFTP version 3 reports a full disk only as "Failure", so a
        generic failure is checked against the free space."""
        try:
            with self._guard(op, rel):
                yield
        except TargetError as exc:
            if type(exc) is TargetError and exc.winerror == 0 and self._sftp is not None:
                with self._guard("check the free space", rel):
                    free = self._sftp.free_bytes(folder)
                if free is not None and free < LOW_SPACE:
                    raise self._err(DiskFull, f"there is not enough space on the disk ({op}; {free:,} bytes "
                                              "free on the server)", rel) from None
            raise

    def _close_quietly(self, handle: bytes) -> None:
        """Close a handle after a failure that is already being reported."""
        if self._sftp is not None:
            try:
                self._sftp.close_handle(handle)
            except Exception:
                pass

    # --- FileTransport: reading ---------------------------------------------------------------

    def stat(self, path: str) -> FileStat | None:
        try:
            found = self._find(path, stored=True)
        except NotFound:
            return None
        assert found.attrs is not None
        return self._stat_of(found.name, found.attrs)

    def listdir(self, path: str) -> list[FileStat]:
        found = self._find(path)
        if not found.is_dir:
            raise self._err(NotADirectory, "is a file, not a folder", path)
        with self._guard("list the folder", path):
            entries = self._entries(found.path)
        if any(st.S_ISLNK(e.st_mode or 0) for e in entries):
            self.listing_is_stat = False
        return sorted((self._stat_of(e.filename, e) for e in entries), key=lambda s: s.name.casefold())

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        found, handle = self._open_to_read(path, stored=False)
        yield from sftpbatch.read_found(self, found, handle, path, chunk)

    def _open_to_read(self, path: str, stored: bool) -> tuple[_Found, bytes]:
        """The file looked up and opened: the exact name's LSTAT and OPEN go together (one round
        trip); anything that does not settle (a miss: another case or no file; a link; a folder)
        is looked up as _find looks, and then opened."""
        parts = self._parts(path)
        with self._guard("open the file for reading", path):
            sftp = self._session()
            remote, name = self._spelled(parts)
            attrs, handle = sftp.lstat_and_open(remote, SFTP_FLAG_READ)
            if (handle is not None and attrs is not None and parts and not st.S_ISLNK(attrs.st_mode or 0)
                    and not st.S_ISDIR(attrs.st_mode or 0)):
                if stored and self.folds_case():
                    try:
                        name = self._names(parts[:-1], self._join(parts[:-1]), name).get(name.casefold(), name)
                    except BaseException:
                        self._close_quietly(handle)
                        raise
                return _Found(remote, attrs, name), handle
            if handle is not None:
                sftp.close_later(handle)
        found = self._find(path, stored=stored, asked=attrs is None and remote == self._join(parts))
        if found.is_dir:
            raise self._err(AccessDenied, "is a folder, not a file", path)
        with self._guard("open the file for reading", path):
            return found, self._session().open_handle(found.path, SFTP_FLAG_READ)

    def sha256(self, path: str) -> str:
        # OpenSSH has no hashing extension (check-file is not implemented): the file is
        # streamed through deployer, pipelined
        return sha256_of(self.read_chunks(path))

    # many files in the round trips of one: stat_sha256() of each, small files' contents
    stat_sha256_many = sftpbatch.stat_sha256_many
    read_many = sftpbatch.read_many

    def stat_sha256(self, path: str) -> tuple[FileStat | None, str | None]:
        """stat() and sha256() with one lookup and open for both (read_file asks for both)."""
        try:
            found, handle = self._open_to_read(path, stored=True)
        except NotFound:
            return None, None
        except AccessDenied:
            found = self._find(path, stored=True)  # a folder is (its stat, None); anything else raises again
            if not found.is_dir:
                raise
            assert found.attrs is not None
            return self._stat_of(found.name, found.attrs), None
        assert found.attrs is not None
        return self._stat_of(found.name, found.attrs), sha256_of(sftpbatch.read_found(self, found, handle, path, CHUNK))

    # --- FileTransport: writing ---------------------------------------------------------------

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        """Inside deferred_writes() queued (its chunks read when it is sent; 0 returned)."""
        if deferred.queue(self, path, chunks, exclusive):
            return 0
        return self._write_file(path, chunks, exclusive=exclusive)

    @_changes_folders()
    def _write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        found = self._find(path, want_parent=True)
        if found.attrs is not None:
            if exclusive:
                raise self._err(AlreadyExists, "the file exists", path)
            if found.is_dir:
                raise self._err(AccessDenied, "is a folder, not a file", path)
            self._refuse_readonly(found, path)
        flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | (SFTP_FLAG_EXCL if exclusive else SFTP_FLAG_TRUNC)
        handle = self._create(found, flags, path)
        with self._writing("write the file", path, _folder(found.path)):
            try:
                written = self._session().write_pipelined(handle, chunks)
                self._session().fsync(handle)
            except BaseException:
                self._close_quietly(handle)
                raise
            sftp = self._session()
            if sftp.offers("fsync@openssh.com"):
                sftp.close_later(handle)  # the data is on disk already
            else:
                sftp.close_handle(handle)  # without fsync, CLOSE is the promise SFTP version 3 makes
        return written

    def _create(self, found: _Found, flags: int, rel: str) -> bytes:
        try:
            with self._writing("create the file", rel, _folder(found.path)):
                return self._session().open_handle(found.path, flags)
        except TargetError as exc:
            # EEXIST is a plain "Failure" in SFTP version 3: look
            if type(exc) is TargetError and flags & SFTP_FLAG_EXCL and self._lstat_quiet(found.path) is not None:
                raise self._err(AlreadyExists, "the file exists (created meanwhile)", rel) from None
            raise

    @_changes_folders()
    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """One WRITE (+ fsync when durable) a record, one round trip, on a handle kept open
        between appends to the same file (the run's journal); closed before deployer changes
        that file or a folder above it, and with the transport."""
        key = "\\".join(winpath.split(path)).casefold()
        held = self._appending
        if held is not None and (held[0] != key or held[2] is not self._session()):
            self._release_append()
            held = None
        if held is None:
            found = self._find(path, want_parent=True)
            if found.is_dir:
                raise self._err(AccessDenied, "is a folder, not a file", path)
            handle = self._create(found, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_APPEND, path)
            with self._writing("append to the file", path, _folder(found.path)):
                try:
                    # OpenSSH writes at the end of a handle opened to append whatever the offset;
                    # a server that does not gets the current end of the file
                    end = int(self._session().fstat_handle(handle).st_size or 0)
                except BaseException:
                    self._close_quietly(handle)
                    raise
            held = (key, handle, self._session(), end, found.path)
        key, handle, session, offset, remote = held
        self._appending = None
        with self._writing("append to the file", path, _folder(remote)):
            try:
                # the journal's write-ahead records must survive a crash of the server: fsync when durable
                self._session().append_record(handle, data, offset, durable)
            except BaseException:
                self._close_quietly(handle)
                raise
        self._appending = (key, handle, session, offset + len(data), remote)

    @_changes_folders(added=(1,))
    def copy(self, src: str, dst: str) -> None:
        s, d = sftpmany.find_pair(self, src, dst)
        sftpmany.check_copy(self, s, d, src, dst)
        assert s.attrs is not None and not isinstance(d, TargetError)
        with self._guard("open the file to copy", src):
            h_src = self._session().open_handle(s.path, SFTP_FLAG_READ)
        src_open = True
        try:
            h_dst = self._create(d, SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_TRUNC, dst)
            with self._writing("copy the file", dst, _folder(d.path)):
                sftp = self._session()
                try:
                    if sftp.offers("copy-data"):
                        sftp.copy_data(h_src, h_dst, durable=True)  # on the server: nothing crosses the network
                    else:
                        # Plain SFTP cannot copy on the server. A copy command over the same
                        # connection would need to know the server's shell (cmd.exe, PowerShell
                        # or sh), turn the SFTP root into a drive path and quote names for that
                        # shell; streaming through deployer is slower but says what it does.
                        size = int(sftp.fstat_handle(h_src).st_size or 0)
                        sftp.write_pipelined(h_dst, sftp.read_pipelined(h_src, size, 1 << 20))
                        sftp.fsync(h_dst)
                except BaseException:
                    self._close_quietly(h_dst)
                    raise
                # CopyFile keeps the last write time: so does this (set after the copy's CLOSE,
                # which without fsync is SFTP version 3's promise that the data is written)
                src_open = False  # its CLOSE goes out with these
                sftp.finish_copy(h_dst, d.path, (int(s.attrs.st_atime or s.attrs.st_mtime or 0),
                                                 int(s.attrs.st_mtime or 0)), h_src)
        finally:
            if src_open:
                self._close_quietly(h_src)

    @_changes_folders(added=(1,), removed=(0,))
    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        s, d = sftpmany.find_pair(self, src, dst)
        if isinstance(d, TargetError):
            raise d
        same = d.path == s.path or (self.folds_case() and d.path.casefold() == s.path.casefold())
        if d.attrs is not None and same:
            # the same entry (the names differ only in case): nothing to move. Renaming a file
            # onto itself would even delete it on older Windows OpenSSH (Win32-OpenSSH #1849)
            return
        if d.attrs is None:
            with self._guard("rename", dst):
                # plain RENAME: OpenSSH refuses to overwrite a target created meanwhile
                self._session().rename(s.path, d.path)
            return
        if not replace:
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", dst)
        if d.is_dir:
            raise self._err(AccessDenied, "cannot replace a folder", dst)
        self._refuse_readonly(d, dst)
        with self._guard("replace", dst):
            if self._session().offers("posix-rename@openssh.com"):
                # rename(2) on POSIX; on Windows OpenSSH MoveFileEx(MOVEFILE_REPLACE_EXISTING),
                # which replaces in one step and refuses a file a running service has loaded.
                # Builds before PowerShell/openssh-portable#438 (2020; Windows 10's in-box 7.7)
                # delete the target first and then rename: not atomic, though a file in use is
                # still refused. deployer's backup of the file covers that window.
                self._session().posix_rename(s.path, d.path)
            else:
                sftpmany.replace_in_two_steps(self, s.path, d.path)

    @_changes_folders(added=(), removed=(0,))
    def remove(self, path: str) -> None:
        found = self._find(path)
        if found.is_dir:
            raise self._err(AccessDenied, "is a folder; use rmdir", path)
        self._refuse_readonly(found, path)
        with self._guard("delete the file", path):
            self._session().remove(found.path)

    def makedirs(self, path: str) -> None:
        sftpmany.makedirs(self, path)  # every folder on the way in one stat_many, once a session

    # many files or folders in the round trips of one (sftpmany.py)
    copy_many = sftpmany.copy_many
    rename_many = sftpmany.rename_many
    listdir_many = sftpmany.listdir_many

    @_changes_folders(added=(), removed=(0,))
    def rmdir(self, path: str) -> None:
        found = self._find(path)
        if not found.is_dir:
            raise self._err(NotADirectory, "is a file, not a folder", path)
        try:
            with self._guard("remove the folder", path):
                self._session().rmdir(found.path)
        except TargetError as exc:
            if type(exc) is TargetError:  # ENOTEMPTY is a plain "Failure" in SFTP version 3
                with self._guard("list the folder", path):
                    left = self._entries(found.path)
                if left:
                    raise self._err(TargetError, f"the directory is not empty ({len(left)} entries)", path,
                                    145) from None
            raise

    @_changes_folders()
    def mkdir(self, path: str) -> None:
        found = self._find(path, want_parent=True)
        if found.attrs is not None:
            raise self._err(AlreadyExists, "cannot create a file when that file already exists", path)
        try:
            with self._guard("create the folder", path):
                self._session().mkdir(found.path)
        except TargetError as exc:
            if type(exc) is TargetError and self._lstat_quiet(found.path) is not None:
                raise self._err(AlreadyExists, "cannot create a file when that file already exists", path) from None
            raise
        # made empty just now: no need to list it, and no one else puts names in it (a run's backups)
        self._folders[_key(self._parts(path))] = (found.path, {})
        self._made.add(_key(self._parts(path)))

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        if deferred.queue_mtime(self, path, mtime_ns):
            return  # sent after the queued file's last write
        found = self._find(path)
        self._refuse_readonly(found, path)
        seconds = mtime_ns // 10**9  # SFTP version 3 carries whole seconds
        if not 0 <= seconds < 2**32:
            raise self._err(TargetError, "SFTP sets write times from 1970 to 2106 only", path, 87)
        assert found.attrs is not None
        with self._guard("set the write time", path):
            self._session().utime(found.path, (int(found.attrs.st_atime or seconds), seconds))
