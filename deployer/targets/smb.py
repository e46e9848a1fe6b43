"""FileTransport over SMB 2/3 (smbprotocol): the server's SMS root is its share SMS_SHRx.

Each operation is a handful of SMB requests, mostly one compound (open, act, close in one
round trip), run by the server's SmbLink (smbconn.py): bounded by the inventory's `timeout`,
NTSTATUS turned into the Windows errors of base.py. Semantics follow the server's (Windows, or
Samba for Windows clients): names are matched case-insensitively and keep their case.

Share access is chosen as Windows programs do: reads and attribute changes let everyone else
read, write and delete (`rwd`), so a file that a service has open can still be read and
backed up; writes let others only read; and a file someone else holds without sharing
write or delete cannot be replaced, overwritten or deleted (SharingViolation).

Where Samba is not Windows, the transport keeps Windows' answer: Samba lets a rename replace
a file that another client holds open, so rename(replace=True) checks the destination first
(see _check_replaceable).
"""

from __future__ import annotations

import hashlib
import struct
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import (
    FileAttributes,
    FileBasicInformation,
    FileDispositionInformation,
    FileInformationClass,
    FileRenameInformation,
)
from smbprotocol.ioctl import (
    CtlCode,
    IOCTLFlags,
    SMB2IOCTLRequest,
    SMB2IOCTLResponse,
    SMB2SrvCopyChunk,
    SMB2SrvCopyChunkCopy,
    SMB2SrvCopyChunkResponse,
    SMB2SrvRequestResumeKey,
)
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask as Dir,
    FilePipePrinterAccessMask as File,
    ImpersonationLevel,
    Open,
    QueryDirectoryFlags,
    ShareAccess,
    SMB2QueryDirectoryResponse,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2ReadResponse,
    SMB2SetInfoRequest,
    SMB2WriteResponse,
)
from smbprotocol.tree import TreeConnect

from .. import winpath
from ..model.inventory import SmbFiles as SmbFilesSpec
from ..secrets import SecretSource
from .base import (
    CHUNK,
    AccessDenied,
    ConnectionLost,
    FileStat,
    NotADirectory,
    PathNotFound,
    TargetError,
    sha256_of,
)
from .connect import ConnectContext, register_files
from .smbknown import KnownContent, version_of
from .smbconn import END_OF_FILE, IO_SIZE, MISSING, NOT_A_DIRECTORY, SmbLink, SmbOptions, status_error

EPOCH_FILETIME = 116_444_736_000_000_000  # 1970-01-01 as a FILETIME (100 ns steps since 1601)
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
COPY_CHUNK = 1 << 20  # FSCTL_SRV_COPYCHUNK limits Windows and Samba apply: 1 MiB a chunk,
COPY_CHUNKS = 16  # 16 chunks a request (MS-SMB2 3.3.3: ServerSideCopyMaxChunkCount / MaxDataSize)
COPY_REQUESTS = 16  # copy requests in flight
_DIR_ENTRY = struct.Struct("<IIqqqqqqII")  # FILE_DIRECTORY_INFORMATION (MS-FSCC 2.4.10) up to the name
_WILDCARDS = set('*?<>"')
APPEND_INLINE = 1 << 20  # a record up to this size goes in one WRITE, compounded with its FLUSH

Action = tuple[Any, Callable[[Any], Any]]


def filetime_to_ns(ft: int) -> int:
    return (ft - EPOCH_FILETIME) * 100


def ns_to_filetime(ns: int) -> int:
    return ns // 100 + EPOCH_FILETIME


def _norm(path: str) -> str:
    return "\\".join(winpath.split(path))


@dataclass
class _Held:
    """The handle append() keeps open on the file it appends to (the run's journal)."""

    key: str  # casefolded RelPath
    fh: Open
    generation: int  # the session it was opened on
    offset: int  # where the next record goes


