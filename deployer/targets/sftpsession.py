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

    def copy_data(self, src: bytes, dst: bytes) -> None:
        """The server copies all of src into dst (copy-data: OpenSSH 9.0+); length 0 is 'to the end'."""
        self.request(CMD_EXTENDED, "copy-data", src, int64(0), int64(0), dst, int64(0))

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

    def read_pipelined(self, handle: bytes, size: int, chunk: int) -> Iterator[bytes]:
        """The first `size` bytes (fewer if the file is shorter now), in pieces of `chunk`."""
        replies = _Replies(self)
        pending: deque[tuple[int, int, int]] = deque()
        window = max(IN_FLIGHT // self.read_len, 1)
        asked = 0
        buf = bytearray()
        while True:
            while len(pending) < window and asked < size:
                n = min(self.read_len, size - asked)
                pending.append((replies.send(CMD_READ, handle, int64(asked), n), asked, n))
                asked += n
            if not pending:
                break
            num, offset, n = pending.popleft()
            data = _data(replies, num)
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
            if len(data) < n:
                break  # the end of the file came before the size seen at open
        if buf:
            yield bytes(buf)


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
