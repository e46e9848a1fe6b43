"""The SFTP protocol as deployer needs it, on top of paramiko's SFTPClient.

paramiko's client is kept for the plain requests (lstat, listdir, rename, utime...). This
adds what it lacks or gets wrong for deployer:
  - the server's extension list (paramiko discards it; PRs #1849 and #2558 are open), so
    posix-rename@openssh.com, fsync@openssh.com, copy-data, statvfs@openssh.com and
    limits@openssh.com are used only where the server offers them;
  - the SFTP status code of an error (paramiko keeps only its text);
  - pipelined reads and writes whose every answer is checked. SFTPFile.set_pipelined loses
    the errors of writes still unanswered at close (a 1 MiB write to /dev/full "succeeds"),
    and SFTPFile.prefetch keeps a thread reading after the reader stopped (paramiko #2454).

Requests that paramiko has no method for, the extension list and the status codes come
through adapters/paramiko_internals.py, the one module that touches paramiko's internals.
"""

from __future__ import annotations

import errno
import functools
import struct
from collections import deque
from typing import Iterable, Iterator

from paramiko.message import Message
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_LSTAT,
    CMD_NAME,
    CMD_OPENDIR,
    CMD_READDIR,
    CMD_SETSTAT,
    CMD_OPEN,
    CMD_READ,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    SFTP_PERMISSION_DENIED,
    SFTPError,
    int64,
)
from paramiko.sftp_attr import SFTPAttributes

from .adapters.paramiko_internals import HookedSFTPClient, ReplyCollector, attributes_from

DEFAULT_REQUEST = 32 * 1024  # paramiko's size: servers that do not state limits accept it
MAX_REQUEST = 256 * 1024  # OpenSSH's sftp-server limit; used only when the server says so
IN_FLIGHT = 4 << 20  # bytes of reads or writes outstanding at once (hides the round-trip time)
AT_ONCE = 64  # small requests (LSTAT) in flight at once


class SftpStatusError(OSError):
    """The server answered one request with an SFTP status (the session itself is fine)."""

    _ERRNO = {SFTP_NO_SUCH_FILE: errno.ENOENT, SFTP_PERMISSION_DENIED: errno.EACCES}

    def __init__(self, code: int, text: str):
        # paramiko's own callers look at errno (ENOENT) and catch IOError: keep both working
        super().__init__(self._ERRNO.get(code, 0), text)
        self.code = code
        self.text = text


