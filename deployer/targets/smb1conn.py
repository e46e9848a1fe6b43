"""One SMB1 (NT LM 0.12) connection to a server, shared by its file and service transports.

The SMB1 case of smbsession.LinkBase (as smbconn.SmbLink is the SMB 2/3 one): what both do
(bounded operations, errors, the account, reconnecting) is the base's; this module has the
impacket calls. impacket waits on its socket with a timeout
(unlike smbprotocol's worker thread), so a per-operation socket timeout bounds every wait:
a hung server is reported after `timeout` seconds without an answer (Windows error 1460),
a killed one at once (64).

Security is never negotiated down silently: signing is required unless the inventory says
`require_signing: false` (and then used only when the server requires it), NTLMv2 unless it
says `allow_ntlmv1: true`. Every signed reply is checked (adapters/impacket_internals.SignedSMB).
A connection whose dialect does not meet the server's is explained from the server's own negotiate answer (smb1probe).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import ClassVar

from ..model.secrets import Secret
from .adapters import impacket_internals as lib
from .base import (ConnectFailed, ConnectionLost, DialectMismatch, SigningUnavailable, TargetError, TransportTimeout,
                   connect_winerror)
from .smb1probe import mismatch, quick
from .smbsession import AuthenticationFailed, LinkBase, LinkOptions  # noqa: F401 - AuthenticationFailed re-exported

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Smb1Options(LinkOptions):
    DIALECT: ClassVar[str] = "smb1"

    allow_ntlmv1: bool = False


class Smb1Link(LinkBase[Smb1Options, int]):
    """The SMB1 session (impacket); what every dialect's link does is smbsession.LinkBase's."""

    def __init__(self, server: str, options: Smb1Options, password: Secret, *, timeout: float,
                 password_source: str = ""):
        super().__init__(server, options, password, timeout=timeout, password_source=password_source)
        self._conn: lib.SignedSMB | None = None
        self._high: lib.SMBConnection | None = None

    # --- the bounded operation --------------------------------------------------------------

    def _ready(self, seconds: float) -> None:
        self.conn.set_timeout(seconds)

    def _poisoned(self, exc: Exception) -> bool:
        return isinstance(exc, lib.SignatureMismatch)  # nothing more from this connection can be trusted

    def _translate(self, exc: Exception, what: str, path: str | None, seconds: float,
                   server: str) -> TargetError | None:
        where = self.options.where
        if isinstance(exc, TargetError):
            return exc
        if isinstance(exc, (lib.NetBIOSTimeout, socket.timeout, TimeoutError)):
            return self._timed_out(what, path, seconds, server)
        if isinstance(exc, lib.SignatureMismatch):
            return ConnectionLost(f"{what}: {exc}: the connection to {where} was dropped (a reply not signed by the "
                                  "server, or altered on the way)", server=server, path=path)
        if isinstance(exc, lib.SessionError):
            status = lib.status_of(exc)
            if status == 0:
                return TargetError(f"{what}: the server answered SMB error class {exc.get_error_class()} code "
                                   f"{exc.get_error_code()}", server=server, path=path)
            return self._status(status, what, path, server)
        if isinstance(exc, (lib.NetBIOSError, ConnectionError, EOFError)):
            return self._lost(what, path, server)
        if isinstance(exc, lib.UnsupportedFeature):  # a reply impacket did not expect
            return TargetError(f"{what}: unexpected answer from {where}: {self._scrub(str(exc))}", server=server,
                               path=path)
        if isinstance(exc, OSError):
            return self._network(exc, what, path, server)
        return None  # a programming error: let it through untouched

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
            cause = exc.args[-1] if exc.args else None
            if isinstance(cause, OSError):  # impacket wraps the connect error: said as SMB 2/3 says it
                raise ConnectFailed(f"connect: cannot connect to {o.where}: {cause.strerror or cause}", server=name,
                                    winerror=connect_winerror(cause)) from None
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
        domain, user = o.logon_parts()
        try:
            # as the SMB 2/3 transport: sign when required, by the inventory (the default) or the server
            conn.log_on(user, self._password.reveal(), domain, ntlmv1=o.allow_ntlmv1 and not extended,
                        sign=o.require_signing or bool(conn.security_mode & lib.SIGNING_REQUIRED))
        except lib.SessionError as exc:
            raise self._status(lib.status_of(exc), "logon", None, name) from None
        except Exception as exc:
            if isinstance(exc, (lib.NetBIOSError, lib.NetBIOSTimeout, OSError)):
                raise
            raise self._logon_failed(str(exc), name) from None
        if conn.isGuestSession():
            raise self._guest(name)

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

    def _connected(self) -> bool:
        return self._conn is not None

    def _logoff(self) -> None:
        self.conn.logoff()

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

    def _connect_tree(self, unc: str) -> int:
        return self.conn.tree(unc)

    def _tree_status(self, exc: Exception) -> int | None:
        return lib.status_of(exc) if isinstance(exc, lib.SessionError) else None
