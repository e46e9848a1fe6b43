r"""impacket's SMB1 (NT LM 0.12) client, behind one module: the only place that knows impacket's
internals, checked against the tested range when it is imported (its MS-SCMR calls are
impacket_scmr.py's, checked against the same range).

impacket speaks SMB1 and DCE/RPC over it; deployer needs a few things its high-level
SMBConnection does not offer, built here from impacket's own packet classes:

- **Signing both ways.** impacket signs only when the server *requires* it and never checks
  the server's signatures. `SignedSMB` signs whenever the server offers signing and verifies
  every reply (MS-CIFS 3.2.5.1: the reply carries the request's sequence number + 1).
- **NTLMv2 only, unless told.** impacket's `login()` silently retries with NTLMv1; here the
  caller picks, and LM/NTLMv1 are used only when the inventory allows them.
- **Exact write times.** NT_CREATE_ANDX replies and FIND_FIRST2 entries carry FILETIMEs;
  TRANS2_SET_FILE_INFORMATION (SMB_SET_FILE_BASIC_INFO, impacket_pipeline.py) sets one to the 100 ns.
- **Pipelined reads and writes** (several READ_ANDX/WRITE_ANDX in flight, up to the server's
  MaxMpxCount), where impacket waits for each answer.
- **Rename with replace** through the pass-through information level (FileRenameInformation,
  servers with CAP_INFOLEVEL_PASSTHRU: Windows 2000 and Samba).
- **Requests sent now, answered later** (`send`/`take`, `create_packet`/`take_create`,
  `send_trans2_request`/`take_trans2`): impacket_pipeline.py builds batches from them.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from . import TestedRange, require

TESTED = TestedRange((0, 13, 0), (0, 14, 0))  # keep in step with pyproject.toml
TESTED_RANGE = str(TESTED)

IMPACKET_VERSION = require("impacket", TESTED, "the SMB1 transport uses its internals")

# impacket imported only after the check: an untested release fails with the message above
from impacket import nmb, smb  # noqa: E402
from impacket.smbconnection import SMBConnection  # noqa: E402

SMB = smb.SMB
SessionError = smb.SessionError
UnsupportedFeature = smb.UnsupportedFeature
NetBIOSError = nmb.NetBIOSError
NetBIOSTimeout = nmb.NetBIOSTimeout

SIGNING_ENABLED, SIGNING_REQUIRED = SMB.SECURITY_SIGNATURES_ENABLED, SMB.SECURITY_SIGNATURES_REQUIRED
CAP_EXTENDED_SECURITY = SMB.CAP_EXTENDED_SECURITY
CAP_PASSTHRU = 0x2000  # CAP_INFOLEVEL_PASSTHRU (MS-SMB 2.2.4.5.2.1)

# NT_CREATE_ANDX (MS-CIFS 2.2.4.64) values
FILE_SUPERSEDE, FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE, FILE_OVERWRITE_IF = range(6)
FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_DELETE_ON_CLOSE = 0x1, 0x40, 0x1000
SHARE_READ, SHARE_WRITE, SHARE_DELETE = 1, 2, 4
SHARE_ALL = SHARE_READ | SHARE_WRITE | SHARE_DELETE
READ_DATA, WRITE_DATA, APPEND_DATA, READ_ATTRIBUTES, WRITE_ATTRIBUTES = 0x1, 0x2, 0x4, 0x80, 0x100
LIST_DIRECTORY = 0x1
DELETE, SYNCHRONIZE = 0x10000, 0x100000
ATTR_READONLY, ATTR_DIRECTORY, ATTR_ARCHIVE = 0x1, 0x10, 0x20

SET_FILE_BASIC_INFO = 0x0101  # TRANS2 information levels
PASSTHRU_RENAME = 1000 + 10  # SMB_INFO_PASSTHROUGH + FileRenameInformation
FIND_DIRECTORY_INFO = 0x0101  # SMB_FIND_FILE_DIRECTORY_INFO: FILETIMEs, size, attributes, name
FIND_DATA_MAX = 16000  # bytes of entries per FIND reply: one packet, whatever the buffers
IO_UNIT = 60 << 10  # bytes per READ_ANDX / WRITE_ANDX with the large read/write capabilities (Samba
# writes nothing of a 128 KiB WRITE_ANDX on NT1 and drops the connection at 1 MiB; Windows stops at 64 KiB)


_SMB_HEADER = struct.Struct("<4sBIBHH8sHHHHH")  # MS-CIFS 2.2.3.1
_WRITE_WORDS = struct.Struct("<BBBHHIIHHHHHIH")  # WordCount, the 14 words of WRITE_ANDX, ByteCount


@dataclass(frozen=True)
class Opened:
    fid: int
    attributes: int
    size: int
    write_time: int  # FILETIME
    is_dir: bool


class SignatureMismatch(Exception):
    """A reply whose signature does not verify: not from the server we logged on to, or altered."""


class SignedSMB(SMB):
    """impacket's SMB1 client, signing whenever signing is on and verifying every reply."""

    # targets/traffic.py's Meter of the link, and who the running operation is for (set by Smb1Link)
    meter: Any = None
    meter_server: Callable[[], str | None] = staticmethod(lambda: None)

    def __init__(self, host: str, port: int, timeout: float):
        self._pending_seq: dict[int, int] = {}  # Mid -> the sequence number its reply must be signed with
        self._mid = 0
        self._stash: dict[int, Any] = {}  # replies that arrived while another request's was awaited
        self._awaited: set[int] = set()  # Mids sent by this module whose replies are still to be taken
        self._verify = False
        self.broken = False  # the connection failed (timed out, closed): nothing more is sent on it
        super().__init__(host, host, sess_port=port, timeout=timeout)
        if self.capabilities & SMB.CAP_UNICODE:  # names in UTF-16, as Windows NT stores them
            self.set_flags(flags2=self.get_flags()[1] | SMB.FLAGS2_UNICODE)

    # SecurityMode and Capabilities from the NEGOTIATE reply
    @property
    def security_mode(self) -> int:
        return self._dialects_parameters["SecurityMode"]

    @property
    def capabilities(self) -> int:
        return self._dialects_parameters["Capabilities"]

    @property
    def max_mpx(self) -> int:
        return max(1, self._dialects_parameters["MaxMpxCount"])

    @property
    def signing_active(self) -> bool:
        return bool(self._SignatureEnabled)

    def log_on(self, user: str, password: str, domain: str, *, ntlmv1: bool, sign: bool) -> None:
        """Session setup with NTLMv2, or LM/NTLMv1 when `ntlmv1`; never falls back on its own
        (impacket's login() retries with NTLMv1 silently)."""
        if sign:
            self._SignatureRequired = True  # makes impacket ask for signing in the NTLMSSP and SMB flags
        if self.capabilities & CAP_EXTENDED_SECURITY:
            self.login_extended(user, password, domain, use_ntlmv2=not ntlmv1)
        elif ntlmv1:
            self.login_standard(user, password, domain)  # impacket sends LM/NTLMv1 responses here
        else:
            raise UnsupportedFeature("no extended security")
        if sign and not self._SignatureEnabled:
            self._SignSequenceNumber = 2  # the session setup exchange took 0 and 1
            self._SignatureEnabled = True
        if sign:
            self._verify = True
            self._pending_seq.clear()

    def sendSMB(self, packet: Any) -> None:  # noqa: N802 - impacket's name
        # Each request its own Mid: Samba answers asynchronous writes and reads out of order, and
        # a reply is matched to its request (and its signature's sequence number) by the Mid.
        self._mid = self._mid % 0xFFFE + 1
        packet["Mid"] = self._mid
        if self._SignatureEnabled:
            self._pending_seq[self._mid] = self._SignSequenceNumber + 1  # the reply's sequence number
        try:
            super().sendSMB(packet)
        except (NetBIOSError, NetBIOSTimeout, OSError):
            self.broken = True
            raise
        if self.meter is not None:
            self.meter.sent(1, self.meter_server())

    @property
    def last_mid(self) -> int:
        return self._mid

    def recvSMB(self) -> Any:  # noqa: N802 - impacket's name
        return smb.NewSMBPacket(data=self._recv_checked())

    def _recv_frame(self) -> bytes:
        """One NetBIOS session message, read straight from the socket (impacket's reader grows
        the message by concatenation, which is slow for 60 KiB replies); keep-alives skipped."""
        sock = self._sess._sock  # noqa: SLF001 - impacket's socket
        sock.settimeout(self.get_timeout())
        try:
            while True:
                head = self._recv_exactly(sock, 4)
                if head[0] not in (0x00, 0x85):  # neither a session message nor a keep-alive: not SMB
                    self.broken = True
                    raise NetBIOSError(f"not an SMB answer ({head!r})", nmb.ERRCLASS_OS, None)
                length = int.from_bytes(head[1:4], "big")  # direct TCP (445): 24-bit lengths
                body = self._recv_exactly(sock, length) if length else b""
                if head[0] == 0x85:  # NETBIOS_SESSION_KEEP_ALIVE
                    continue
                if self.meter is not None:
                    self.meter.answered(self.meter_server())
                return body
        except (socket.timeout, TimeoutError):
            self.broken = True
            raise NetBIOSTimeout from None
        except OSError as exc:
            self.broken = True
            raise NetBIOSError("Error occurs while reading from remote", nmb.ERRCLASS_OS, exc.errno) from None

    def _recv_exactly(self, sock: socket.socket, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = sock.recv_into(view[got:], n - got)
            if not k:
                self.broken = True
                raise NetBIOSError("Error while reading from remote", nmb.ERRCLASS_OS, None)
            got += k
        return bytes(buf)

    def _recv_checked(self) -> bytes:
        """The next SMB message, its signature checked (MS-CIFS 3.2.5.1) when signing is on."""
        raw = self._recv_frame()
        if self._verify and raw[9] & SMB.FLAGS1_REPLY:
            mid = struct.unpack_from("<H", raw, 30)[0]
            seq = self._pending_seq.pop(mid, None)
            if seq is None:
                self.broken = True
                raise SignatureMismatch(f"a reply arrived for no request (Mid {mid})")
            m = hashlib.md5()
            m.update(self._SigningSessionKey)
            m.update(self._SigningChallengeResponse)
            m.update(raw[:14])
            m.update(struct.pack("<q", seq))
            m.update(memoryview(raw)[22:])
            if m.digest()[:8] != raw[14:22]:
                self.broken = True
                raise SignatureMismatch(f"the signature of a reply (sequence {seq}) does not verify")
        return raw

    def _raw_reply(self, command: int, wanted: set[int]) -> bytes:
        """The raw reply to one of `wanted` (a transfer's); others' replies are kept for their turn.
        A failure status raises SessionError, as impacket's isValidAnswer does."""
        found = next((m for m in wanted if m in self._stash), None)
        if found is not None:
            raw = self._stash.pop(found).getData()
        else:
            while True:
                raw = self._recv_checked()
                mid = struct.unpack_from("<H", raw, 30)[0]
                if mid in wanted:
                    break
                if mid in self._awaited:
                    self._stash[mid] = smb.NewSMBPacket(data=raw)
        mid = struct.unpack_from("<H", raw, 30)[0]
        self._awaited.discard(mid)
        status = struct.unpack_from("<I", raw, 5)[0]
        if raw[4] != command or status:
            smb.NewSMBPacket(data=raw).isValidAnswer(command)  # raises with the server's status
        return raw

    # --- requests -------------------------------------------------------------------------

    def _packet(self, tid: int) -> Any:
        p = smb.NewSMBPacket()
        p["Tid"] = tid
        return p

    def _unicode(self) -> bool:
        return bool(self.get_flags()[1] & SMB.FLAGS2_UNICODE)

    def _name(self, path: str) -> bytes | str:
        return path.encode("utf-16le") if self._unicode() else path

    def tree(self, path: str) -> int:
        return self.tree_connect_andx(path, "")

    def create(self, tid: int, path: str, access: int, share: int, disposition: int, options: int,
               attributes: int = 0) -> Opened:
        return self.take_create(self.send(self.create_packet(tid, path, access, share, disposition, options,
                                                             attributes)))

    def create_packet(self, tid: int, path: str, access: int, share: int, disposition: int, options: int,
                      attributes: int = 0) -> Any:
        """An NT_CREATE_ANDX request, not yet sent (`send` it; impacket_pipeline sends many at once)."""
        flags2 = self.get_flags()[1]
        name = self._name(path)
        cmd = smb.SMBCommand(SMB.SMB_COM_NT_CREATE_ANDX)
        cmd["Parameters"] = smb.SMBNtCreateAndX_Parameters()
        cmd["Data"] = smb.SMBNtCreateAndX_Data(flags=flags2)
        params = cmd["Parameters"]
        params["FileNameLength"] = len(name)
        params["CreateFlags"] = 0  # no oplock: another client's open must not wait for us
        params["AccessMask"] = access | SYNCHRONIZE
        params["FileAttributes"] = attributes
        params["ShareAccess"] = share
        params["Disposition"] = disposition
        params["CreateOptions"] = options
        params["Impersonation"] = 2
        params["SecurityFlags"] = 0
        cmd["Data"]["FileName"] = name
        if flags2 & SMB.FLAGS2_UNICODE:
            cmd["Data"]["Pad"] = 0x0
        p = self._packet(tid)
        p.addCommand(cmd)
        return p

    def take_create(self, mid: int) -> Opened:
        """The answer to an NT_CREATE_ANDX sent earlier (SessionError: the server's status)."""
        reply = self._reply(SMB.SMB_COM_NT_CREATE_ANDX, mid)
        r = smb.SMBNtCreateAndXResponse_Parameters(smb.SMBCommand(reply["Data"][0])["Parameters"])
        return Opened(r["Fid"], r["FileAttributes"], r["EndOfFile"], r["LastWriteTime"], bool(r["IsDirectory"]))

    def send(self, packet: Any) -> int:
        """Send a request without waiting for its answer: its Mid, for `take` (or _reply)."""
        self.sendSMB(packet)
        self._awaited.add(self._mid)
        return self._mid

    def take(self, command: int, mid: int) -> Any:
        """The answer to a request `send` sent (SessionError: the server's status)."""
        return self._reply(command, mid)

    def _reply(self, command: int, mids: int | set[int]) -> Any:
        """The reply to one of `mids` (several requests may be in flight, of several transfers)."""
        wanted = {mids} if isinstance(mids, int) else mids
        found = next((m for m in wanted if m in self._stash), None)
        if found is not None:
            reply = self._stash.pop(found)
        else:
            while True:
                reply = self.recvSMB()
                mid = reply["Mid"]
                if mid in wanted:
                    break
                if mid in self._awaited:  # another transfer's: keep it for its turn
                    self._stash[mid] = reply
        self._awaited.discard(reply["Mid"])
        if reply.isValidAnswer(command):  # raises SessionError with the server's status
            return reply
        raise SessionError("unexpected reply", 0, 0, 0)

    def forget(self, mids: Iterable[int]) -> None:
        """Replies that will never be taken (the transfer was abandoned): drop them as they arrive."""
        for mid in mids:
            self._awaited.discard(mid)
            self._stash.pop(mid, None)

    def close_fid(self, tid: int, fid: int) -> None:
        self._reply(SMB.SMB_COM_CLOSE, self.send(self.close_packet(tid, fid)))

    def close_packet(self, tid: int, fid: int) -> Any:
        cmd = smb.SMBCommand(SMB.SMB_COM_CLOSE)
        cmd["Parameters"] = smb.SMBClose_Parameters()
        cmd["Parameters"]["FID"] = fid
        cmd["Parameters"]["Time"] = 0xFFFFFFFF  # leave the write time as it is (MS-CIFS 2.2.4.5.1)
        p = self._packet(tid)
        p.addCommand(cmd)
        return p

    def flush(self, tid: int, fid: int) -> None:
        self._reply(SMB.SMB_COM_FLUSH, self.send(self.flush_packet(tid, fid)))

    def flush_packet(self, tid: int, fid: int) -> Any:
        cmd = smb.SMBCommand(SMB.SMB_COM_FLUSH)
        cmd["Parameters"] = smb.SMBFlush_Parameters()
        cmd["Parameters"]["FID"] = fid
        p = self._packet(tid)
        p.addCommand(cmd)
        return p

    def rename_path(self, tid: int, old: str, new: str) -> None:
        """SMB_COM_RENAME: fails if `new` exists (no replace in this command)."""
        cmd = smb.SMBCommand(SMB.SMB_COM_RENAME)
        cmd["Parameters"] = smb.SMBRename_Parameters()
        cmd["Parameters"]["SearchAttributes"] = 0x16  # hidden, system and folders too
        cmd["Data"] = smb.SMBRename_Data(flags=self.get_flags()[1])
        cmd["Data"]["OldFileName"] = self._name(old)
        cmd["Data"]["NewFileName"] = self._name(new)
        p = self._packet(tid)
        p.addCommand(cmd)
        self._reply(SMB.SMB_COM_RENAME, self.send(p))

    def _trans2(self, tid: int, setup: int, params: bytes, data: bytes, max_data: int = FIND_DATA_MAX
                ) -> tuple[bytes, bytes]:
        return self.take_trans2(self.send_trans2_request(tid, setup, params, data))

    def send_trans2_request(self, tid: int, setup: int, params: bytes, data: bytes) -> int:
        """A TRANSACTION2 request sent without waiting (impacket lays it out): its Mid."""
        self.send_trans2(tid, setup, "\x00", params, data)
        self._awaited.add(self._mid)
        return self._mid

    def take_trans2(self, mid: int) -> tuple[bytes, bytes]:
        """(parameters, data) of the answer to a TRANSACTION2 request."""
        reply = self._reply(SMB.SMB_COM_TRANSACTION2, mid)
        resp = smb.SMBCommand(reply["Data"][0])
        rp = smb.SMBTransaction2Response_Parameters(resp["Parameters"])
        raw = reply.getData()
        r_params = raw[rp["ParameterOffset"]:rp["ParameterOffset"] + rp["ParameterCount"]]
        r_data = raw[rp["DataOffset"]:rp["DataOffset"] + rp["DataCount"]]
        return r_params, r_data

    def find_first(self, pattern: str, single: bool, once: bool = False) -> bytes:
        """FIND_FIRST2's parameters; `once`: the search closed after this request whatever it found."""
        name = pattern.encode("utf-16le") + b"\x00\x00" if self._unicode() else pattern.encode("latin-1") + b"\x00"
        flags = 0x02 | (0x01 if single or once else 0)  # close at end of search (and after this request)
        return struct.pack("<HHHHI", 0x16, 1 if single else 512, flags | 0x04, FIND_DIRECTORY_INFO, 0) + name

    def find(self, tid: int, pattern: str, single: bool = False) -> Iterator[bytes]:
        """FIND_FIRST2/FIND_NEXT2 with SMB_FIND_FILE_DIRECTORY_INFO: yields each reply's entries."""
        count = 1 if single else 512
        params, data = self._trans2(tid, SMB.TRANS2_FIND_FIRST2, self.find_first(pattern, single), b"")
        sid, _n, end, _ea, _last = struct.unpack_from("<HHHHH", params)
        yield data
        while not end and not single:
            params, data = self._trans2(tid, SMB.TRANS2_FIND_NEXT2,
                                        struct.pack("<HHHIH", sid, count, FIND_DIRECTORY_INFO, 0, 0x02 | 0x08)
                                        + (b"\x00\x00" if self._unicode() else b"\x00"), b"")
            _n, end, _ea, _last = struct.unpack_from("<HHHH", params)
            yield data

    # --- pipelined transfers ---------------------------------------------------------------

    def io_unit(self, write: bool) -> int:
        cap = SMB.CAP_LARGE_WRITEX if write else SMB.CAP_LARGE_READX
        if self.capabilities & cap:
            return IO_UNIT
        return max(512, self._dialects_parameters["MaxBufferSize"] - 128)  # header and parameters

    def send_write(self, tid: int, fid: int, offset: int, data: bytes | memoryview) -> int:
        """One WRITE_ANDX (write-through), laid out and signed here rather than by impacket's
        Structure classes, whose packing copies the payload several times: the payload goes to
        the socket as it is. Returns the request's Mid."""
        self._mid = self._mid % 0xFFFE + 1
        mid = self._mid
        flags2 = self.get_flags()[1] | (SMB.FLAGS2_SMB_SECURITY_SIGNATURE if self._SignatureEnabled else 0)
        n = len(data)
        words = _WRITE_WORDS.pack(14, 0xFF, 0, 0, fid, offset & 0xFFFFFFFF, 0, 1, 0, n >> 16, n & 0xFFFF,
                                  _SMB_HEADER.size + _WRITE_WORDS.size + 1, offset >> 32,
                                  (n + 1) & 0xFFFF)  # large writes: the server goes by DataLength(High)
        header = bytearray(_SMB_HEADER.pack(b"\xffSMB", SMB.SMB_COM_WRITE_ANDX, 0, self.get_flags()[0], flags2, 0,
                                            b"\0" * 8, 0, tid, os.getpid() & 0xFFFF, self._uid, mid))
        head = header + words + b"\x00"  # one pad byte: the data starts at offset 64, 32-bit aligned
        if self._SignatureEnabled:
            seq = self._SignSequenceNumber
            head[14:22] = struct.pack("<q", seq)
            m = hashlib.md5()
            m.update(self._SigningSessionKey)
            m.update(self._SigningChallengeResponse)
            m.update(head)
            m.update(data)
            head[14:22] = m.digest()[:8]
            self._SignSequenceNumber += 2  # the reply takes seq + 1 (impacket counts the same way)
            self._pending_seq[mid] = seq + 1
        frame = struct.pack(">I", len(head) + n)  # NetBIOS session message
        try:
            self._sess._sock.sendmsg([frame + head, data])  # noqa: SLF001 - impacket's socket
        except (OSError, NetBIOSError):
            self.broken = True
            raise
        if self.meter is not None:
            self.meter.sent(1, self.meter_server())
        self._awaited.add(mid)
        return mid

    def receive_write(self, mids: set[int]) -> tuple[int, int]:
        """(Mid, bytes written) of the next WRITE_ANDX reply to one of `mids`."""
        raw = self._raw_reply(SMB.SMB_COM_WRITE_ANDX, mids)
        count, _available, count_high = struct.unpack_from("<HHH", raw, 32 + 1 + 4)  # after WordCount and AndX
        if self.meter is not None:
            self.meter.wrote(count | (count_high << 16), self.meter_server())
        return struct.unpack_from("<H", raw, 30)[0], count | (count_high << 16)

    def send_read(self, tid: int, fid: int, offset: int, length: int) -> int:
        p = self._packet(tid)
        cmd = smb.SMBCommand(SMB.SMB_COM_READ_ANDX)
        cmd["Parameters"] = smb.SMBReadAndX_Parameters()
        params = cmd["Parameters"]
        params["Fid"] = fid
        params["Offset"] = offset & 0xFFFFFFFF
        params["HighOffset"] = offset >> 32
        params["MaxCount"] = length & 0xFFFF
        params["MinCount"] = length & 0xFFFF
        params["_reserved"] = length >> 16  # MaxCountHigh (MS-SMB 2.2.4.2.1)
        params["Remaining"] = 0
        p.addCommand(cmd)
        return self.send(p)

    def receive_read(self, mids: set[int]) -> tuple[int, bytes]:
        """(Mid, data) of the next READ_ANDX reply to one of `mids`."""
        raw = self._raw_reply(SMB.SMB_COM_READ_ANDX, mids)
        # WordCount, AndX (4), Available, DataCompactionMode, Reserved, DataLength, DataOffset, DataLengthHigh
        length, offset, high = struct.unpack_from("<HHH", raw, 32 + 1 + 4 + 6)
        count = length | (high << 16)
        if self.meter is not None:
            self.meter.read(count, self.meter_server())
        return struct.unpack_from("<H", raw, 30)[0], raw[offset:offset + count]


def status_of(exc: SessionError) -> int:
    """The NTSTATUS of an SMB1 error reply (the client asks for NT status codes)."""
    return exc.get_error_code() & 0xFFFFFFFF


def wrap(conn: SignedSMB) -> SMBConnection:
    """The high-level SMBConnection over our client, for impacket's DCE/RPC transport."""
    return SMBConnection(existingConnection=conn)


Callback = Callable[[], None]
