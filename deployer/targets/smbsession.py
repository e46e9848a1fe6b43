"""What an SMB session is, whichever dialect carries it: SMB 2/3 (smbconn.py, smbprotocol) and
SMB1 (smb1conn.py, impacket) are two cases of this one base.

Both links are connected lazily, run one operation at a time (`op()`), bound each in time,
turn the server's NTSTATUS into the Windows errors of base.py (one table, `status_error`),
name the account the same way (`DOMAIN\\user`, or `user@realm` as given), hint at the
password's source on a logon failure, refuse a logon the server mapped to the guest account,
keep the password out of every message, and connect afresh after a lost or timed-out
connection. A dialect supplies only its library calls: `_ensure` (connect and log on),
`_translate` (its exceptions), `_drop`, `_logoff`, `_connect_tree`, and the hooks around an
operation (`_begin`, `_end`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Generic, Iterator, TypeVar

from smbprotocol.header import NtStatus  # the names only: NTSTATUS is one table, whichever dialect answers

from ..model.secrets import MASK, Secret
from .base import (
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    ConnectionLost,
    DialectMismatch,
    DiskFull,
    NetworkError,
    NotFound,
    PathNotFound,
    SharingViolation,
    TargetError,
    TransportTimeout,
)
from .traffic import Meter

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
}

# A refused logon (AuthenticationFailed, "logon failure: ...", and the hint at the password's source):
# NTSTATUS -> (Windows error code or None for 1326, what the failure is)
_LOGON = {
    0xC000006D: (None, "unknown user name or bad password"), 0xC000006A: (None, "unknown user name or bad password"),
    0xC000006E: (1327, "account restriction"), 0xC0000071: (1330, "the password has expired"),
    0xC0000072: (1331, "the account is disabled"), 0xC0000224: (1907, "the password must be changed"),
    0xC0000234: (1909, "the account is locked out"),
}
_STATUS.update({status: (AuthenticationFailed, code, f"logon failure: {what}") for status, (code, what) in _LOGON.items()})

# Status codes with which a missing file or folder answers (stat() turns them into None).
MISSING = frozenset({0xC0000034, 0xC000003A, 0xC0000103, 0xC000000F})
NOT_A_DIRECTORY = 0xC0000103
END_OF_FILE = 0xC0000011
NO_MORE_FILES = 0x80000006
BAD_NETWORK_NAME = 0xC00000CC
LOGON_FAILURE = 0xC000006D


_STATUS_NAMES = {v: k for k, v in vars(NtStatus).items() if k.startswith("STATUS_") and isinstance(v, int)}


def status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"NTSTATUS 0x{status:08X}")


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


@dataclass(frozen=True)
class LinkOptions:
    """Where and as whom a link logs on; each dialect adds its own settings after these."""

    DIALECT: ClassVar[str] = "smb"

    host: str
    port: int
    username: str
    domain: str | None
    require_signing: bool

    @property
    def key(self) -> tuple:
        """Transports whose options give the same key share one connection."""
        own = tuple(getattr(self, f.name) for f in fields(self)[4:])  # require_signing and the dialect's own
        return (self.DIALECT, self.host.casefold(), self.port, (self.domain or "").casefold(),
                self.username.casefold(), *own)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def qualified(self) -> bool:
        """The user name names its domain itself: DOMAIN\\user, or user@realm (a UPN)."""
        return "\\" in self.username or "@" in self.username

    @property
    def account(self) -> str:
        """The account as messages name it, and as SMB 2/3 (one string) logs on with."""
        return f"{self.domain}\\{self.username}" if self.domain and not self.qualified else self.username

    def logon_parts(self) -> tuple[str, str]:
        """(domain, user) for a library that takes them apart (impacket): DOMAIN\\user split, a
        UPN whole with no domain (the realm is in it: NTLM takes user@realm with an empty domain,
        as Windows does), else the inventory's domain."""
        if "\\" in self.username:
            domain, user = self.username.split("\\", 1)
            return domain, user
        if "@" in self.username:
            return "", self.username
        return self.domain or "", self.username


O = TypeVar("O", bound=LinkOptions)
T = TypeVar("T")  # a dialect's tree handle