class SftpSession(HookedSFTPClient):
    read_len = write_len = DEFAULT_REQUEST

    @functools.cached_property
    def extensions(self) -> dict[str, bytes]:
        """The extensions the server offered in its VERSION packet, by name."""
        return _extension_pairs(self.extension_data)

    def status(self, code: int, text: str) -> None:
        if code == SFTP_OK:
            return
        if code == SFTP_EOF:
            raise EOFError(text)  # paramiko's readers expect EOFError at the end
        raise SftpStatusError(code, text)

    # --- requests -------------------------------------------------------------------------------

    def offers(self, extension: str) -> bool:
        return extension in self.extensions

    def use_limits(self) -> None:
        """Size read and write requests as the server allows (limits@openssh.com, OpenSSH 8.6+)."""
        if not self.offers("limits@openssh.com"):
            return
        _, msg = self.request(CMD_EXTENDED, "limits@openssh.com")
        msg.get_int64()  # max packet length
        self.read_len = _request_size(msg.get_int64())
        self.write_len = _request_size(msg.get_int64())

    def open_handle(self, path: str, flags: int) -> bytes:
        t, msg = self.request(CMD_OPEN, path, flags, SFTPAttributes())
        if t != CMD_HANDLE:
            raise SFTPError("Expected handle")
        return msg.get_binary()

    def close_handle(self, handle: bytes) -> None:
        self.request(CMD_CLOSE, handle)

    def close_later(self, handle: bytes) -> None:
        """CLOSE without waiting for its answer (it comes with the next one waited for): for a
        handle whose data is read, or written and fsynced, so that nothing can be lost at close.
        sftp-server runs a session's requests in order: what comes next finds the file closed."""
        self.send_request(ReplyCollector(), CMD_CLOSE, handle)

    def fstat_handle(self, handle: bytes) -> SFTPAttributes:
        t, msg = self.request(CMD_FSTAT, handle)
        if t != CMD_ATTRS:
            raise SFTPError("Expected attributes")
        return attributes_from(msg)

    def fsync(self, handle: bytes) -> None:
        # Without fsync@openssh.com, CLOSE is the strongest promise SFTP version 3 makes: the
        # data is with the server's operating system, not necessarily on its disk.
        if self.offers("fsync@openssh.com"):
            self.request(CMD_EXTENDED, "fsync@openssh.com", handle)

    def copy_data(self, src: bytes, dst: bytes, *, durable: bool = False) -> None:
        """The server copies all of src into dst (copy-data: OpenSSH 9.0+); length 0 is 'to the end'.
        durable: dst's fsync goes with it (sftp-server runs a session's requests in order, so it
        covers the copy), both answers checked: one round trip."""
        replies = _Replies(self)
        nums = [replies.send(CMD_EXTENDED, "copy-data", src, int64(0), int64(0), dst, int64(0))]
        if durable and self.offers("fsync@openssh.com"):
            nums.append(replies.send(CMD_EXTENDED, "fsync@openssh.com", dst))
        _wait_all(replies, nums)

    def finish_copy(self, dst: bytes, path: str, times: tuple[int, int], src: bytes) -> None:
        """A copy's CLOSE, its write time set by path and the source's CLOSE, sent together and
        every answer checked (the first error raised): one round trip instead of three."""
        attr = SFTPAttributes()
        attr.st_atime, attr.st_mtime = times
        replies = _Replies(self)
        _wait_all(replies, [replies.send(CMD_CLOSE, dst), replies.send(CMD_SETSTAT, path, attr),
                            replies.send(CMD_CLOSE, src)])

    def free_bytes(self, path: str) -> int | None:
        """Free space where `path` lives (statvfs@openssh.com), or None if the server cannot say."""
        if not self.offers("statvfs@openssh.com"):
            return None
        try:
            _, msg = self.request(CMD_EXTENDED, "statvfs@openssh.com", path)
        except (SftpStatusError, EOFError):
            return None
        _bsize, frsize, _blocks, _bfree, bavail = (msg.get_int64() for _ in range(5))
        return bavail * frsize

    # --- pipelined I/O --------------------------------------------------------------------------

    def write_pipelined(self, handle: bytes, chunks: Iterable[bytes], offset: int = 0) -> int:
        """Write the chunks from `offset`, many requests in flight; every answer is checked."""
        replies = _Replies(self)
        pending: deque[int] = deque()
        window = max(IN_FLIGHT // self.write_len, 1)
        total = 0
        for block in chunks:
            view = memoryview(block)
            for i in range(0, len(view), self.write_len):
                piece = bytes(view[i:i + self.write_len])
                pending.append(replies.send(CMD_WRITE, handle, int64(offset), piece))
                offset += len(piece)
                total += len(piece)
                while len(pending) > window:
                    replies.wait(pending.popleft())
        while pending:
            replies.wait(pending.popleft())
        if self.meter is not None:
            self.meter.wrote(total)
        return total

    def append_record(self, handle: bytes, data: bytes, offset: int, durable: bool) -> None:
        """One record at `offset`: its WRITE and (durable) its fsync sent together, both answers
        checked: one round trip. OpenSSH's sftp-server (Windows' too) runs a session's requests
        one at a time in the order they come, so the fsync covers the write before it."""
        if len(data) > self.write_len:
            self.write_pipelined(handle, [data], offset)
            if durable:
                self.fsync(handle)
            return
        replies = _Replies(self)
        nums = [replies.send(CMD_WRITE, handle, int64(offset), data)]
        if durable and self.offers("fsync@openssh.com"):
            nums.append(replies.send(CMD_EXTENDED, "fsync@openssh.com", handle))
        for num in nums:
            replies.wait(num)
        if self.meter is not None:
            self.meter.wrote(len(data))

    def read_pipelined(self, handle: bytes, size: int, chunk: int, *, to_end: bool = False) -> Iterator[bytes]:
        """The first `size` bytes (fewer if the file is shorter now), in pieces of `chunk`. With
        to_end, `size` is what the file was seen to hold and all of it up to its end now is read:
        one request more goes out with the others at `size` (its answer is the end of the file,
        or what was added since), so no FSTAT is needed to learn the size first."""
        replies = _Replies(self)
        pending: deque[tuple[int, int, int, bool]] = deque()  # request, offset, length, whether past `size`
        window = max(IN_FLIGHT // self.read_len, 1)
        asked = 0
        probe: int | None = size if to_end else None  # where the next request past `size` asks
        buf = bytearray()
        while True:
            while len(pending) < window and asked < size:
                n = min(self.read_len, size - asked)
                pending.append((replies.send(CMD_READ, handle, int64(asked), n), asked, n, False))
                asked += n
            if probe is not None and asked >= size and len(pending) < window:
                pending.append((replies.send(CMD_READ, handle, int64(probe), self.read_len), probe, self.read_len,
                                True))
                probe = None
            if not pending:
                break
            num, offset, n, past = pending.popleft()
            data = _data(replies, num)
            if past:
                if data:  # the file grew since it was seen: read on to its end
                    probe = offset + len(data)
            else:
                # a short answer (the file shrank, or the server sends less than asked): the rest
                while len(data) < n:
                    more = _data(replies, replies.send(CMD_READ, handle, int64(offset + len(data)), n - len(data)))
                    if not more:
                        break
                    data += more
            buf += data
            if self.meter is not None:
                self.meter.read(len(data))
            while len(buf) >= chunk:
                yield bytes(buf[:chunk])
                del buf[:chunk]
            if not past and len(data) < n:
                # the end of the file came before the size seen: what is still in flight is past it
                for left in pending:
                    _data(replies, left[0])
                break
        if buf:
            yield bytes(buf)

    def list_folder(self, path: str) -> list[SFTPAttributes]:
        """A folder's entries (with . and ..): OPENDIR, then READDIRs two at a time (the second
        usually answers the end of the listing), the handle closed without waiting: two round
        trips for a folder of up to some hundred entries, where paramiko's listdir_attr takes four."""
        got = self.list_folders([path])[0]
        if isinstance(got, SftpStatusError):
            raise got
        return got

    def list_folders(self, paths: list[str]) -> list[list[SFTPAttributes] | SftpStatusError]:
        """list_folder() of each path, every folder's requests in flight with the others': all
        OPENDIRs, then two READDIRs of each open folder (again while any has more); handles
        closed without waiting. Each folder's entries (with . and ..) or the error its OPENDIR met."""
        replies = _Replies(self)
        opened = [replies.send(CMD_OPENDIR, p) for p in paths]
        out: list[list[SFTPAttributes] | SftpStatusError] = []
        handles: dict[int, bytes] = {}
        for k, num in enumerate(opened):
            try:
                t, msg = replies.wait(num)
            except SftpStatusError as exc:
                out.append(exc)
                continue
            if t != CMD_HANDLE:
                raise SFTPError("Expected handle")
            handles[k] = msg.get_binary()
            out.append([])
        try:
            going = list(handles)
            while going:
                nums = {k: [replies.send(CMD_READDIR, handles[k]) for _ in range(2)] for k in going}
                going = []
                for k, pair in nums.items():
                    done = False
                    for num in pair:
                        try:
                            t, msg = replies.wait(num)
                        except EOFError:
                            done = True
                            continue
                        except SftpStatusError as exc:  # this folder's error; the others are listed
                            out[k], done = exc, True
                            continue
                        if isinstance(out[k], SftpStatusError):
                            continue  # its second answer, after its first failed
                        if t != CMD_NAME:
                            raise SFTPError("Expected name response")
                        entries = out[k]
                        assert isinstance(entries, list)
                        for _ in range(msg.get_int()):
                            filename = msg.get_text()
                            longname = msg.get_text()
                            entries.append(attributes_from(msg, filename, longname))
                    if not done:
                        going.append(k)
        finally:
            for handle in handles.values():
                self.close_later(handle)
        return out

    def lstat_and_open(self, path: str, flags: int) -> tuple[SFTPAttributes | None, bytes | None]:
        """LSTAT and OPEN of one path sent together (one round trip): its attributes (None: no
        such file) and the handle (None: the open failed; the lookup that follows says why)."""
        return self.lstat_and_open_many([path], flags)[0]

    def lstat_and_open_many(self, paths: list[str], flags: int
                            ) -> list[tuple[SFTPAttributes | None, bytes | None]]:
        """lstat_and_open() of each path, all sent together: one round trip."""
        replies = _Replies(self)
        nums = [(replies.send(CMD_LSTAT, p), replies.send(CMD_OPEN, p, flags, SFTPAttributes())) for p in paths]
        out: list[tuple[SFTPAttributes | None, bytes | None]] = []
        for n_lstat, n_open in nums:
            attrs: SFTPAttributes | None = None
            handle: bytes | None = None
            try:
                t, msg = replies.wait(n_lstat)
                attrs = attributes_from(msg) if t == CMD_ATTRS else None
            except SftpStatusError:
                pass
            try:
                t, msg = replies.wait(n_open)
                handle = msg.get_binary() if t == CMD_HANDLE else None
            except SftpStatusError:
                pass
            out.append((attrs, handle))
        return out

    def lstat_many(self, paths: list[str]) -> list[SFTPAttributes | None | SftpStatusError]:
        """LSTAT of each path, up to AT_ONCE in flight (one round trip for them): None where
        nothing is there, the status error where the server answered another one."""
        replies = _Replies(self)
        out: list[SFTPAttributes | None | SftpStatusError] = []
        for i in range(0, len(paths), AT_ONCE):
            nums = [replies.send(CMD_LSTAT, p) for p in paths[i:i + AT_ONCE]]
            for num in nums:
                try:
                    t, msg = replies.wait(num)
                except SftpStatusError as exc:
                    out.append(None if exc.code == SFTP_NO_SUCH_FILE else exc)
                    continue
                if t != CMD_ATTRS:
                    raise SFTPError("Expected attributes")
                out.append(attributes_from(msg))
        return out


class _Replies(ReplyCollector):
    """Keeps the answers to pipelined requests.

    paramiko hands an answer that arrives while it waits for another one to the object
    registered with that request, and drops it when none is (what SFTPFile's pipelined
    writes register). This one is registered, so no answer is lost, in whatever order the
    server sends them.
    """

    def __init__(self, sftp: SftpSession):
        super().__init__()
        self.sftp = sftp

    def send(self, t: int, *args: object) -> int:
        return self.sftp.send_request(self, t, *args)

    def wait(self, num: int) -> tuple[int, Message]:
        if num in self.got:
            t, msg = self.got.pop(num)
            if t == CMD_STATUS:
                self.sftp.check_status(msg)
            return t, msg
        return self.sftp.read_response(num)


def _wait_all(replies: _Replies, nums: list[int]) -> None:
    """Every answer taken (none left in flight), the first error raised."""
    first: SftpStatusError | None = None
    for num in nums:
        try:
            replies.wait(num)
        except SftpStatusError as exc:
            first = first or exc
    if first is not None:
        raise first


def _data(replies: _Replies, num: int) -> bytes:
    try:
        t, msg = replies.wait(num)
    except EOFError:
        return b""
    if t != CMD_DATA:
        raise SFTPError("Expected data")
    return msg.get_string()


def _extension_pairs(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    try:
        while pos + 4 <= len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            name = data[pos + 4:pos + 4 + n].decode("utf-8", "replace")
            pos += 4 + n
            (m,) = struct.unpack_from(">I", data, pos)
            out[name] = data[pos + 4:pos + 4 + m]
            pos += 4 + m
    except struct.error:
        pass  # a truncated list: keep what was readable
    return out


def _request_size(limit: int) -> int:
    """The server's limit, capped; 0 means it states none."""
    if limit <= 0:
        return DEFAULT_REQUEST
    return max(4096, min(limit, MAX_REQUEST))
