"""One SMB1 (NT LM 0.12) connection to a server, shared by its file and service transports.

The SMB1 counterpart of smbconn.SmbLink: connected lazily, one operation at a time, each
bounded in time, errors turned into the Windows errors of base.py, and connected afresh
after the connection was lost or timed out. impacket waits on its socket with a timeout
(unlike smbprotocol's worker thread), so a per-operation socket timeout bounds every wait:
a hung server is reported after `timeout` seconds without an answer (Windows error 1460),
a killed one at once (64).

Security is never negotiated down silently: signing is required unless the inventory says
`require_signing: false` (and then used only when the server requires it), NTLMv2 unless it
says `allow_ntlmv1: true`. Every signed reply is checked (adapters/impacket_internals.SignedSMB). A connection whose dialect does not meet the server's is
explained from the server's own negotiate answer (smb1probe).
"""

from __future__ import annotations

import logging
import socket
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ..model.secrets import MASK, Secret
from .adapters import impacket_internals as lib
from .base import ConnectionLost, DialectMismatch, SigningUnavailable, TargetError, TransportTimeout
from .smb1probe import mismatch, quick
from .smbconn import AuthenticationFailed, status_error
from .traffic import Meter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Smb1Options:
    host: str
    port: int
    username: str
    domain: str | None
    require_signing: bool
    allow_ntlmv1: bool

    @property
    def key(self) -> tuple:
        return ("smb1", self.host.casefold(), self.port, (self.domain or "").casefold(), self.username.casefold(),
                self.require_signing, self.allow_ntlmv1)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Smb1Link:
    """A lazily (re)connected SMB1 session to one server; `op()` runs one bounded operation on it."""

    def __init__(self, server: str, options: Smb1Options, password: Secret, *, timeout: float,
                 password_source: str = ""):
        self.server = server
        self.options = options
        self.timeout = timeout
        self._password = password
        self._password_source = password_source
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: lib.SignedSMB | None = None
        self._high: lib.SMBConnection | None = None
        self._trees: dict[str, int] = {}
        self.generation = 0
        self._closed = False
        self.meter = Meter(server)  # round trips and bytes (targets/traffic.py)
        self._op_server = server

    def __repr__(self) -> str:
        return f"Smb1Link({self.server}, {self.options.username}@{self.options.where})"

    # --- the bounded operation --------------------------------------------------------------

    @contextmanager
    def op(self, what: str, path: str | None = None, timeout: float | None = None,
           server: str | None = None) -> Iterator["Smb1Link"]:
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
            try:
                self._ensure(name, seconds)
                self._conn.set_timeout(seconds)  # type: ignore[union-attr]
                yield self
            except Exception as exc:
                err = self._translate(exc, what, path, seconds, name)
                if err is None:
                    raise
                if isinstance(err, (ConnectionLost, TransportTimeout)) or isinstance(exc, lib.SignatureMismatch):
                    self._drop()
                if err is exc:
                    raise
                raise err from (None if isinstance(err, (AuthenticationFailed, DialectMismatch)) else exc)
            except BaseException:
                self._drop()  # interrupted half way through a message: start afresh
                raise
            finally:
                self._depth = 0

    def _translate(self, exc: Exception, what: str, path: str | None, seconds: float,
                   server: str) -> TargetError | None:
        where = self.options.where
        if isinstance(exc, TargetError):
            return exc
        if isinstance(exc, (lib.NetBIOSTimeout, socket.timeout, TimeoutError)):
            return TransportTimeout(f"{what}: no answer from {where} within {seconds:g} s (is the server hung?); "
                                    "the connection was closed and the next operation reconnects",
                                    server=server, path=path)
        if isinstance(exc, lib.SignatureMismatch):
            return ConnectionLost(f"{what}: {exc}: the connection to {where} was dropped (a reply not signed by the "
                                  "server, or altered on the way)", server=server, path=path)
        if isinstance(exc, lib.SessionError):
            status = lib.status_of(exc)
            if status == 0:
                return TargetError(f"{what}: the server answered SMB error class {exc.get_error_class()} code "
                                   f"{exc.get_error_code()}", server=server, path=path)
            return status_error(status, what, server=server, path=path, detail=self._auth_hint(status))
        if isinstance(exc, (lib.NetBIOSError, ConnectionError, EOFError)):
            return ConnectionLost(f"{what}: the connection to {where} was lost (the server closed it or stopped)",
                                  server=server, path=path)
        if isinstance(exc, lib.UnsupportedFeature):  # a reply impacket did not expect
            return TargetError(f"{what}: unexpected answer from {where}: {self._scrub(str(exc))}", server=server,
                               path=path)
        if isinstance(exc, OSError):
            return ConnectionLost(f"{what}: network error talking to {where}: {self._scrub(exc.strerror or str(exc))}",
                                  server=server, path=path)
        return None  # a programming error: let it through untouched

    def _auth_hint(self, status: int) -> str:
        if status not in (0xC000006D, 0xC000006A):
            return ""
        src = f" from {self._password_source}" if self._password_source else ""
        return f"; check the user name {self._account} on {self.options.where} and the password{src}"

    @property
    def _account(self) -> str:
        o = self.options
        return f"{o.domain}\\{o.username}" if o.domain and "\\" not in o.username else o.username

    def _scrub(self, text: str) -> str:
        secret = self._password.reveal()
        return text.replace(secret, MASK) if secret else text

    # --- connection -------------------------------------------------------------------------

    def _ensure(self, name: str, seconds: float) -> None:
        if self._conn is not None and not self._conn.broken:
            return
        self._drop()
        o = self.options
        try:
            conn = lib.SignedSMB(o.host, o.port, seconds)
            conn.meter, conn.meter_server = self.meter, lambda: self._op_server
            self.meter.exchange(1, name)  # the NEGOTIATE, made in the constructor
        except (lib.NetBIOSTimeout, socket.timeout, TimeoutError) as exc:
            # a hung SMB server, or one of another protocol waiting for us to speak first: a quick look
            raise mismatch(name, o.host, o.port, quick(seconds), client="smb1") or TransportTimeout(
                f"connect: no answer from {o.where} within {seconds:g} s", server=name) from exc
        except OSError as exc:
            if isinstance(exc.args[-1] if exc.args else None, OSError):  # impacket wraps the connect error
                reason = exc.args[-1].strerror or str(exc.args[-1])
                raise ConnectionLost(f"connect: cannot connect to {o.where}: {reason}", server=name) from None
            raise self._dialect_error(name, seconds) or ConnectionLost(
                f"connect: the connection to {o.where} was lost while negotiating", server=name) from exc
        except Exception as exc:  # an empty, refused or unparsable negotiation: ask the server why
            raise self._dialect_error(name, seconds) or TargetError(
                f"connect: {o.where} did not negotiate NT LM 0.12 ({type(exc).__name__}: {self._scrub(str(exc))})",
                server=name) from None
        try:
            self._log_on(conn, name)
        except BaseException:
            try:
                conn.close_session()
            except Exception:  # noqa: BLE001 - the logon's error is the one to report
                pass
            raise
        self._conn = conn
        self._high = lib.wrap(conn)
        self._trees = {}
        self.generation += 1

    def _dialect_error(self, name: str, seconds: float) -> DialectMismatch | None:
        return mismatch(name, self.options.host, self.options.port, seconds, client="smb1")

    def _log_on(self, conn: lib.SignedSMB, name: str) -> None:
        o = self.options
        offered = bool(conn.security_mode & (lib.SIGNING_ENABLED | lib.SIGNING_REQUIRED))
        if o.require_signing and not offered:
            raise SigningUnavailable(f"{o.where} does not offer SMB1 signing, which the inventory requires (the "
                                     "default): enable signing on the server (Windows NT 4.0 SP3 and later: "
                                     "EnableSecuritySignature) or set require_signing: false for it", server=name)
        extended = bool(conn.capabilities & lib.CAP_EXTENDED_SECURITY)
        if not extended and not o.allow_ntlmv1:
            raise DialectMismatch(f"{o.where} offers no extended security (NTLMSSP), as Windows NT 4.0 does not: "
                                  "the SMB1 client can log on to it only with LM/NTLMv1 responses; set "
                                  "allow_ntlmv1: true for it in the inventory to allow that", server=name)
        if not extended and offered and not conn.security_mode & lib.SIGNING_REQUIRED and o.require_signing:
            raise SigningUnavailable(f"{o.where} offers no extended security, and the SMB1 client signs only "
                                     "sessions set up with it; set require_signing: false for it", server=name)
        domain = o.domain or ""
        user = o.username
        if "\\" in user:
            domain, user = user.split("\\", 1)
        try:
            # as the SMB 2/3 transport: sign when required, by the inventory (the default) or the server
            conn.log_on(user, self._password.reveal(), domain, ntlmv1=o.allow_ntlmv1 and not extended,
                        sign=o.require_signing or bool(conn.security_mode & lib.SIGNING_REQUIRED))
        except lib.SessionError as exc:
            status = lib.status_of(exc)
            raise status_error(status, "logon", server=name, path=None, detail=self._auth_hint(status)) from None
        except Exception as exc:
            if isinstance(exc, (lib.NetBIOSError, lib.NetBIOSTimeout, OSError)):
                raise
            raise AuthenticationFailed(f"logon to {o.where} as {self._account} failed ({self._scrub(str(exc))})"
                                       f"{self._auth_hint(0xC000006D)}", server=name) from None
        if conn.isGuestSession():
            raise AuthenticationFailed(f"logon to {o.where} as {self._account} was mapped to the guest account; "
                                       "check the user name and password", server=name)

    def _drop(self) -> None:
        conn, self._conn, self._high = self._conn, None, None
        self._trees = {}
        if conn is not None:
            try:
                conn.close_session()
            except Exception:  # the connection is being abandoned; nothing to report
                log.debug("closing an abandoned SMB1 connection failed", exc_info=True)

    def abandon(self) -> None:
        """Drop the connection (replies still in flight): the next operation connects again."""
        self._drop()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                if self._conn is not None:
                    with self.op("disconnect"):
                        self._conn.logoff()
            except TargetError:
                pass
            finally:
                self._drop()
                self._closed = True

    def is_current(self, generation: int) -> bool:
        return self.generation == generation and self._conn is not None and not self._conn.broken

    @property
    def conn(self) -> lib.SignedSMB:
        assert self._conn is not None, "use inside op()"
        return self._conn

    @property
    def high(self) -> lib.SMBConnection:
        assert self._high is not None, "use inside op()"
        return self._high

    @property
    def signed(self) -> bool:
        return self._conn is not None and self._conn.signing_active

    def tree(self, share: str) -> int:
        key = share.casefold()
        if key not in self._trees:
            try:
                self._trees[key] = self.conn.tree(rf"\\{self.options.host}\{share}")
            except lib.SessionError as exc:
                if lib.status_of(exc) == 0xC00000CC:
                    raise TargetError(f"there is no share {share} on {self.options.where} (check files: share in the "
                                      "inventory)", server=self.server, winerror=67) from None
                raise
        return self._trees[key]
