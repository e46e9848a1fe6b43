"""The WRITE fast path: SMB2 WRITE requests built in one buffer, signed in place, sent at once.

Used by SmbLink.write_stream (smbconn.py) for every upload the session signs or sends in
clear; encrypted sessions take smbprotocol's own path. What it needs of smbprotocol's
internals (message ids, the outstanding table, the send lock) it gets through
adapters/smbprotocol_internals.py.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import TYPE_CHECKING

from smbprotocol.connection import Request
from smbprotocol.header import Commands, Smb2Flags
from smbprotocol.open import Open
from smbprotocol.tree import TreeConnect

from .adapters import smbprotocol_internals as internals

if TYPE_CHECKING:
    from .smbconn import SmbLink

PAYLOAD_UNIT = 65536  # one credit buys 64 KiB of payload (MS-SMB2 3.1.5.2)


class FastWriter:
    """WRITE requests built in one buffer and sent with one sendall.

    Why not Open.write(): smbprotocol builds each message by repeated bytes concatenation in
    Structure.pack, then copies it again to sign it and again to frame it: about eight copies
    of every payload byte, which caps uploads near 150-200 MB/s on loopback, several times
    below Samba's own client. Here the payload is copied once, into a buffer laid out as
    [Direct TCP length | SMB2 header (MS-SMB2 2.2.1.2) | WRITE request (2.2.21) | data], signed
    in place and sent as is. Everything else stays smbprotocol's: message ids and credits come
    from its sequence window under its lock, the request is registered in its outstanding
    table before sending, and its worker thread receives, verifies and matches the response.
    Used only when the session signs or sends in clear; encrypted sessions take the library path.
    """

    HEADER = struct.Struct("<4sHHHHHHIIQIIQ16s")  # 64 bytes
    WRITE = struct.Struct("<HHIQ16sIIHHI")  # 48 bytes
    FIXED = 4 + 64 + 48

    def __init__(self, link: SmbLink, tree: TreeConnect, fh: Open, size: int):
        self.link = link
        self.conn = link.connection
        self.session = link.session
        self.tree = tree
        self.fh = fh
        # [FIXED bytes of framing and headers | `size` bytes of payload]; a later piece of the same
        # payload puts its headers over bytes already sent, just before it (pieces are >= 64 KiB).
        self.buf = bytearray(self.FIXED + size)
        self.sign = bool(self.session.signing_required and self.session.signing_key)
        self.flags = (Smb2Flags.SMB2_FLAGS_SIGNED if self.sign else 0) | \
            (Smb2Flags.SMB2_FLAGS_DFS_OPERATIONS if tree.is_dfs_share else 0)

    @staticmethod
    def usable(link: SmbLink, tree: TreeConnect) -> bool:
        conn, session = link.connection, link.session
        return (not session.encrypt_data and not tree.encrypt_data and conn.supports_multi_credit
                and internals.usable(conn))

    def _signature(self, message: memoryview, message_id: int) -> bytes:
        key = self.session.signing_key
        algorithm = internals.signing_algorithm(self.conn)
        if algorithm == internals.AES_GMAC:  # AES-GMAC: the nonce is the message id and "request, not cancel"
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            return AESGCM(key).encrypt(message_id.to_bytes(8, "little") + b"\0\0\0\0", b"", message)
        if algorithm == internals.AES_CMAC:  # AES-CMAC
            from cryptography.hazmat.primitives import cmac
            from cryptography.hazmat.primitives.ciphers import algorithms

            c = cmac.CMAC(algorithms.AES(key))
            c.update(message)
            return c.finalize()
        return hmac.new(key, message, hashlib.sha256).digest()[:16]

    def send(self, start: int, n: int, offset: int) -> Request:
        """Send the n payload bytes that sit at buf[FIXED + start:] as one WRITE at file `offset`."""
        conn = self.conn
        charge = (n - 1) // PAYLOAD_UNIT + 1
        message_id = internals.take_message_ids(conn, charge)
        ask = self.link.credits_to_ask(charge)
        buf = self.buf
        length = 64 + 48 + n
        struct.pack_into(">I", buf, start, length)
        self.HEADER.pack_into(buf, start + 4, b"\xfeSMB", 64, charge, 0, 0, Commands.SMB2_WRITE, ask, self.flags, 0,
                              message_id, 0, self.tree.tree_connect_id, self.session.session_id, bytes(16))
        self.WRITE.pack_into(buf, start + 68, 49, 64 + 48, n, offset, self.fh.file_id, 0, 0, 0, 0, 0)
        message = memoryview(buf)[start + 4:start + 4 + length]
        if self.sign:  # over the message with a zeroed signature field, which it has now
            buf[start + 52:start + 68] = self._signature(message, message_id)
        request = internals.track_write(conn, message_id=message_id, charge=charge, credit_request=ask,
                                        tree_id=self.tree.tree_connect_id, session_id=self.session.session_id)
        internals.send_frame(conn, memoryview(buf)[start:start + 4 + length])
        self.link.meter.sent(1, self.link._op_server)
        return request