class LinkBase(Generic[O, T]):
    """A lazily (re)connected SMB session to one server; `op()` runs one bounded operation on it."""

    def __init__(self, server: str, options: O, password: Secret, *, timeout: float, password_source: str = ""):
        self.server = server  # the inventory's name for the server, for messages
        self.options = options
        self.timeout = timeout
        self._password = password
        self._password_source = password_source
        self._lock = threading.RLock()
        self._depth = 0
        self._trees: dict[str, T] = {}
        self._expected: list[str] = []  # shares other servers on this link will ask for (expect())
        self.generation = 0  # bumped at each new session: handles opened on an older one are gone
        self._closed = False
        self._op_timeout = timeout
        self._op_server = server
        self.meter = Meter(server)  # round trips and bytes, by the server whose operation runs (traffic.py)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server}, {self.options.username}@{self.options.where})"

    # --- the bounded operation --------------------------------------------------------------

    @contextmanager
    def op(self, what: str, path: str | None = None, timeout: float | None = None,
           server: str | None = None) -> Iterator[Any]:
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
            seconds = self._op_timeout = timeout or self.timeout
            self._depth = 1
            self._begin(seconds)
            try:
                self._ensure(name, seconds)
                self._ready(seconds)
                yield self
            except Exception as exc:
                err = self._translate(exc, what, path, seconds, name)
                if err is None:
                    raise  # a programming error: let it through untouched
                if isinstance(err, NetworkError) or self._poisoned(exc):
                    self._drop()  # the next operation starts from a fresh connection
                if err is exc:
                    raise
                # the library's exception chain carries nothing the user needs for these
                raise err from (None if isinstance(err, (AuthenticationFailed, DialectMismatch)) else exc)
            except BaseException:
                self._drop()  # interrupted (Ctrl-C) maybe half way through a message: start afresh
                raise
            finally:
                self._depth = 0
                self._end()

    def _timed_out(self, what: str, path: str | None, seconds: float, server: str) -> TransportTimeout:
        return TransportTimeout(f"{what}: no answer from {self.options.where} within {seconds:g} s (is the server "
                                "hung?); the connection was closed and the next operation reconnects",
                                server=server, path=path)

    def _lost(self, what: str, path: str | None, server: str) -> ConnectionLost:
        return ConnectionLost(f"{what}: the connection to {self.options.where} was lost (the server closed it or "
                              "stopped)", server=server, path=path)

    def _network(self, exc: OSError, what: str, path: str | None, server: str) -> ConnectionLost:
        return ConnectionLost(f"{what}: network error talking to {self.options.where}: "
                              f"{self._scrub(exc.strerror or str(exc))}", server=server, path=path)

    def _status(self, status: int, what: str, path: str | None, server: str) -> TargetError:
        return status_error(status, what, server=server, path=path, detail=self._auth_hint(status))

    # --- what a dialect supplies ------------------------------------------------------------

    def _begin(self, seconds: float) -> None:
        """Before an operation connects (SMB 2/3 arms its watchdog)."""

    def _ready(self, seconds: float) -> None:
        """Connected, before the operation runs (SMB1 sets its socket timeout)."""

    def _end(self) -> None:
        """After an operation, whatever its outcome."""

    def _poisoned(self, exc: Exception) -> bool:
        """Whether the connection cannot be used after `exc`, though it is no network error."""
        return False

    def _ensure(self, name: str, seconds: float) -> None:
        raise NotImplementedError

    def _translate(self, exc: Exception, what: str, path: str | None, seconds: float,
                   server: str) -> TargetError | None:
        raise NotImplementedError

    def _drop(self) -> None:
        raise NotImplementedError

    def _logoff(self) -> None:
        """Log off politely (inside an op, only while connected)."""
        raise NotImplementedError

    def _connected(self) -> bool:
        raise NotImplementedError

    def _connect_tree(self, unc: str) -> T:
        raise NotImplementedError

    def _tree_status(self, exc: Exception) -> int | None:
        """The NTSTATUS a tree connect failed with, if `exc` is the server's answer."""
        raise NotImplementedError

    # --- the account ------------------------------------------------------------------------

    @property
    def _account(self) -> str:
        return self.options.account

    def _auth_hint(self, status: int) -> str:
        if status not in _LOGON:
            return ""
        src = f" from {self._password_source}" if self._password_source else ""
        return f"; check the user name {self._account} on {self.options.where} and the password{src}"

    def _scrub(self, text: str) -> str:
        secret = self._password.reveal()
        return text.replace(secret, MASK) if secret else text

    def _logon_failed(self, reason: str, server: str, what: str | None = None) -> AuthenticationFailed:
        """A logon the library refused without an NTSTATUS (a malformed or unexpected answer)."""
        return AuthenticationFailed(f"{what + ': ' if what else ''}logon to {self.options.where} as {self._account} failed "
                                    f"({self._scrub(reason)}){self._auth_hint(LOGON_FAILURE)}", server=server)

    def _guest(self, server: str) -> AuthenticationFailed:
        """The server let the logon in as its guest account (wrong user or password, and `map to
        guest = bad user`): deployer would change the site as nobody, unsigned. Refused."""
        return AuthenticationFailed(f"logon to {self.options.where} as {self._account} was mapped to the guest "
                                    "account; check the user name and password", server=server)

    # --- the session ------------------------------------------------------------------------

    def expect(self, share: str) -> None:
        """Another server of the site reaches `share` through this link: a dialect that can send
        several tree connects at once (SMB 2/3) connects it with the first share asked for."""
        if share.casefold() not in (s.casefold() for s in self._expected):
            self._expected.append(share)

    def tree(self, share: str) -> T:
        """The tree connect to `share` (inside op())."""
        key = share.casefold()
        tree = self._trees.get(key)
        if tree is None:
            try:
                tree = self._connect_tree(rf"\\{self.options.host}\{share}")
            except Exception as exc:
                if self._tree_status(exc) == BAD_NETWORK_NAME:
                    raise TargetError(f"there is no share {share} on {self.options.where} "
                                      "(check files: share in the inventory)", server=self._op_server,
                                      winerror=67) from None
                raise
            self._trees[key] = tree
        return tree

    def close(self) -> None:
        """Log off and disconnect (bounded like any operation); the link cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._connected():
                    with self.op("disconnect"):
                        self._logoff()
            except TargetError:
                pass
            finally:
                self._drop()
                self._closed = True
                self._closed_hook()

    def _closed_hook(self) -> None:
        """After close() (SMB 2/3 ends its watchdog thread)."""
