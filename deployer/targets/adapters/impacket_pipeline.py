r"""Many SMB1 requests in flight at once over impacket_internals.SignedSMB, for smb1batch.py and
smb1.py: each request is sent without waiting, its answer taken later by its Mid (MS-CIFS
3.2.4.1.3: a client may have up to the server's MaxMpxCount requests outstanding; the server
answers each with the request's Mid, and SignedSMB checks each answer's signature by the
sequence number its request took). Requests of one round are sent together, then every
answer is taken: one round trip whatever their number. The server runs them in the order
sent, so a request may depend on an earlier one of the same round (a CLOSE after a
SET_INFORMATION on the same FID) but never on one's answer (a FID the round opens).

Checked against impacket's tested range (impacket_internals' TESTED) when it is imported.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable

from . import require
from .impacket_internals import PASSTHRU_RENAME, SET_FILE_BASIC_INFO, SMB, TESTED, SessionError, SignedSMB

VERSION = require("impacket", TESTED, "the SMB1 transport sends its requests through impacket's client")


@dataclass(frozen=True)
class Request:
    """One request: what it is (a command's name), how it is sent (returns its Mid) and how its
    answer is taken."""

    what: str
    send: Callable[[SignedSMB], int]
    take: Callable[[SignedSMB, int], Any]


def round_trip(conn: SignedSMB, requests: list[Request]) -> list[Any]:
    """Every request sent before any answer is taken; each one's answer, or the SessionError the
    server answered it with, in the order of `requests`. More requests than the server lets be
    outstanding (MaxMpxCount, one kept back) go in successive rounds. A broken connection
    raises (the answers still due are forgotten: nobody will take them)."""
    depth = max(1, conn.max_mpx - 1)
    out: list[Any] = []
    for start in range(0, len(requests), depth):
        part = requests[start:start + depth]
        mids: list[int] = []
        try:
            for r in part:
                mids.append(r.send(conn))
            for k, (r, mid) in enumerate(zip(part, mids)):
                try:
                    out.append(r.take(conn, mid))
                except SessionError as exc:
                    out.append(exc)
                mids[k] = -1
        except BaseException:
            conn.forget(m for m in mids if m >= 0)
            raise
    return out


def create(tid: int, path: str, access: int, share: int, disposition: int, options: int,
           attributes: int = 0) -> Request:
    """NT_CREATE_ANDX; its answer an impacket_internals.Opened."""
    return Request("create", lambda c: c.send(c.create_packet(tid, path, access, share, disposition, options,
                                                              attributes)), lambda c, mid: c.take_create(mid))


def close(tid: int, fid: int) -> Request:
    return Request("close", lambda c: c.send(c.close_packet(tid, fid)),
                   lambda c, mid: c.take(SMB.SMB_COM_CLOSE, mid))


def flush(tid: int, fid: int) -> Request:
    return Request("flush", lambda c: c.send(c.flush_packet(tid, fid)),
                   lambda c, mid: c.take(SMB.SMB_COM_FLUSH, mid))


def read(tid: int, fid: int, offset: int, length: int) -> Request:
    """READ_ANDX; its answer the bytes read."""
    return Request("read", lambda c: c.send_read(tid, fid, offset, length),
                   lambda c, mid: c.receive_read({mid})[1])


def write(tid: int, fid: int, offset: int, data: bytes | memoryview) -> Request:
    """WRITE_ANDX, write-through; its answer the count written."""
    return Request("write", lambda c: c.send_write(tid, fid, offset, data),
                   lambda c, mid: c.receive_write({mid})[1])


def find(pattern: str, tid: int, *, single: bool) -> Request:
    """TRANS2_FIND_FIRST2 (SMB_FIND_FILE_DIRECTORY_INFO), the search closed after it; its answer
    (entries' bytes, whether the search ended: else there are more than one answer holds)."""
    def take(c: SignedSMB, mid: int) -> tuple[bytes, bool]:
        params, data = c.take_trans2(mid)
        return data, bool(struct.unpack_from("<HHHHH", params)[2])
    return Request("find", lambda c: c.send_trans2_request(tid, SMB.TRANS2_FIND_FIRST2,
                                                           c.find_first(pattern, single, True), b""), take)


def _set_info(tid: int, fid: int, level: int, data: bytes) -> Request:
    return Request("set_info", lambda c: c.send_trans2_request(tid, SMB.TRANS2_SET_FILE_INFORMATION,
                                                               struct.pack("<HHH", fid, level, 0), data),
                   lambda c, mid: c.take_trans2(mid))


def set_write_time(tid: int, fid: int, filetime: int) -> Request:
    """TRANS2_SET_FILE_INFORMATION, SMB_SET_FILE_BASIC_INFO: the write time to the 100 ns."""
    # FILE_BASIC_INFO: creation, access, write, change times, attributes; 0 leaves a field alone
    return _set_info(tid, fid, SET_FILE_BASIC_INFO, struct.pack("<qqqqII", 0, 0, filetime, 0, 0, 0))


def rename_fid(tid: int, fid: int, new_name: str, replace: bool) -> Request:
    """Pass-through FileRenameInformation (CAP_INFOLEVEL_PASSTHRU): one atomic rename in the
    file's folder that may replace the target."""
    name = new_name.encode("utf-16le")
    return _set_info(tid, fid, PASSTHRU_RENAME, struct.pack("<B3xII", int(replace), 0, len(name)) + name)

