"""One SMB 2/3 connection to a server (smbprotocol), shared by its file and service transports.

The SMB 2/3 case of smbsession.LinkBase (smb1conn.Smb1Link is the SMB1 one): the bounded
operation, the NTSTATUS table, the account and the logon checks are the base's, shared with
SMB1. smbprotocol does the protocol: negotiation, authentication, signing, encryption,
message ids and credits. This module adds what deployer needs around it:

- **Every operation bounded in time.** smbprotocol waits for responses without a deadline
  (`Connection.receive(timeout=None)` in Open, TreeConnect, Session and in pypsexec's SCMRApi),
  and its worker thread declares a silent server dead only after two unanswered 600 s echo
  rounds: about 20 minutes against a hung (SIGSTOPped) smbd. `receive(timeout=...)` would bound
  only the waits we issue ourselves, not the library's, nor a send blocked on the full TCP
  window of a stopped server. So each operation runs under a watchdog: when its deadline
  passes, the socket is shut down, which wakes every waiter at once (the worker reads EOF and
  releases all outstanding requests; a blocked send fails with EPIPE), and the operation
  raises TransportTimeout. The next operation connects again.
- **Errors as Windows errors**: smbprotocol's exceptions -> the TargetError classes of base.py
  (NTSTATUS through smbsession.status_error).
- **Compound requests** (open + query + close in one round trip) and **pipelined transfers**
  (writes built by smbfast.py).

What this needs of smbprotocol beyond its public API (the raw socket, the credit window,
the worker's state) goes through adapters/smbprotocol_internals.py.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator

from smbprotocol.connection import Connection, Request, SMB2Echo
from smbprotocol.exceptions import SMBAuthenticationError, SMBConnectionClosed, SMBException, SMBResponseException
from smbprotocol.open import Open, SMB2ReadResponse, SMB2WriteResponse
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from ..model.secrets import Secret
from .adapters import smbprotocol_internals as internals
from .base import ConnectFailed, TargetError, connect_winerror
from .smbfast import PAYLOAD_UNIT, FastWriter
from .smbsession import (  # noqa: F401 - the status table's names, re-exported: this module's before the split
    END_OF_FILE,
    MISSING,
    NOT_A_DIRECTORY,
    AuthenticationFailed,
    LinkBase,
    LinkOptions,
    status_error,
    status_name,
)

log = logging.getLogger(__name__)

IO_SIZE = 4 << 20  # bytes per READ/WRITE request: large enough to amortise the per-request cost
IN_FLIGHT = 8  # requests of a transfer outstanding at once
CREDIT_TARGET = 768  # credits to hold: IN_FLIGHT requests of IO_SIZE need 512


@dataclass(frozen=True)
class SmbOptions(LinkOptions):
    DIALECT: ClassVar[str] = "smb"

    encrypt: bool = False


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


class SmbLink(LinkBase[SmbOptions, TreeConnect]):
    """The SMB 2/3 session (smbprotocol); what every dialect's link does is smbsession.LinkBase's."""

    def __init__(self, server: str, options: SmbOptions, password: Secret, *, timeout: float,
                 password_source: str = ""):
        super().__init__(server, options, password, timeout=timeout, password_source=password_source)
        self._watch = _Watchdog(self._expire, server)
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._echo: Request | None = None  # the credit ECHO sent on connecting, answered with the first tree connect

    # --- the bounded operation --------------------------------------------------------------

    def _begin(self, seconds: float) -> None:
        self._watch.arm(seconds)

    def _end(self) -> None:
        self._watch.disarm()
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
            return self._timed_out(what, path, seconds, server)
        if isinstance(exc, TargetError):
            return exc
        if isinstance(exc, SMBResponseException):
            return self._status(exc.status, what, path, server)
        if isinstance(exc, SMBAuthenticationError):
            return self._logon_failed(str(exc), server, what)
        # EBADF: a pipelined send found the socket the library's receiver closed when the link dropped
        if isinstance(exc, (SMBConnectionClosed, ConnectionError)) or (isinstance(exc, OSError)
                                                                       and exc.errno in (errno.EBADF, errno.ENOTCONN)):
            return self._lost(what, path, server)
        failed = internals.connect_failure(exc)
        if failed is not None:
            cause, reason = failed
            return ConnectFailed(f"{what}: cannot connect to {where}: {self._scrub(reason)}", server=server,
                                 path=path, winerror=connect_winerror(cause))
        if isinstance(exc, OSError):
            return self._network(exc, what, path, server)
        if isinstance(exc, SMBException):
            return TargetError(f"{what}: {self._scrub(str(exc))}", server=server, path=path)
        return None  # a programming error: let it through untouched

    # --- connection -------------------------------------------------------------------------

    def _ensure(self, name: str, seconds: float) -> None:
        if internals.alive(self._conn):
            return
        self._drop()
        o = self.options
        conn = Connection(uuid.uuid4(), o.host, o.port, require_signing=o.require_signing)
        self._conn = conn  # before connecting: the watchdog reaches the socket through it
        internals.meter_connection(conn, self.meter, lambda: self._op_server)
        try:
            conn.connect(timeout=seconds)
            internals.no_delay(conn)
        except Exception as exc:
            # negotiation failed: an SMB1-only server (it closes the connection) or no SMB at all? ask it
            from .smb1probe import mismatch, quick

            hung = internals.is_connect_timeout(exc) or self._watch.fired  # then only a quick look: it may be a hung SMB server
            timeout = quick(seconds) if hung else seconds
            raise mismatch(name, o.host, o.port, timeout, client="smb2") or exc
        session = Session(conn, username=self._account, password=self._password.reveal(),
                          require_encryption=o.encrypt)
        try:
            session.connect()
        except SMBException as exc:
            if internals.guest_refused(exc):  # signing or encryption required: smbprotocol refuses the guest
                raise self._guest(name) from None
            raise
        if internals.is_guest(session):  # signing not required: smbprotocol takes the guest session as it is
            raise self._guest(name)
        self._session = session
        self.generation += 1
        # A wide credit window lets transfers keep several large requests in flight: asked with an
        # ECHO whose answer is taken with the first tree connect's (one round trip for both)
        self._echo = conn.send(SMB2Echo(), sid=session.session_id, credit_request=CREDIT_TARGET)

    def _drop(self) -> None:
        conn, self._conn, self._session, self._echo = self._conn, None, None, None
        self._trees = {}
        if conn is not None and conn.transport is not None:
            try:
                conn.disconnect(close=False)
            except Exception:  # the connection is being abandoned; nothing to report
                log.debug("disconnecting an abandoned SMB connection failed", exc_info=True)

    def _connected(self) -> bool:
        conn = self._conn
        return conn is not None and conn.transport is not None and conn.transport.connected

    def _logoff(self) -> None:
        # LOGOFF alone: the server closes the session's tree connects and opens with it (MS-SMB2
        # 3.3.5.6), where smbprotocol's disconnect(close=True) waits for each tree's own first
        conn = self.connection
        for session in list(conn.session_table.values()):
            session.disconnect(close=False, timeout=self.timeout)
        conn.disconnect(close=False)

    def _closed_hook(self) -> None:
        self._watch.close()

    def is_current(self, generation: int) -> bool:
        """Whether the session of that generation is still connected (its handles still valid)."""
        return self.generation == generation and self._connected()

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

    def _connect_tree(self, unc: str) -> TreeConnect:
        """The tree connect to `unc`, with those of the other shares the site reaches through this
        session (expect()) sent in the same round trip: three servers that are one machine cost
        one round trip for their shares, not three. A sibling share that fails is not kept: its
        own server asks again when it connects, and gets its own error there."""
        host = "\\\\" + self.options.host + "\\"
        siblings = [rf"{host}{s}" for s in self._expected
                    if s.casefold() not in self._trees and rf"{host}{s}".casefold() != unc.casefold()]
        trees = [TreeConnect(self.session, u) for u in [unc, *siblings]]
        try:
            with self.signed_tree_connects():
                requests = [internals.send_tree_connect(t) for t in trees]
            errors: list[Exception | None] = []
            for t, request in zip(trees, requests):  # every answer taken, even after a failure
                try:
                    internals.finish_tree_connect(t, request)
                    errors.append(None)
                except SMBResponseException as exc:
                    errors.append(exc)
        finally:
            self._take_echo()
        if errors[0] is not None:
            raise errors[0]
        for t, err in zip(trees[1:], errors[1:]):
            if err is None:
                self._trees[t.share_name.rpartition("\\")[2].casefold()] = t
        return trees[0]

    def _take_echo(self) -> None:
        echo, self._echo = self._echo, None
        if echo is not None:
            self.connection.receive(echo, timeout=self._op_timeout)

    def _tree_status(self, exc: Exception) -> int | None:
        return exc.status if isinstance(exc, SMBResponseException) else None

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

