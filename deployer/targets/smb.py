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
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import (
    FileAttributes,
    FileBasicInformation,
    FileDispositionInformation,
    FileLinkInformation,
    FileRenameInformation,
)
from smbprotocol.ioctl import (
    CtlCode,
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
    Open,
    ShareAccess,
)
from smbprotocol.tree import TreeConnect

from ..model.inventory import SmbFiles as SmbFilesSpec
from . import smbbatch, smbpipe
from .base import AccessDenied, FileStat, NotADirectory, TargetError
from .connect import ConnectContext, register_files
from .smbbase import (  # noqa: F401 - filetime_to_ns, ns_to_filetime: this module's names before the split
    APPEND_INLINE,
    COPY_CHUNK,
    COPY_CHUNKS,
    COPY_REQUESTS,
    SHARE_ALL,
    Action,
    _Held,
    _norm,
    filetime_to_ns,
    ns_to_filetime,
)
from .smbconn import MISSING, NOT_A_DIRECTORY, SmbLink, SmbOptions
from .smbknown import version_of
from .smbread import SmbReads
from .smbshare import files_from_inventory


class SmbFileTransport(SmbReads):
    """FileTransport rooted at one share of an SMB server."""

    _deferred: list[smbpipe.Pending] | None = None  # see deferred_writes()

    @contextmanager
    def deferred_writes(self) -> Iterator[None]:
        """write_file calls of the block (and set_mtime of a file written in it) are queued and
        sent together on leaving it, in the round trips of one file (smbpipe.py); the first
        error is raised then. Any other request sends the queue first; a block left by an
        exception sends nothing of it."""
        outer = self._deferred is not None
        if not outer:
            self._deferred = []
        try:
            yield
            if not outer:
                self._send_deferred()
        finally:
            if not outer:
                self._deferred = None

    def _send_deferred(self) -> None:
        queued, self._deferred = self._deferred, []  # only called with a queue open
        if queued:
            smbpipe.write_many(self, queued)

    def _op(self, what: str, path: str | None = None):
        if self._deferred:  # nothing is reordered around the queued writes
            self._send_deferred()
        return super()._op(what, path)

    def write_many(self, items: list[smbpipe.Pending]) -> list[int]:
        """Many small files written (and given their write times) in two round trips (smbpipe.py)."""
        return smbpipe.write_many(self, items)

    def hard_link_many(self, pairs: list[tuple[str, str]]) -> list[TargetError | None]:
        """hard_link() of many files in one round trip (smbpipe.py); each pair's error or None."""
        return smbpipe.hard_link_many(self, pairs)

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        """A file that fits one WRITE goes in one compound with its open and flush, then a close:
        two round trips, not four (smbpipe.py); a larger one is streamed. Inside deferred_writes()
        it is queued (its chunks read when it is sent; 0 returned)."""
        item = smbpipe.Pending(_norm(path), chunks, exclusive)
        if self._deferred is not None:
            self.known.forget(item.rel)
            self._deferred.append(item)
            return 0
        return smbpipe.write_many(self, [item])[0]

    def _write_streamed(self, rel: str, chunks: Iterable[bytes], exclusive: bool) -> int:
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

    def copy_many(self, pairs: list[tuple[str, str]], mtimes: list[int | None] | None = None
                  ) -> list[TargetError | None]:
        """copy() of many files in the round trips of one (smbbatch.py); each pair's error or None.
        `mtimes`: each copy's write time (ns) instead of its source's, as set_mtime would set it."""
        return smbbatch.copy_many(self, pairs, mtimes)

    def stat_sha256_many(self, paths: list[str], sizes: list[int | None] | None = None
                         ) -> list[tuple[FileStat | None, str | None]]:
        """stat_sha256() of many files in the round trips of one (smbbatch.py)."""
        return smbbatch.stat_sha256_many(self, paths, sizes)

    def read_many(self, paths: list[str], limit: int) -> list[bytes | None]:
        """The content of many small files in the round trips of one (smbbatch.py); None for one
        missing, a folder, or larger than `limit`."""
        return smbbatch.read_many(self, paths, limit)

    def listdir_many(self, paths: list[str]) -> list[list[FileStat] | TargetError]:
        """listdir() of many folders in one round trip (smbbatch.py); each one's entries or error."""
        return smbbatch.listdir_many(self, paths)

    def listdir_many_together(self, parts: list[tuple[Any, list[str]]]) -> list[list[list[FileStat] | TargetError]]:
        """listdir_many() of several transports that share this one's session (`link`), all in one
        round trip (smbbatch.listdir_together); each part's listings or errors."""
        return smbbatch.listdir_together(parts)

    def rename_many(self, pairs: list[tuple[str, str]], *, replace: bool = False) -> list[TargetError | None]:
        """rename() of many files in the round trips of one (smbbatch.py); each pair's error or None."""
        return smbbatch.rename_many(self, pairs, replace=replace)

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

    def hard_link(self, src: str, dst: str) -> None:
        """dst becomes a second name of the file src (FileLinkInformation, as CreateHardLink does):
        one round trip and no bytes, for the backup of a file that will be swapped by a rename
        (Runner.backup). The source is opened for its attributes only, sharing everything, so a
        file a service has open (its running image) can be linked, as on NTFS."""
        s_rel, d_rel = _norm(src), _norm(dst)
        info = FileLinkInformation()
        info["replace_if_exists"] = False
        info["file_name"] = d_rel
        self.known.forget(d_rel)
        with self._op("link", s_rel):
            self._release_append(d_rel)
            tree = self._tree()
            fh = Open(tree, s_rel)
            opened, linked, _ = self.link.compound(tree, [
                self._create(fh, File.FILE_WRITE_ATTRIBUTES | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._set_info(fh, info), fh.close(send=False)])
        if isinstance(opened, SMBResponseException):
            raise self._fail(opened.status, "link", s_rel)
        if isinstance(linked, SMBResponseException):
            raise self._fail(linked.status, f"link {s_rel} as", d_rel)

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        s_rel, d_rel = _norm(src), _norm(dst)
        info = FileRenameInformation()
        info["replace_if_exists"] = replace  # one atomic step on the server, as MoveFileEx does
        info["file_name"] = d_rel
        with self._op("rename", s_rel):
            self._release_append(s_rel, d_rel)
            self._forget_made(s_rel, d_rel)
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
        self._forget_made(rel)
        with self._op(what, rel):
            self._release_append(rel)
            tree = self._tree()
            fh = Open(tree, rel)
            self._check(self.link.compound(tree, [
                self._create(fh, File.DELETE | File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                             options),
                self._set_info(fh, info), fh.close(send=False)]), what, rel, override=override)

    def makedirs(self, path: str) -> None:
        """Every folder of the path opened or made in one related compound, parents first (the
        server runs a compound's requests in order): one round trip where one folder at a time
        took one a level. Anything but success, and it is done the base's way, level by level
        (which says which part is a file)."""
        rel = _norm(path)
        if not rel or rel.casefold() in self._made:
            return
        parts = rel.split("\\")
        with self._op("makedirs", rel):
            tree = self._tree()
            actions: list[Action] = []
            for i in range(1, len(parts) + 1):
                fh = Open(tree, "\\".join(parts[:i]))
                actions += [self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                                         CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_DIRECTORY_FILE,
                                         FileAttributes.FILE_ATTRIBUTE_DIRECTORY), fh.close(send=False)]
            answers = self.link.compound(tree, actions)
        if any(isinstance(a, SMBResponseException) for a in answers):
            super().makedirs(rel)
            return
        self._made.update("\\".join(parts[:i]).casefold() for i in range(1, len(parts) + 1))

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

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        rel = _norm(path)
        queued = next((p for p in reversed(self._deferred or []) if p.rel.casefold() == rel.casefold()), None)
        if queued is not None:  # set in the same compound as the write itself
            queued.mtime_ns = mtime_ns
            return
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


# --- from the inventory ------------------------------------------------------------------


def options_of(spec: SmbFilesSpec) -> SmbOptions:
    return SmbOptions(spec.host, spec.port, spec.username, spec.domain, spec.require_signing, spec.encrypt)


@register_files("smb")
def _smb_files(ctx: ConnectContext) -> SmbFileTransport:
    return files_from_inventory(ctx, SmbLink, options_of, SmbFileTransport)
