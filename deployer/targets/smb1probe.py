"""Which SMB dialects a server offers, from one negotiate exchange: to say why a connection failed.

When dialects do not meet, the libraries say little: smbprotocol (SMB 2/3) meeting an
SMB1-only server sees the connection closed ("Windows error 64"), impacket (SMB1) meeting a
server with SMB1 switched off sees an empty or refused negotiation. This module asks the
server itself: it sends the multi-protocol SMB_COM_NEGOTIATE that every SMB client starts
with (MS-SMB2 3.2.4.2.2.1, offering "NT LM 0.12", "SMB 2.002" and "SMB 2.???") on a fresh
TCP connection and reads the answer:

- an SMB2 NEGOTIATE response (0xFE 'SMB'): the server speaks SMB 2/3;
- an SMB1 NEGOTIATE response selecting NT LM 0.12: the server speaks only SMB1;
- anything else, or a connection closed without an answer: no SMB server there.

It only negotiates (no session, no credentials) and closes the connection.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from .base import DialectMismatch

SMB1, SMB2, NOT_SMB = "smb1", "smb2", "not_smb"
DIALECTS = (b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???")
_SMB1_HEADER = struct.Struct("<4sBIBHH8sHHHHH")  # MS-CIFS 2.2.3.1


@dataclass(frozen=True)
class Offer:
    kind: str  # smb1, smb2 or not_smb
    detail: str = ""  # what was seen, for a server that does not speak SMB


def negotiate_request() -> bytes:
    body = b"".join(b"\x02" + d + b"\x00" for d in DIALECTS)
    header = _SMB1_HEADER.pack(b"\xffSMB", 0x72, 0, 0x18, 0xC853, 0, b"\0" * 8, 0, 0, 0xFEFF, 0, 0)
    smb = header + b"\x00" + struct.pack("<H", len(body)) + body
    return struct.pack(">I", len(smb)) + smb


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        got = sock.recv(n - len(data))
        if not got:
            break
        data += got
    return data


def probe(host: str, port: int, timeout: float) -> Offer:
    """Ask the server at host:port which dialect it picks; raises OSError if nothing listens there,
    TimeoutError (an OSError) if nothing answers within `timeout`."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(negotiate_request())
        try:
            head = _recv_exactly(sock, 4)
        except ConnectionResetError:
            return Offer(NOT_SMB, "the connection was closed without an answer")
        if len(head) < 4:
            return Offer(NOT_SMB, "the connection was closed without an answer")
        if head[0] != 0:  # not a NetBIOS session message: some other protocol's greeting
            return Offer(NOT_SMB, f"it answered {_printable(head + _peek(sock))!r}")
        length = struct.unpack(">I", head)[0] & 0xFFFFFF
        body = _recv_exactly(sock, min(length, 512))
    if body[:4] == b"\xfeSMB":
        return Offer(SMB2)
    if body[:4] == b"\xffSMB" and len(body) >= _SMB1_HEADER.size + 3 and body[4] == 0x72:
        word_count = body[_SMB1_HEADER.size]
        index = struct.unpack_from("<H", body, _SMB1_HEADER.size + 1)[0] if word_count else 0xFFFF
        if index == 0:
            return Offer(SMB1)
        return Offer(NOT_SMB, "it speaks SMB1 but none of NT LM 0.12, SMB 2.002, SMB 2.???")
    return Offer(NOT_SMB, f"it answered {_printable(head + body)!r}")


def _peek(sock: socket.socket) -> bytes:
    try:
        return sock.recv(60)
    except OSError:
        return b""


def _printable(data: bytes) -> str:
    return data[:40].decode("ascii", "replace").strip()


def quick(timeout: float) -> float:
    """Seconds for a probe after a negotiation timed out: a server of another protocol that speaks
    first (SSH, FTP, SMTP) greets at once, while a hung SMB server costs the operation this much
    more: up to half its bound, and never more than a second."""
    return min(1.0, max(0.25, timeout / 2))


def mismatch(server: str, host: str, port: int, timeout: float, *, client: str) -> DialectMismatch | None:
    """The error to report when a `client` ("smb1" or "smb2") connection failed early, or None if
    the dialects do meet (the failure was something else: let the caller report it)."""
    try:
        offer = probe(host, port, timeout)
    except OSError:
        return None  # nothing listens, it went away, or it is hung: the caller's own error says so
    where = f"{host}:{port}"
    if offer.kind == NOT_SMB:
        return DialectMismatch(f"{where} does not speak SMB ({offer.detail}); check files: host and port in the "
                               "inventory", server=server)
    if client == "smb2" and offer.kind == SMB1:
        return DialectMismatch(f"{server} offers only SMB1 (NT LM 0.12); set `dialect: smb1` for it in the inventory",
                               server=None)
    if client == "smb1" and offer.kind == SMB2:
        return DialectMismatch(f"{server} has SMB1 disabled: it offers only SMB 2/3 ({where}); remove `dialect: smb1` "
                               "for it from the inventory", server=None)
    return None
