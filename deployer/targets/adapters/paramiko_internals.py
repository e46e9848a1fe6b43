"""What deployer needs from paramiko's SFTP client beyond its public API, in one place.

paramiko's SFTPClient serves the plain requests (lstat, listdir, rename, utime...) through
its public methods. It has no public way to:

- **read the server's extension list** (it discards it; paramiko PRs #1849 and #2558), so
  posix-rename@openssh.com, fsync@openssh.com, copy-data, statvfs@openssh.com and
  limits@openssh.com can be used only where the server offers them: `_send_version`, which
  paramiko calls once from its constructor, is replaced by one that keeps the list;
- **keep the SFTP status code of an error** (it keeps only the text): `_convert_status`,
  which paramiko calls for every status answer, hands code and text to `status()`;
- **send a request it has no method for** (copy-data, limits, fsync, a raw OPEN/READ/WRITE
  on a handle): `_request` and `_async_request`, the calls its own posix_rename and
  SFTPFile are built on, and `_read_response`, which hands an answer that arrives while it
  waits for another to the object registered with that request (`_async_response`);
- **decode an ATTRS answer** of such a request: `SFTPAttributes._from_msg`.

SftpSession (sftpsession.py) builds on the public names given to them here.
"""

from __future__ import annotations

import struct
from typing import Any

import paramiko
from paramiko.message import Message
from paramiko.sftp import CMD_INIT, CMD_VERSION, SFTP_EOF, SFTP_OK, SFTPError
from paramiko.sftp_attr import SFTPAttributes

from . import TestedRange, require

TESTED = TestedRange((3, 4, 0), (5, 2, 0))
VERSION = require("paramiko", TESTED, "deployer's SFTP transport hooks into SFTPClient's internals")

SFTP_VERSION = 3  # what OpenSSH speaks, and paramiko


class HookedSFTPClient(paramiko.SFTPClient):
    """paramiko's SFTPClient, keeping the server's extensions and the status codes of errors."""

    extension_data: bytes = b""  # the extension pairs of the server's VERSION packet, undecoded
    meter: Any = None  # targets/traffic.py's Meter of the connection: every packet each way is counted

    # --- paramiko calls these -----------------------------------------------------------------

    def _send_packet(self, t: int, packet: Any) -> None:
        super()._send_packet(t, packet)
        if self.meter is not None:
            self.meter.sent(1)

    def _read_packet(self) -> tuple[int, bytes]:
        got = super()._read_packet()
        if self.meter is not None:
            self.meter.answered()
        return got

    def _send_version(self) -> int:
        msg = Message()
        msg.add_int(SFTP_VERSION)
        self._send_packet(CMD_INIT, msg)
        t, data = self._read_packet()
        if t != CMD_VERSION:
            raise SFTPError("Incompatible sftp protocol")
        self.extension_data = data[4:]
        return struct.unpack(">I", data[:4])[0]

    def _convert_status(self, msg: Message) -> None:
        self.check_status(msg)

    # --- public names for paramiko's private calls ---------------------------------------------

    def check_status(self, msg: Message) -> None:
        """Read a STATUS answer and hand it to status()."""
        code = msg.get_int()
        text = msg.get_text()
        self.status(code, text)

    def status(self, code: int, text: str) -> None:
        """What a STATUS answer means: return on success, raise otherwise (EOFError at the end of a
        file, which paramiko's readers expect). Subclasses raise errors that keep the code."""
        if code == SFTP_OK:
            return
        if code == SFTP_EOF:
            raise EOFError(text)
        raise OSError(text)

    def request(self, t: int, *args: object) -> tuple[int, Message]:
        """Send one request and wait for its answer (a STATUS answer goes through status())."""
        return self._request(t, *args)

    def send_request(self, collector: "ReplyCollector", t: int, *args: object) -> int:
        """Send a request without waiting; its answer goes to `collector` if it comes while
        read_response waits for another one. Returns the request number."""
        return self._async_request(collector, t, *args)

    def read_response(self, num: int) -> tuple[int, Message]:
        """Wait for the answer to request `num` (a STATUS answer goes through status())."""
        return self._read_response(num)


class ReplyCollector:
    """Keeps answers that paramiko hands over while it waits for another request's."""

    def __init__(self) -> None:
        self.got: dict[int, tuple[int, Message]] = {}

    def _async_response(self, t: int, msg: Message, num: int) -> None:  # called by paramiko
        self.got[num] = (t, msg)


def attributes_from(msg: Message, filename: str | None = None, longname: str | None = None) -> SFTPAttributes:
    """The SFTPAttributes of an ATTRS answer (or of one entry of a NAME answer, with its names)."""
    return SFTPAttributes._from_msg(msg, filename, longname)



def exec_without_reply(chan: paramiko.Channel, command: str) -> None:
    """Channel.exec_command without asking the server to confirm (want-reply false, RFC 4254
    6.5): the request goes out with what follows it, and the command's output is the answer,
    one round trip fewer. paramiko's exec_command always asks and waits. Only for a server that
    has accepted an exec on this connection already: one that refuses sends no word of it."""
    from paramiko.common import cMSG_CHANNEL_REQUEST

    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("exec")
    m.add_boolean(False)
    m.add_string(command)
    chan.transport._send_user_message(m)  # type: ignore[union-attr]
