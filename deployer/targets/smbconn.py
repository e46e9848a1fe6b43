"""One SMB 2/3 connection to a server (smbprotocol), shared by its file and service transports.

smbprotocol does the protocol: negotiation, authentication, signing, encryption, message ids
and credits. This module adds what deployer needs around it:

- **Every operation bounded in time.** smbprotocol waits for responses without a deadline
  (`Connection.receive(timeout=None)` in Open, TreeConnect, Session and in pypsexec's SCMRApi),
  and its worker thread declares a silent server dead only after two unanswered 600 s echo
  rounds: about 20 minutes against a hung (SIGSTOPped) smbd. `receive(timeout=...)` would bound
  only the waits we issue ourselves, not the library's, nor a send blocked on the full TCP
  window of a stopped server. So each operation runs under a watchdog: when its deadline
  passes, the socket is shut down, which wakes every waiter at once (the worker reads EOF and
  releases all outstanding requests; a blocked send fails with EPIPE), and the operation
  raises TransportTimeout. The next operation connects again.
- **Errors as Windows errors**: NTSTATUS -> the TargetError classes of base.py.
- **Compound requests** (open + query + close in one round trip) and **pipelined transfers**
  (writes built by smbfast.py).

What this needs of smbprotocol beyond its public API (the raw socket, the credit window,
the worker's state) goes through adapters/smbprotocol_internals.py.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from smbprotocol.connection import Connection, Request
from smbprotocol.exceptions import SMBAuthenticationError, SMBConnectionClosed, SMBException, SMBResponseException
from smbprotocol.header import NtStatus
from smbprotocol.open import Open, SMB2ReadResponse, SMB2WriteResponse
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from ..model.secrets import MASK, Secret
from .adapters import smbprotocol_internals as internals
from .base import (
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    DiskFull,
    NetworkError,
    NotFound,
    PathNotFound,
    SharingViolation,
    TargetError,
    TransportTimeout,
    connect_winerror,
)
from .smbfast import PAYLOAD_UNIT, FastWriter
from .traffic import Meter

log = logging.getLogger(__name__)

IO_SIZE = 4 << 20  # bytes per READ/WRITE request: large enough to amortise the per-request cost
IN_FLIGHT = 8  # requests of a transfer outstanding at once
CREDIT_TARGET = 768  # credits to hold: IN_FLIGHT requests of IO_SIZE need 512


# NTSTATUS -> (error class, Windows error code or None for the class's own, message)
_STATUS: dict[int, tuple[type[TargetError], int | None, str]] = {
    0xC0000043: (SharingViolation, None,
                 "the process cannot access the file because it is being used by another process"),
    0xC0000054: (SharingViolation, 33, "another process has locked a portion of the file"),
    0xC0000022: (AccessDenied, None, "access is denied"),
    # Windows answers a replace or delete of a running program's image this way too
    0xC0000121: (AccessDenied, None, "access is denied: the file cannot be deleted (read-only, or the image of a "
                                     "running program or service?)"),
    0xC00000BA: (AccessDenied, None, "access is denied (it is a folder, not a file)"),
    0xC0000056: (AccessDenied, None, "access is denied (the file is being deleted)"),
    0xC00000A2: (AccessDenied, 19, "the media is write protected"),
    0xC0000034: (NotFound, None, "the system cannot find the file specified"),
    0xC000000F: (NotFound, None, "the system cannot find the file specified"),  # NO_SUCH_FILE
    0xC000003A: (PathNotFound, None, "the system cannot find the path specified"),
    0xC0000103: (PathNotFound, None, "the system cannot find the path specified (a folder on the way is a file)"),
    0xC0000035: (AlreadyExists, None, "cannot create a file when that file already exists"),
    0xC000007F: (DiskFull, None, "there is not enough space on the disk"),
    0xC0000044: (DiskFull, 1295, "the disk quota is exceeded"),
    0xC0000101: (TargetError, 145, "the directory is not empty"),
    0xC0000033: (TargetError, 123, "the file name, directory name, or volume label syntax is incorrect"),
    0xC00000B5: (TransportTimeout, None, "the server reported an I/O timeout"),
    0xC00000CC: (TargetError, 67, "the network name cannot be found (no such share on the server)"),
    0xC00000C9: (ConnectionLost, None, "the specified network name is no longer available"),
    0xC0000203: (ConnectionLost, None, "the server closed the session"),
    0xC000006D: (AuthenticationFailed, None, "logon failure: unknown user name or bad password"),
    0xC000006A: (AuthenticationFailed, None, "logon failure: unknown user name or bad password"),
    0xC000006E: (AuthenticationFailed, 1327, "logon failure: account restriction"),
    0xC0000071: (AuthenticationFailed, 1330, "logon failure: the password has expired"),
    0xC0000072: (AuthenticationFailed, 1331, "logon failure: the account is disabled"),
    0xC0000224: (AuthenticationFailed, 1907, "logon failure: the password must be changed"),
    0xC0000234: (AuthenticationFailed, 1909, "logon failure: the account is locked out"),
}
_STATUS_NAMES = {v: k for k, v in vars(NtStatus).items() if k.startswith("STATUS_") and isinstance(v, int)}

# Status codes with which a missing file or folder answers (stat() turns them into None).
MISSING = frozenset({0xC0000034, 0xC000003A, 0xC0000103, 0xC000000F})
NOT_A_DIRECTORY = 0xC0000103
END_OF_FILE = 0xC0000011


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"NTSTATUS 0x{status:08X}")


@dataclass(frozen=True)
class SmbOptions:
    host: str
    port: int
    username: str
    domain: str | None
    require_signing: bool
    encrypt: bool

    @property
    def key(self) -> tuple:
        """Transports whose options give the same key share one connection."""
        return ("smb", self.host.casefold(), self.port, (self.domain or "").casefold(), self.username.casefold(),
                self.require_signing, self.encrypt)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class _Watchdog:
    """Calls `expire` once an armed deadline passes: one daemon thread per connection."""

    def __init__(self, expire: Callable[[], None], name: str):
        self._expire = expire
        self._name = name
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None
        self.fired = False

    def arm(self, seconds: float) -> None:
        with self._cond:
            self.fired = False
            self._deadline = time.monotonic() + seconds
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"smb-deadline-{self._name}", daemon=True)
                self._thread.start()
            self._cond.notify()

    def extend(self, seconds: float) -> None:
        """The server answered: the deadline moves (the thread finds out when it next wakes up)."""
        with self._cond:
            if self._deadline is not None:
                self._deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        with self._cond:
            self._deadline = None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._deadline is None or self._deadline > time.monotonic()):
                    wait = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
                    self._cond.wait(wait)
                if self._closed:
                    return
                self._deadline = None
                self.fired = True
            try:
                self._expire()
            except Exception:  # the watchdog must survive whatever the socket says
                log.debug("shutting down an expired SMB connection failed", exc_info=True)


class SmbLink:
    """A lazily (re)connected SMB session to one server; `op()` runs one bounded operation on it."""

    def __init__(self, server: str, options: SmbOptions, password: Secret, *, timeout: float,
                 password_source: str = ""):
        self.server = server  # the inventory's name for the server, for messages
        self.options = options
        self.timeout = timeout
        self._password = password
        self._password_source = password_source
        self._lock = threading.RLock()
        self._depth = 0
        self._watch = _Watchdog(self._expire, server)
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._trees: dict[str, TreeConnect] = {}
        self.generation = 0  # bumped at each new session: handles opened on an older one are gone
        self._closed = False
        self._op_timeout = timeout
        self._op_server = server
        self.meter = Meter(server)  # round trips and bytes, by the server whose operation runs

    def __repr__(self) -> str:
        return f"SmbLink({self.server}, {self.options.username}@{self.options.where})"

    # --- the bounded operation --------------------------------------------------------------

    @contextmanager
    def op(self, what: str, path: str | None = None, timeout: float | None = None,
           server: str | None = None) -> Iterator["SmbLink"]:
        """Run one operation: connected, serialised, bounded by `timeout`, errors translated.

        `server` names the server in messages (one link may serve several inventory servers
        that are one machine). A nested op runs under the outer one's deadline.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            name = self._op_server = server or self.server
            if self._closed:
                raise ConnectionLost(f"{what}: the connection to {self.options.where} was closed", server=name,
                                     path=path)
            seconds = timeout or self.timeout
            self._depth = 1
            self._op_timeout = seconds
            self._watch.arm(seconds)
            try:
                self._ensure()
                yield self
            except Exception as exc:
                err = self._translate(exc, what, path, seconds, name)
                if isinstance(err, NetworkError):
                    self._drop()  # the next operation starts from a fresh connection
                if err is None or err is exc:
                    raise
                if isinstance(err, AuthenticationFailed):
                    raise err from None  # the library's exception chain carries nothing the user needs here
                raise err from exc
            except BaseException:
                self._drop()  # interrupted (Ctrl-C) maybe half way through a message: start afresh
                raise
            finally:
                self._watch.disarm()
                self._depth = 0
                if self._watch.fired:
                    self._drop()  # the socket is shut down; the next operation connects again

    def progress(self) -> None:
        """Called by long operations whenever the server answers: the deadline is per answer."""
        self._watch.extend(self._op_timeout)

    def _expire(self) -> None:
        # Tcp.close() would wait for the send lock that a sender blocked on a full TCP window holds;
        # shutting the raw socket down wakes that sender (EPIPE) and the receiving worker (EOF).
        internals.shutdown_socket(self._conn)

    def _translate(self, exc: Exception, what: str, path: str | None, seconds: float,
                   server: str) -> TargetError | None:
        where = self.options.where
        if self._watch.fired or internals.is_connect_timeout(exc):
            return TransportTimeout(f"{what}: no answer from {where} within {seconds:g} s (is the server hung?); "
                                    "the connection was closed and the next operation reconnects",
                                    server=server, path=path)
        if isinstance(exc, TargetError):
            return exc
        if isinstance(exc, SMBResponseException):
            return status_error(exc.status, what, server=server, path=path, detail=self._auth_hint(exc.status))
        if isinstance(exc, SMBAuthenticationError):
            return AuthenticationFailed(f"{what}: logon to {where} as {self._account} failed "
                                        f"({self._scrub(str(exc))}){self._auth_hint(0xC000006D)}", server=server)
        if isinstance(exc, (SMBConnectionClosed, ConnectionError)):
            return ConnectionLost(f"{what}: the connection to {where} was lost (the server closed it or stopped)",
                                  server=server, path=path)
        failed = internals.connect_failure(exc)
        if failed is not None:
            cause, reason = failed
            return ConnectFailed(f"{what}: cannot connect to {where}: {self._scrub(reason)}", server=server,
                                 path=path, winerror=connect_winerror(cause))
        if isinstance(exc, OSError):
            return ConnectionLost(f"{what}: network error talking to {where}: {self._scrub(exc.strerror or str(exc))}",
                                  server=server, path=path)
        if isinstance(exc, SMBException):
            return TargetError(f"{what}: {self._scrub(str(exc))}", server=server, path=path)
        return None  # a programming error: let it through untouched

    @property
    def _account(self) -> str:
        o = self.options
        qualified = "\\" in o.username or "@" in o.username  # DOMAIN\user or user@realm already
        return f"{o.domain}\\{o.username}" if o.domain and not qualified else o.username

    def _auth_hint(self, status: int) -> str:
        if _STATUS.get(status, (None,))[0] is not AuthenticationFailed:
            return ""
        src = f" from {self._password_source}" if self._password_source else ""
        return f"; check the user name {self._account} on {self.options.where} and the password{src}"

    def _scrub(self, text: str) -> str:
        secret = self._password.reveal()
        return text.replace(secret, MASK) if secret else text

    # --- connection -------------------------------------------------------------------------

    def _ensure(self) -> None:
        if internals.alive(self._conn):
            return
        self._drop()
        o = self.options
        conn = Connection(uuid.uuid4(), o.host, o.port, require_signing=o.require_signing)
        self._conn = conn  # before connecting: the watchdog reaches the socket through it
        internals.meter_connection(conn, self.meter, lambda: self._op_server)
        try:
            conn.connect(timeout=self._op_timeout)
        except Exception as exc:
            # negotiation failed: an SMB1-only server (it closes the connection) or no SMB at all? ask it
            from .smb1probe import mismatch, quick

            hung = internals.is_connect_timeout(exc) or self._watch.fired  # then only a quick look: it may be a hung SMB server
            timeout = quick(self._op_timeout) if hung else self._op_timeout
            raise mismatch(self._op_server, o.host, o.port, timeout, client="smb2") or exc
        session = Session(conn, username=self._account, password=self._password.reveal(),
                          require_encryption=o.encrypt)
        session.connect()
        self._session = session
        self.generation += 1
        # A wide credit window lets transfers keep several large requests in flight.
        conn.echo(sid=session.session_id, timeout=self._op_timeout, credit_request=CREDIT_TARGET)

    def _drop(self) -> None:
        conn, self._conn, self._session = self._conn, None, None
        self._trees = {}
        if conn is not None and conn.transport is not None:
            try:
                conn.disconnect(close=False)
            except Exception:  # the connection is being abandoned; nothing to report
                log.debug("disconnecting an abandoned SMB connection failed", exc_info=True)

    def close(self) -> None:
        """Log off and disconnect (bounded like any operation); the link cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._conn is not None and self._conn.transport is not None and self._conn.transport.connected:
                    with self.op("disconnect"):
                        self._conn.disconnect(close=True, timeout=self.timeout)
            except TargetError:
                pass
            finally:
                self._drop()
                self._closed = True
                self._watch.close()

    def is_current(self, generation: int) -> bool:
        """Whether the session of that generation is still connected (its handles still valid)."""
        conn = self._conn
        return (self.generation == generation and conn is not None and conn.transport is not None
                and conn.transport.connected)

    @property
    def connection(self) -> Connection:
        assert self._conn is not None, "use inside op()"
        return self._conn

    @property
    def session(self) -> Session:
        assert self._session is not None, "use inside op()"
        return self._session

    @contextmanager
    def signed_tree_connects(self) -> Iterator[None]:
        """Sign the TREE_CONNECTs sent meanwhile, whatever `require_signing` says.

        SMB 3.1.1 servers refuse an unsigned TREE_CONNECT (MS-SMB2 3.3.5.7), but smbprotocol
        signs only when signing is required (jborean93/smbprotocol#290): with require_signing
        off, the tree connects are signed and the rest goes as the user chose.
        """
        session = self.session
        force = (not session.signing_required and not session.encrypt_data and session.signing_key is not None
                 and self.connection.dialect >= 0x0311)
        with internals.signing_forced(session, force):
            yield

    def tree(self, share: str) -> TreeConnect:
        """The tree connect to `share` (inside op())."""
        key = share.casefold()
        tree = self._trees.get(key)
        if tree is None:
            tree = TreeConnect(self.session, rf"\\{self.options.host}\{share}")
            try:
                with self.signed_tree_connects():
                    tree.connect()
            except SMBResponseException as exc:
                if exc.status == 0xC00000CC:
                    raise TargetError(f"there is no share {share} on {self.options.where} "
                                      "(check files: share in the inventory)", server=self._op_server,
                                      winerror=67) from None
                raise
            self._trees[key] = tree
        return tree

    # --- requests ---------------------------------------------------------------------------

    def compound(self, tree: TreeConnect, actions: list[tuple[Any, Callable[[Request], Any]]],
                 related: bool = True) -> list[Any]:
        """Send requests in one message; each result is its unpacked response or the status error.

        Every response is received even after a failure: smbprotocol keeps unreceived ones forever.
        """
        conn = self.connection
        sid, tid = self.session.session_id, tree.tree_connect_id
        if len(actions) == 1:
            requests = [conn.send(actions[0][0], sid, tid)]
        else:
            requests = conn.send_compound([m for m, _ in actions], sid, tid, related=related)
        return self._receive_all(actions, requests)

    def pipeline(self, tree: TreeConnect, actions: list[tuple[Any, Callable[[Request], Any]]]) -> list[Any]:
        """Send requests as separate messages without waiting, then take the answers in order.

        For requests the server may answer asynchronously: Samba allows that only to the last
        request of a compound (it fails the others with STATUS_INTERNAL_ERROR).
        """
        requests = [self.send(tree, m) for m, _ in actions]
        return self._receive_all(actions, requests)

    def _receive_all(self, actions: list[tuple[Any, Callable[[Request], Any]]], requests: list[Request]) -> list[Any]:
        results: list[Any] = []
        for (_, unpack), req in zip(actions, requests):
            try:
                results.append(unpack(req))
            except SMBResponseException as exc:
                results.append(exc)
        self.progress()
        return results

    def send(self, tree: TreeConnect, message: Any, *, credits: int | None = None) -> Request:
        return self.connection.send(message, self.session.session_id, tree.tree_connect_id,
                                    credit_request=credits)

    def credits_to_ask(self, charge: int) -> int:
        """Credits to request with a message of `charge`: replace them, and top the window up."""
        available = internals.available_credits(self.connection)
        return charge + max(0, min(256, CREDIT_TARGET - available))

    def available_credits(self) -> int:
        return internals.available_credits(self.connection)

    # --- pipelined transfers ----------------------------------------------------------------

    def write_stream(self, tree: TreeConnect, fh: Open, chunks: Iterable[bytes], offset: int = 0) -> int:
        """Write the chunks at `offset` with several WRITE requests in flight; returns the bytes written."""
        conn = self.connection
        size = max(PAYLOAD_UNIT, min(IO_SIZE, conn.max_write_size))
        if isinstance(chunks, (list, tuple)):  # a known, maybe small, amount (a journal line): a buffer to fit
            size = min(size, max(1, sum(len(c) for c in chunks)))
        writer = FastWriter(self, tree, fh, size) if FastWriter.usable(self, tree) else None
        buf = writer.buf if writer is not None else bytearray(size)
        payload = memoryview(buf)[FastWriter.FIXED:] if writer is not None else memoryview(buf)
        pending: deque[tuple[Request, int]] = deque()
        fill = 0
        written = 0

        def reap() -> None:
            nonlocal written
            req, expected = pending.popleft()
            resp = conn.receive(req)
            got = SMB2WriteResponse()
            got.unpack(resp["data"].get_value())
            count = got["count"].get_value()
            if count != expected:
                raise TargetError(f"the server wrote {count} of {expected} bytes", server=self.server,
                                  path=fh.file_name)
            written += count
            self.meter.wrote(count, self._op_server)
            self.progress()

        def send(total: int) -> None:
            """Send payload[:total]; the buffer is free again on return (sendall has copied it)."""
            nonlocal offset
            start = 0
            while start < total:
                n = total - start
                charge = (n - 1) // PAYLOAD_UNIT + 1
                while pending and (len(pending) >= IN_FLIGHT or self.available_credits() < charge):
                    reap()
                if self.available_credits() < charge:  # a stingy server: send what its credits allow
                    n = max(1, self.available_credits()) * PAYLOAD_UNIT
                    charge = (n - 1) // PAYLOAD_UNIT + 1
                if writer is not None:
                    req = writer.send(start, n, offset)
                else:
                    msg, _ = fh.write(bytes(payload[start:start + n]), offset, send=False)
                    req = self.send(tree, msg, credits=self.credits_to_ask(charge))
                pending.append((req, n))
                offset += n
                start += n

        for chunk in chunks:
            mv = memoryview(chunk).cast("B")
            while mv:
                take = min(len(mv), size - fill)
                payload[fill:fill + take] = mv[:take]
                fill += take
                mv = mv[take:]
                if fill == size:
                    send(fill)
                    fill = 0
        if fill:
            send(fill)
        while pending:
            reap()
        return written

    def read_requests(self, tree: TreeConnect, fh: Open, size: int, chunk: int,
                      start: int = 0) -> Iterator[Callable[[], bytes]]:
        """READ requests covering [start, size), several in flight; yields one receiver per request, in order."""
        conn = self.connection
        step = max(PAYLOAD_UNIT, min(chunk, IO_SIZE, conn.max_read_size))
        pending: deque[Request] = deque()
        offset = start

        def receive(req: Request) -> bytes:
            resp = conn.receive(req)
            got = SMB2ReadResponse()
            got.unpack(resp["data"].get_value())
            self.progress()
            data = got["buffer"].get_value()
            self.meter.read(len(data), self._op_server)
            return data

        try:
            while offset < size or pending:
                while offset < size and len(pending) < IN_FLIGHT:
                    length = min(step, size - offset)
                    charge = (length - 1) // PAYLOAD_UNIT + 1
                    if pending and self.available_credits() < charge:
                        break
                    msg, _ = fh.read(offset, length, send=False)
                    pending.append(self.send(tree, msg, credits=self.credits_to_ask(charge)))
                    offset += length
                req = pending.popleft()
                yield lambda req=req: receive(req)
        finally:
            for req in pending:  # abandoned early: take the answers still due, or smbprotocol keeps them
                try:
                    conn.receive(req)
                except Exception:  # noqa: BLE001 - the caller's error (or the end of the connection) matters
                    break


def status_error(status: int, what: str, *, server: str | None, path: str | None, detail: str = "",
                 override: dict[int, tuple[type[TargetError], str]] | None = None) -> TargetError:
    """The TargetError for an NTSTATUS the server answered."""
    if override and status in override:
        cls, message = override[status]
        return cls(f"{what}: {message}", server=server, path=path)
    if status in _STATUS:
        cls, winerror, message = _STATUS[status]
        return cls(f"{what}: {message}{detail}", server=server, path=path, winerror=winerror)
    return TargetError(f"{what}: the server answered {status_name(status)} (0x{status:08X}){detail}", server=server,
                       path=path)