class SmbFileTransport:
    """FileTransport rooted at one share of an SMB server."""

    def __init__(self, server: str, link: SmbLink, share: str, *, timeout: float | None = None,
                 owns_link: bool = False):
        self.server = server
        self.link = link
        self.share = share
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self._appending: _Held | None = None  # see append()
        self.known = KnownContent()  # see sha256() and smbknown.py

    def __repr__(self) -> str:
        return f"SmbFileTransport({self.server}, \\\\{self.link.options.host}\\{self.share})"

    # --- plumbing ---------------------------------------------------------------------------

    def _op(self, what: str, path: str | None = None) -> AbstractContextManager[SmbLink]:
        return self.link.op(what, path, self.timeout, server=self.server)

    def _tree(self) -> TreeConnect:
        return self.link.tree(self.share)

    def _fail(self, status: int, what: str, path: str, **kw: Any) -> TargetError:
        return status_error(status, what, server=self.server, path=path, **kw)

    def _check(self, results: list[Any], what: str, path: str, **kw: Any) -> list[Any]:
        """Raise the first status error of a compound (later requests fail with the same one)."""
        for r in results:
            if isinstance(r, SMBResponseException):
                raise self._fail(r.status, what, path, **kw)
        return results

    @staticmethod
    def _create(fh: Open, access: int, share: int, disposition: int, options: int, attributes: int = 0) -> Action:
        return fh.create(ImpersonationLevel.Impersonation, access | File.SYNCHRONIZE, attributes, share, disposition,
                         options, send=False)

    def _receive(self, request: Any) -> Any:
        return self.link.connection.receive(request)

    def _set_info(self, fh: Open, info: Any) -> Action:
        req = SMB2SetInfoRequest()
        req["info_type"] = info.INFO_TYPE
        req["file_info_class"] = info.INFO_CLASS
        req["file_id"] = fh.file_id
        req["buffer"] = info
        return req, self._receive

    def _query_basic(self, fh: Open) -> Action:
        req = SMB2QueryInfoRequest()
        req["info_type"] = FileBasicInformation.INFO_TYPE
        req["file_info_class"] = FileBasicInformation.INFO_CLASS
        req["file_id"] = fh.file_id
        req["output_buffer_length"] = len(FileBasicInformation())

        def unpack(request: Any) -> FileBasicInformation:
            resp = SMB2QueryInfoResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            return resp.parse_buffer(FileBasicInformation)

        return req, unpack

    def _query_dir(self, fh: Open, pattern: str, flags: int = 0) -> Action:
        # FILE_DIRECTORY_INFORMATION parsed here rather than by smbprotocol, whose DateTimeField
        # rounds FILETIMEs to microseconds: write times must round-trip exactly.
        msg, _ = fh.query_directory(pattern, FileInformationClass.FILE_DIRECTORY_INFORMATION, flags, send=False)

        def unpack(request: Any) -> list[FileStat]:
            resp = SMB2QueryDirectoryResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            return _dir_entries(resp["buffer"].get_value())

        return msg, unpack

    def _ioctl(self, fh: Open, code: int, data: bytes | Any = b"", output: int = 0) -> Action:
        req = SMB2IOCTLRequest()
        req["ctl_code"] = code
        req["file_id"] = fh.file_id
        req["max_output_response"] = output
        req["flags"] = IOCTLFlags.SMB2_0_IOCTL_IS_FSCTL
        req["buffer"] = data

        def unpack(request: Any) -> bytes:
            resp = SMB2IOCTLResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            return resp["buffer"].get_value()

        return req, unpack

    def _finish(self, tree: TreeConnect, fh: Open, what: str, rel: str, *, before: Sequence[Action] = (),
                also: Sequence[Open] = (), flush: bool = True, attributes: bool = False) -> None:
        """Flush (durable on return: the server commits the data to disk first), then close.

        FLUSH comes last in its compound: a long one goes asynchronous, which Samba allows
        only to the last request of a compound (MS-SMB2 3.3.5.2.7, note <206>).
        """
        if flush or before:
            self._check(self.link.compound(tree, [*before, *([fh.flush(send=False)] if flush else [])],
                                           related=False), what, rel)
        closes = [fh.close(get_attributes=attributes, send=False), *(o.close(send=False) for o in also)]
        self._check(self.link.compound(tree, closes, related=False), what, rel)

    def _close_quietly(self, fh: Open, generation: int) -> None:
        """Close a handle after a failure, if the session that opened it is still there (never
        reconnecting for it: after a timeout that would mean waiting for a hung server again)."""
        if not fh.connected or not self.link.is_current(generation):
            return
        try:
            with self._op("close", fh.file_name):
                self.link.compound(self._tree(), [fh.close(send=False)])
        except TargetError:
            pass  # the original error matters more; the server drops the handle with the session

    # --- reading ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Log on and connect to the share now, so that a wrong password or share shows up first."""
        with self._op(f"connect to share {self.share}"):
            self._tree()

    def stat(self, path: str) -> FileStat | None:
        rel = _norm(path)
        with self._op("stat", rel):
            tree = self._tree()
            if not rel:
                fh = Open(tree, "")
                _, basic, _ = self._check(self.link.compound(tree, [
                    self._create(fh, File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                                 CreateOptions.FILE_DIRECTORY_FILE),
                    self._query_basic(fh), fh.close(send=False)]), "stat", rel)
                return FileStat("", 0, filetime_to_ns(basic["last_write_time"].get_value()), True, False)
            parent, _, name = rel.rpartition("\\")
            if _WILDCARDS & set(name):
                raise TargetError(f"stat: {name!r} is not a valid file name", server=self.server, path=rel,
                                  winerror=123)
            fh = Open(tree, parent)
            opened, found, _ = self.link.compound(tree, [
                self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                self._query_dir(fh, name, QueryDirectoryFlags.SMB2_RESTART_SCANS
                                | QueryDirectoryFlags.SMB2_RETURN_SINGLE_ENTRY),
                fh.close(send=False)])
        for r in (opened, found):
            if isinstance(r, SMBResponseException):
                if r.status in MISSING:
                    return None
                raise self._fail(r.status, "stat", rel)
        return found[0] if found else None

    def listdir(self, path: str) -> list[FileStat]:
        rel = _norm(path)
        not_dir = {NOT_A_DIRECTORY: (NotADirectory, "is a file, not a folder")}
        with self._op("list", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            opened, first = self.link.compound(tree, [
                self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                self._query_dir(fh, "*", QueryDirectoryFlags.SMB2_RESTART_SCANS)])
            if isinstance(opened, SMBResponseException):
                raise self._fail(opened.status, "list", rel, override=not_dir)
            entries: list[FileStat] = []
            batch = first
            generation = self.link.generation
            try:
                while not isinstance(batch, SMBResponseException):
                    entries.extend(batch)
                    (batch,) = self.link.compound(tree, [self._query_dir(fh, "*")], related=False)
                if batch.status not in (0x80000006, 0xC000000F):  # NO_MORE_FILES, NO_SUCH_FILE
                    raise self._fail(batch.status, "list", rel)
                self.link.compound(tree, [fh.close(send=False)], related=False)
            except BaseException:
                self._close_quietly(fh, generation)
                raise
        return sorted((e for e in entries if e.name not in (".", "..")), key=lambda e: e.name.casefold())

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes. Open, the first READ (up to IO_SIZE) and close go in one compound: one
        round trip for a file of that size or less (every file a hotfix names). A larger file is
        opened again for the rest, several READs in flight."""
        rel = _norm(path)
        with self._op("read", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            first = min(IO_SIZE, self.link.connection.max_read_size)
            opened, data, _ = self.link.compound(tree, [
                self._create(fh, File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._read(fh, 0, first), fh.close(send=False)])
            if isinstance(opened, SMBResponseException):
                raise self._fail(opened.status, "read", rel)
            if isinstance(data, SMBResponseException):
                if data.status != END_OF_FILE:
                    raise self._fail(data.status, "read", rel)
                data = b""
            if len(data) < first:  # the whole file: its content as of the version the CREATE reported
                self.known.remember(rel, version_of(fh), hashlib.sha256(data).hexdigest(), wrote=False)
        for i in range(0, len(data), chunk):
            yield data[i:i + chunk]
        if len(data) == first:  # maybe more: the rest through a handle of its own
            yield from self._read_rest(rel, first, chunk)

    def _read(self, fh: Open, offset: int, length: int) -> Action:
        msg, _ = fh.read(offset, length, send=False)

        def unpack(request: Any) -> bytes:
            resp = SMB2ReadResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            got = resp["buffer"].get_value()
            self.link.meter.read(len(got), self.server)
            return got

        return msg, unpack

    def _read_rest(self, rel: str, offset: int, chunk: int) -> Iterator[bytes]:
        with self._op("read", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            self._check(self.link.compound(tree, [
                self._create(fh, File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)]), "read", rel)
            generation = self.link.generation
        reads = self.link.read_requests(tree, fh, fh.end_of_file, chunk, start=offset)
        done = False
        try:
            while True:
                # each answer has its own deadline; the time the caller spends between chunks is its own
                with self._op("read", rel):
                    if self.link.generation != generation:
                        raise ConnectionLost("read: the connection was lost while reading", server=self.server,
                                             path=rel)
                    receive = next(reads, None)
                    if receive is None:
                        break
                    data = receive()
                if data:
                    yield data
            with self._op("read", rel):
                self.link.compound(tree, [fh.close(send=False)])
            done = True
        finally:
            if not done:  # the caller stopped early, or the server failed us
                try:
                    if self.link.is_current(generation):
                        with self._op("read", rel):
                            reads.close()  # receives the answers still in flight
                    reads.close()
                except TargetError:
                    pass
                self._close_quietly(fh, generation)

    def sha256(self, path: str) -> str:
        """From what this session read or wrote of the file, when the server says it is that
        version still (one small compound, no data: see smbknown.py); else read and hashed."""
        rel = _norm(path)
        if self.known.might_know(rel):
            found = self.known.get(rel, self._version(rel))
            if found is not None:
                return found.sha256
        return sha256_of(self.read_chunks(path))

    def _version(self, rel: str) -> Any:
        """The file's version now (None if it cannot be opened: the read then says why)."""
        with self._op("stat", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            opened, _ = self.link.compound(tree, [
                self._create(fh, File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                             CreateOptions.FILE_NON_DIRECTORY_FILE), fh.close(send=False)])
        return None if isinstance(opened, SMBResponseException) else version_of(fh)

    @staticmethod
    def _noting(fh: Open, seen: list[Any], create: Action) -> Action:
        """The CREATE, noting the version it reports in `seen` (a CLOSE later in the compound
        overwrites the handle's attributes with the version after)."""
        msg, unpack = create

        def noted(request: Any) -> Any:
            out = unpack(request)
            seen.append(version_of(fh))
            return out

        return msg, noted

    def _protected(self, tree: TreeConnect) -> bool:
        """Whether what this session sends is signed or encrypted (the bytes that arrive are the bytes sent)."""
        session = self.link.session
        return bool(session.encrypt_data or tree.encrypt_data or (session.signing_required and session.signing_key))

    # --- writing ----------------------------------------------------------------------------

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        rel = _norm(path)
        with self._op("write", rel):
            self._release_append(rel)
            tree = self._tree()
            fh = Open(tree, rel)
            self._check(self.link.compound(tree, [self._create(
                fh, File.FILE_WRITE_DATA | File.FILE_APPEND_DATA | File.FILE_WRITE_ATTRIBUTES
                | File.FILE_READ_ATTRIBUTES, ShareAccess.FILE_SHARE_READ,
                CreateDisposition.FILE_CREATE if exclusive else CreateDisposition.FILE_OVERWRITE_IF,
                CreateOptions.FILE_NON_DIRECTORY_FILE, FileAttributes.FILE_ATTRIBUTE_ARCHIVE)]), "write", rel)
            generation = self.link.generation
            self.known.forget(rel)
            digest = hashlib.sha256()

            def hashed() -> Iterator[bytes]:
                for c in chunks:
                    digest.update(c)
                    yield c
            try:
                written = self.link.write_stream(tree, fh, hashed())
                self._finish(tree, fh, "write", rel, attributes=True)
            except BaseException:
                self._close_quietly(fh, generation)
                raise
            if self._protected(tree):  # counted, flushed and signed: see smbknown.py
                self.known.remember(rel, version_of(fh), digest.hexdigest(), wrote=True)
        return written

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """WRITE, and FLUSH when durable, in one compound on a handle kept open between appends
        (the journal's): one round trip a record. The handle is opened by the first append (one
        more round trip), closed before anything else of deployer's renames, replaces, removes or
        truncates that file or a folder above it, and with the transport."""
        rel = _norm(path)
        self.known.forget(rel)
        with self._op("append", rel):
            tree = self._tree()
            held = self._appending
            if held is not None and (held.key != rel.casefold() or not self.link.is_current(held.generation)):
                self._release_append()
                held = None
            if held is None:
                fh = Open(tree, rel)
                self._check(self.link.compound(tree, [self._create(
                    fh, File.FILE_WRITE_DATA | File.FILE_APPEND_DATA | File.FILE_READ_ATTRIBUTES,
                    ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE,
                    FileAttributes.FILE_ATTRIBUTE_ARCHIVE)]), "append", rel)
                held = self._appending = _Held(rel.casefold(), fh, self.link.generation, fh.end_of_file)
            fh = held.fh
            try:
                if len(data) <= APPEND_INLINE:
                    write, _ = fh.write(data, held.offset, send=False)
                    self._check(self.link.compound(tree, [(write, self._written(len(data), rel)),
                                                          *([fh.flush(send=False)] if durable else [])]),
                                "append", rel)
                else:
                    self.link.write_stream(tree, fh, [data], offset=held.offset)
                    if durable:
                        self._check(self.link.compound(tree, [fh.flush(send=False)]), "append", rel)
                held.offset += len(data)
            except BaseException:
                self._appending = None
                self._close_quietly(fh, held.generation)
                raise

    def _written(self, expected: int, rel: str) -> Callable[[Any], int]:
        def unpack(request: Any) -> int:
            resp = SMB2WriteResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            count = resp["count"].get_value()
            if count != expected:
                raise TargetError(f"the server wrote {count} of {expected} bytes", server=self.server, path=rel)
            self.link.meter.wrote(count, self.server)
            return count
        return unpack

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

    def copy(self, src: str, dst: str) -> None:
        """A server-side copy (FSCTL_SRV_COPYCHUNK_WRITE): the data never leaves the server.

        Done here rather than with smbclient.copyfile, which opens the source sharing read only
        (so a file that another program has open for writing could not be backed up), leaves
        the copy with the time of copying, and waits for the server without a deadline.
        """
        s_rel, d_rel = _norm(src), _norm(dst)
        if s_rel.casefold() == d_rel.casefold():  # opening the target would truncate the source
            raise TargetError("copy: the source and the destination are the same file", server=self.server,
                              path=s_rel)
        with self._op("copy", s_rel):
            self._release_append(d_rel)
            tree = self._tree()
            s = Open(tree, s_rel)
            _, basic, key = self._check(self.link.compound(tree, [
                self._create(s, File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._query_basic(s),
                self._ioctl(s, CtlCode.FSCTL_SRV_REQUEST_RESUME_KEY, output=32)]), "copy", s_rel)
            generation = self.link.generation
            try:
                resume = SMB2SrvRequestResumeKey()
                resume.unpack(key)
                content = self.known.get(s_rel, version_of(s))  # the source as this session knows it
                self.known.forget(d_rel)
                d = self._copy_into(tree, resume["resume_key"].get_value(), s.end_of_file,
                                    basic["last_write_time"].get_value(), d_rel, s)
                if content is not None:  # every chunk and byte reported copied: see smbknown.py
                    self.known.remember(d_rel, version_of(d), content.sha256, wrote=content.wrote)
            except BaseException:
                self._close_quietly(s, generation)
                raise

    def _copy_into(self, tree: TreeConnect, key: bytes, size: int, write_time: int, rel: str,
                   source: Open) -> Open:
        d = Open(tree, rel)
        copies: list[SMB2SrvCopyChunkCopy] = []
        expected: list[tuple[int, int]] = []
        for start in range(0, size, COPY_CHUNK * COPY_CHUNKS):
            chunks = []
            for off in range(start, min(size, start + COPY_CHUNK * COPY_CHUNKS), COPY_CHUNK):
                c = SMB2SrvCopyChunk()
                c["source_offset"] = off
                c["target_offset"] = off
                c["length"] = min(COPY_CHUNK, size - off)
                chunks.append(c)
            copy = SMB2SrvCopyChunkCopy()
            copy["source_key"] = key
            copy["chunks"] = chunks
            copies.append(copy)
            expected.append((len(chunks), sum(c["length"].get_value() for c in chunks)))
        create = self._create(
            d, File.FILE_WRITE_DATA | File.FILE_READ_DATA | File.FILE_WRITE_ATTRIBUTES | File.FILE_READ_ATTRIBUTES,
            ShareAccess.FILE_SHARE_READ, CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE,
            FileAttributes.FILE_ATTRIBUTE_ARCHIVE)

        def ioctl(copy: SMB2SrvCopyChunkCopy) -> Action:  # built when sent: it names the handle
            return self._ioctl(d, CtlCode.FSCTL_SRV_COPYCHUNK_WRITE, copy, 12)

        # The server copies asynchronously, which Samba allows only to the last request of a
        # compound: open + first copy in one round trip, the other copies pipelined.
        answers = self._check(self.link.compound(tree, [create, *map(ioctl, copies[:1])]), "copy to", rel)[1:]
        generation = self.link.generation
        try:
            for i in range(1, len(copies), COPY_REQUESTS):
                answers += self._check(self.link.pipeline(tree, [ioctl(c) for c in copies[i:i + COPY_REQUESTS]]),
                                       "copy to", rel)
            for raw, (count, length) in zip(answers, expected):
                got = SMB2SrvCopyChunkResponse()
                got.unpack(raw)
                if got["chunks_written"].get_value() != count or got["total_bytes_written"].get_value() != length:
                    raise TargetError(f"copy to: the server copied {got['total_bytes_written'].get_value()} of "
                                      f"{length} bytes", server=self.server, path=rel)
            basic = FileBasicInformation()
            basic["last_write_time"] = write_time  # CopyFile keeps the source's write time
            self._finish(tree, d, "copy to", rel, before=[self._set_info(d, basic)], also=[source], attributes=True)
        except BaseException:
            self._close_quietly(d, generation)
            raise
        return d

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        s_rel, d_rel = _norm(src), _norm(dst)
        info = FileRenameInformation()
        info["replace_if_exists"] = replace  # one atomic step on the server, as MoveFileEx does
        info["file_name"] = d_rel
        with self._op("rename", s_rel):
            self._release_append(s_rel, d_rel)
            tree = self._tree()
            if replace:
                self._check_replaceable(tree, s_rel, d_rel)
            fh = Open(tree, s_rel)
            seen: list[Any] = []
            opened, renamed, _ = self.link.compound(tree, [
                self._noting(fh, seen, self._create(fh, File.DELETE | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                                                    CreateDisposition.FILE_OPEN, 0)),
                self._set_info(fh, info), fh.close(get_attributes=True, send=False)])
            before = seen[0] if seen else None
        self.known.forget(d_rel)
        if isinstance(renamed, SMBResponseException) or isinstance(opened, SMBResponseException):
            self.known.forget(s_rel)
        else:
            self.known.move(s_rel, d_rel, before, version_of(fh))
        if isinstance(opened, SMBResponseException):
            raise self._fail(opened.status, "rename", s_rel)
        if isinstance(renamed, SMBResponseException):
            raise self._fail(renamed.status, f"rename {s_rel} to", d_rel)

    def _check_replaceable(self, tree: TreeConnect, src: str, dst: str) -> None:
        """Refuse to replace a file someone holds open without sharing delete, as Windows does.

        Windows checks this within the rename itself. Samba checks only the handles of the
        connection that renames (rename_internals_fsp), so a file another client (a service,
        for the procedures' purposes) holds open would be replaced under it. Opening the
        destination for DELETE first makes Samba apply the share modes of every client; on
        Windows it answers what the rename would. One round trip; not atomic with the rename.

        The same open answers the other question Windows asks: NTFS refuses to replace a
        read-only file (ERROR_ACCESS_DENIED), while Samba's rename replaces it; the create
        response carries the attributes, so this costs nothing more.
        """
        fh = Open(tree, dst)
        opened, _ = self.link.compound(tree, [
            self._create(fh, File.DELETE | File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN, 0),
            fh.close(send=False)])
        if isinstance(opened, SMBResponseException):
            if opened.status not in MISSING:
                raise self._fail(opened.status, f"rename {src} to", dst)
            return
        if (fh.file_attributes or 0) & FileAttributes.FILE_ATTRIBUTE_READONLY:
            raise AccessDenied(f"rename {src} to {dst}: access is denied (the file is read-only)",
                               server=self.server, path=dst)

    def remove(self, path: str) -> None:
        self._delete(path, "remove", CreateOptions.FILE_NON_DIRECTORY_FILE, {})

    def rmdir(self, path: str) -> None:
        self._delete(path, "rmdir", CreateOptions.FILE_DIRECTORY_FILE,
                     {NOT_A_DIRECTORY: (NotADirectory, "is a file, not a folder")})

    def _delete(self, path: str, what: str, options: int, override: dict) -> None:
        rel = _norm(path)
        info = FileDispositionInformation()
        info["delete_pending"] = True
        self.known.forget(rel)
        with self._op(what, rel):
            self._release_append(rel)
            tree = self._tree()
            fh = Open(tree, rel)
            self._check(self.link.compound(tree, [
                self._create(fh, File.DELETE | File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                             options),
                self._set_info(fh, info), fh.close(send=False)]), what, rel, override=override)

    def mkdir(self, path: str) -> None:
        rel = _norm(path)
        with self._op("mkdir", rel):
            self._mkdir(rel, CreateDisposition.FILE_CREATE)

    def _mkdir(self, rel: str, disposition: int) -> None:
        tree = self._tree()
        fh = Open(tree, rel)
        self._check(self.link.compound(tree, [
            self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL, disposition,
                         CreateOptions.FILE_DIRECTORY_FILE, FileAttributes.FILE_ATTRIBUTE_DIRECTORY),
            fh.close(send=False)]), "mkdir", rel)

    def makedirs(self, path: str) -> None:
        rel = _norm(path)
        parts = winpath.split(rel)
        with self._op("makedirs", rel):
            try:
                self._mkdir(rel, CreateDisposition.FILE_OPEN_IF)  # usually all there but the last
                return
            except PathNotFound:
                pass
            for i in range(1, len(parts) + 1):
                sub = "\\".join(parts[:i])
                try:
                    self._mkdir(sub, CreateDisposition.FILE_OPEN_IF)
                except PathNotFound:
                    raise PathNotFound(f"makedirs: the system cannot find the path specified ({sub} is a file, "
                                       "not a folder)", server=self.server, path=rel) from None

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        rel = _norm(path)
        basic = FileBasicInformation()
        basic["last_write_time"] = ns_to_filetime(mtime_ns)  # 0 in the other fields: leave them as they are
        with self._op("set write time", rel):
            self._release_append(rel)
            tree = self._tree()
            fh = Open(tree, rel)
            seen: list[Any] = []
            try:
                self._check(self.link.compound(tree, [
                    self._noting(fh, seen, self._create(fh, File.FILE_WRITE_ATTRIBUTES | File.FILE_READ_ATTRIBUTES,
                                                        SHARE_ALL, CreateDisposition.FILE_OPEN, 0)),
                    self._set_info(fh, basic), fh.close(get_attributes=True, send=False)]), "set write time", rel)
            except BaseException:
                self.known.forget(rel)
                raise
            self.known.saw_times_set(version_of(fh))
            self.known.move(rel, rel, seen[0] if seen else None, version_of(fh))

    def close(self) -> None:
        if self._appending is not None:
            try:
                with self._op("close", self._appending.key):
                    self._release_append()
            except TargetError:
                self._appending = None  # the server drops the handle with the session
        if self._owns_link:
            self.link.close()


def _dir_entries(buf: bytes) -> list[FileStat]:
    out = []
    pos = 0
    while pos + _DIR_ENTRY.size <= len(buf):
        (next_off, _index, _created, _accessed, written, _changed, eof, _alloc, attrs,
         name_len) = _DIR_ENTRY.unpack_from(buf, pos)
        name = buf[pos + _DIR_ENTRY.size:pos + _DIR_ENTRY.size + name_len].decode("utf-16-le")
        is_dir = bool(attrs & FileAttributes.FILE_ATTRIBUTE_DIRECTORY)
        out.append(FileStat(name, 0 if is_dir else eof, filetime_to_ns(written), is_dir,
                            bool(attrs & FileAttributes.FILE_ATTRIBUTE_READONLY)))
        if not next_off:
            break
        pos += next_off
    return out


# --- from the inventory ------------------------------------------------------------------


def shared_link(ctx: ConnectContext, options: SmbOptions, password: SecretSource, timeout: float) -> SmbLink:
    return ctx.session(SmbLink, options, password, timeout)


def options_of(spec: SmbFilesSpec) -> SmbOptions:
    return SmbOptions(spec.host, spec.port, spec.username, spec.domain, spec.require_signing, spec.encrypt)


@register_files("smb")
def _smb_files(ctx: ConnectContext) -> SmbFileTransport:
    spec = ctx.server.files
    assert isinstance(spec, SmbFilesSpec)
    link = shared_link(ctx, options_of(spec), spec.password, spec.timeout)
    files = SmbFileTransport(ctx.name, link, spec.share, timeout=spec.timeout)
    files.connect()
    return files
