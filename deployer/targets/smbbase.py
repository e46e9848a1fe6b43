"""The SMB 2/3 file transport's plumbing: its requests built as compound actions, their
answers checked, handles closed; what smb.py (writing) and smbread.py (reading) share.

An Action is (request, unpack): sent alone, in a compound (smbconn.SmbLink.compound) or in a
pipeline, and unpacked from its answer. What the transport knows of a file's content without
reading it again is smbknown.py's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileBasicInformation, FileInformationClass
from smbprotocol.ioctl import IOCTLFlags, SMB2IOCTLRequest, SMB2IOCTLResponse
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    FilePipePrinterAccessMask as File,
    ImpersonationLevel,
    Open,
    ShareAccess,
    SMB2QueryDirectoryResponse,
    SMB2QueryInfoRequest,
    SMB2QueryInfoResponse,
    SMB2ReadResponse,
    SMB2SetInfoRequest,
    SMB2WriteResponse,
)
from smbprotocol.tree import TreeConnect

from .base import FileStat, TargetError, filetime_to_ns, ns_to_filetime  # noqa: F401 - re-exported
from .smbconn import SmbLink, status_error
from .smbknown import KnownContent, version_of
from .smbshare import _WILDCARDS, Held, ShareBase, _norm, dir_entries  # noqa: F401 - _norm, _WILDCARDS: re-exported

SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
COPY_CHUNK = 1 << 20  # FSCTL_SRV_COPYCHUNK limits Windows and Samba apply: 1 MiB a chunk,
COPY_CHUNKS = 16  # 16 chunks a request (MS-SMB2 3.3.3: ServerSideCopyMaxChunkCount / MaxDataSize)
COPY_REQUESTS = 16  # copy requests in flight
APPEND_INLINE = 1 << 20  # a record up to this size goes in one WRITE, compounded with its FLUSH

Action = tuple[Any, Callable[[Any], Any]]


_Held = Held  # the append handle, as smbshare.py holds it for both dialects


class SmbBase(ShareBase):
    """What every SMB 2/3 file operation is built from (the dialect-neutral part is smbshare.ShareBase's)."""

    link: SmbLink

    def __init__(self, server: str, link: SmbLink, share: str, *, timeout: float | None = None,
                 owns_link: bool = False):
        super().__init__(server, link, share, timeout=timeout, owns_link=owns_link)
        self.known = KnownContent()  # see sha256() and smbknown.py

    # --- plumbing ---------------------------------------------------------------------------

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
        msg, _ = fh.query_directory(pattern, FileInformationClass.FILE_DIRECTORY_INFORMATION, flags, send=False)

        def unpack(request: Any) -> list[FileStat]:
            resp = SMB2QueryDirectoryResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            return dir_entries(resp["buffer"].get_value())

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

    def _read(self, fh: Open, offset: int, length: int) -> Action:
        msg, _ = fh.read(offset, length, send=False)

        def unpack(request: Any) -> bytes:
            resp = SMB2ReadResponse()
            resp.unpack(self._receive(request)["data"].get_value())
            got = resp["buffer"].get_value()
            self.link.meter.read(len(got), self.server)
            return got

        return msg, unpack

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

