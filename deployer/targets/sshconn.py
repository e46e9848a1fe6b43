"""One SSH connection to a server (paramiko): host-key policy, authentication, time limits.

The SFTP file transport and the sc.exe service transport of a server share one of these.

Host keys are checked strictly, as `ssh -o StrictHostKeyChecking=yes` does: the server's
key must be in the inventory's `known_hosts` file (default ~/.ssh/known_hosts). With
`trust_on_first_use: true` an unknown server's key is recorded there on first contact
(`accept-new`); a key that differs from the recorded one is refused whatever the setting,
and so is a key marked @revoked.

Authentication uses exactly what the inventory names (a key file, a password, or the
ssh-agent when `allow_agent: true`): paramiko's own search of ~/.ssh and the agent is off,
so a run never depends on what happens to be on the operator's machine. Passwords are
Secrets: they never reach a message or a log line.

Every step is bounded by the inventory's `timeout`: the TCP connect, the SSH handshake and
authentication together, and each later request (paramiko leaves some waits unbounded,
e.g. Channel.exec_command's reply, paramiko issue #2599; a watchdog closes the channel or
socket at the deadline).
"""

from __future__ import annotations

import hmac
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import paramiko
from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

from ..errors import InputError
from ..model.inventory import SshSettings
from ..model.secrets import Secret
from .base import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    HostKeyChanged,
    HostKeyUnknown,
    TargetError,
    TransportTimeout,
)
from .sshexec import CommandRunner
from .traffic import Meter

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"


# The SSH names of the one error tree's classes (deployer/errors.py): a caller catches
# AuthenticationFailed or ConnectFailed whichever transport it uses.
SshConnectError = ConnectFailed
SshAuthFailed = AuthenticationFailed


# --- time limits ---------------------------------------------------------------------------


class Watchdog:
    """Calls `expire` once if the block it guards is still running after `seconds`."""

    def __init__(self, seconds: float, expire: Callable[[], None]):
        self.seconds = seconds
        self.fired = False
        self._expire = expire
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        try:
            self._expire()
        except Exception:  # the guarded call reports the failure; closing is best effort
            pass

    def __enter__(self) -> "Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


# --- host keys -----------------------------------------------------------------------------


def host_key_name(host: str, port: int) -> str:
    """How known_hosts names the server: `host`, or `[host]:port` off port 22 (as ssh does)."""
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


class KnownHosts:
    """The known_hosts file, read as OpenSSH reads it (names, hashed names, patterns, @revoked).

    paramiko's HostKeys.load stops with an exception at a marker line such as `@revoked`,
    and its lookup knows no patterns, so the lines are parsed here, each key with
    paramiko. New keys are appended as a line (HostKeys.save would rewrite the file without
    the operator's comments and markers).
    """

    def __init__(self, path: Path):
        self.path = path
        self.entries: list[tuple[list[str], paramiko.PKey]] = []
        self.revoked: set[str] = set()  # base64 of keys marked @revoked
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise InputError(f"cannot read the known_hosts file {path}: {exc.strerror or exc}") from None
        for lineno, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                fields = line.split()
                if fields[0] == "@revoked" and len(fields) >= 4:
                    self.revoked.add(fields[3])
                continue  # @cert-authority: host certificates are not used by deployer
            try:
                entry = HostKeyEntry.from_line(line, lineno)
            except (paramiko.SSHException, InvalidHostKey, ValueError):
                continue  # a line paramiko cannot read (a key type it does not know): not ours
            if entry is not None and entry.key is not None:
                self.entries.append((entry.hostnames, entry.key))

    def known(self, name: str) -> list[paramiko.PKey]:
        return [key for patterns, key in self.entries if _host_matches(name, patterns)]

    def is_revoked(self, key: paramiko.PKey) -> bool:
        return key.get_base64() in self.revoked

    def record(self, name: str, key: paramiko.PKey) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = f"{name} {key.get_name()} {key.get_base64()}\n"
        try:
            ends_open = self.path.exists() and not self.path.read_bytes().endswith(b"\n") and \
                self.path.stat().st_size > 0
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(("\n" if ends_open else "") + line)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise InputError(f"cannot record the host key of {name} in {self.path}: {exc.strerror or exc}") from None
        self.entries.append(([name], key))


def _host_matches(name: str, patterns: list[str]) -> bool:
    """OpenSSH's rules: a hashed name, an exact name or a * ? pattern; !pattern excludes."""
    hit = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if pattern.startswith("|1|"):
            matched = hmac.compare_digest(paramiko.HostKeys.hash_host(name, pattern), pattern)
        else:
            matched = _glob(pattern).fullmatch(name.lower()) is not None
        if matched and negated:
            return False
        hit = hit or matched
    return hit


def _glob(pattern: str) -> re.Pattern[str]:
    # only * and ? are special in known_hosts ([host]:port is literal, unlike fnmatch)
    return re.compile(re.escape(pattern.lower()).replace(r"\*", ".*").replace(r"\?", "."))


def _prefer_known_types(transport: paramiko.Transport, known: list[paramiko.PKey]) -> None:
    """Ask for the key type already recorded, so a server with several keys shows that one
    (otherwise a server that also has an ECDSA key could look like a changed host)."""
    wanted: list[str] = []
    for key in known:
        name = key.get_name()
        wanted += ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] if name == "ssh-rsa" else [name]
    opts = transport.get_security_options()
    available = list(opts.key_types)
    first = [t for t in dict.fromkeys(wanted) if t in available]
    if first:
        opts.key_types = first + [t for t in available if t not in first]


# --- the connection ------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    username: str
    key_file: Path | None
    password: Secret | None  # the account's password; also the key file's passphrase if it has one
    allow_agent: bool


class SshConnection(CommandRunner):
    """An authenticated SSH transport to one server, opened on first use and reopened if it drops."""

    def __init__(self, settings: SshSettings, server: str, credentials: Credentials, known_hosts: Path):
        self.settings = settings
        self.server = server
        self.host = settings.host
        self.port = settings.port
        self.timeout = settings.timeout
        self.credentials = credentials
        self.known_hosts_path = known_hosts
        self.trust_on_first_use = settings.trust_on_first_use
        self.generation = 0  # bumped on every (re)connect, so channel users know to reopen
        self.meter = Meter(server)  # round trips and bytes (targets/traffic.py)
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()
        self._exec_accepted = -1  # the generation on which the server confirmed an exec request
        self._spare = None  # the next command's channel, opened ahead (sshexec.py): (generation, future)
        self._spare_lock = threading.Lock()
        if re.search(r"[\s,]", self.host) or not self.host:
            raise InputError(f"SSH host {self.host!r} must be a host name or address without spaces or commas")

    @property
    def where(self) -> str:
        return f"{self.credentials.username}@{self.host}:{self.port}"

    def transport(self) -> paramiko.Transport:
        with self._lock:
            if self._transport is None or not self._transport.is_active():
                if self._transport is not None:
                    self._transport.close()
                    self._transport = None
                self._transport = self._connect()
                self.generation += 1
            return self._transport

    def close(self) -> None:
        with self._spare_lock:
            self._spare = None  # closed with the transport
        with self._lock:
            if self._transport is not None:
                self._transport.close()
                self._transport = None

    # --- connect -----------------------------------------------------------------------------

    def _connect(self) -> paramiko.Transport:
        deadline = time.monotonic() + self.timeout
        sock = self._socket()
        transport = paramiko.Transport(sock)

        def expire() -> None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                transport.close()

        try:
            with Watchdog(self.timeout, expire) as dog:
                try:
                    self._handshake(transport, deadline)
                    self._authenticate(transport)
                except (paramiko.SSHException, EOFError, OSError) as exc:
                    if dog.fired or time.monotonic() >= deadline:
                        raise TransportTimeout(f"no SSH session with {self.where} within {self.timeout:g} s "
                                               "(the server accepted the connection but did not complete the "
                                               "handshake and authentication)", server=self.server) from None
                    raise self._connect_error(exc) from None
        except BaseException:
            transport.close()
            raise
        return transport

    def _socket(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            # SFTP and sc.exe are request and answer: without this, Nagle's algorithm and the
            # peer's delayed ACK hold many small requests back by 40 ms each
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except socket.gaierror as exc:
            raise ConnectFailed(f"cannot resolve the SSH host {self.host!r}: {exc.strerror}", server=self.server,
                                  winerror=53) from None
        except TimeoutError:
            raise TransportTimeout(f"no answer from {self.host}:{self.port} within {self.timeout:g} s",
                                   server=self.server) from None
        except ConnectionRefusedError:
            raise ConnectFailed(f"{self.host}:{self.port} refused the connection: is the OpenSSH server running "
                                  "there, on that port?", server=self.server, winerror=1225) from None
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}",
                                  server=self.server, winerror=1231) from None

    def _handshake(self, transport: paramiko.Transport, deadline: float) -> None:
        known_hosts = KnownHosts(self.known_hosts_path)
        name = host_key_name(self.host, self.port)
        known = known_hosts.known(name)
        _prefer_known_types(transport, known)
        transport.banner_timeout = self.timeout
        transport.handshake_timeout = self.timeout
        transport.auth_timeout = max(deadline - time.monotonic(), 0.1)
        transport.start_client(timeout=self.timeout)
        key = transport.get_remote_server_key()
        if known_hosts.is_revoked(key):
            raise HostKeyChanged(f"{name} presented the host key {fingerprint(key)}, which {self.known_hosts_path} "
                                 "marks @revoked; refusing to connect", server=self.server)
        if known:
            if any(k == key for k in known):
                return
            were = ", ".join(fingerprint(k) for k in known)
            raise HostKeyChanged(
                f"the host key of {name} has changed: it presented {fingerprint(key)}, but {self.known_hosts_path} "
                f"records {were}. Someone may be intercepting the connection, or the server was reinstalled; "
                f"check with its administrator, then remove the old entry (ssh-keygen -R '{name}' -f "
                f"{self.known_hosts_path}). trust_on_first_use never replaces a recorded key", server=self.server)
        if not self.trust_on_first_use:
            raise HostKeyUnknown(
                f"{name} is not a known host: its key {fingerprint(key)} is not in {self.known_hosts_path}. Check "
                f"the fingerprint with the server's administrator, then add it (ssh-keyscan -p {self.port} "
                f"-t {key.get_name()} {self.host} >> {self.known_hosts_path}), or set trust_on_first_use: true for "
                "this server in the inventory to record the key on first connection", server=self.server)
        known_hosts.record(name, key)

    def _authenticate(self, transport: paramiko.Transport) -> None:
        creds = self.credentials
        password = creds.password.reveal() if creds.password is not None else None
        keys: list[tuple[str, paramiko.PKey]] = []
        if creds.key_file is not None:
            keys.append((f"key file {creds.key_file}", self._load_key(creds.key_file, password)))
        agent = paramiko.Agent() if creds.allow_agent else None
        if agent is not None:
            keys += [(f"ssh-agent key {k.fingerprint}", k) for k in agent.get_keys()]
        tried: list[str] = []
        try:
            wanted: list[str] | None = None  # what the server still asks for after a partial success
            for label, key in keys:
                tried.append(label)
                try:
                    wanted = transport.auth_publickey(creds.username, key)
                except paramiko.BadAuthenticationType as exc:
                    wanted = list(exc.allowed_types)
                    break
                except paramiko.AuthenticationException:
                    if not transport.is_active():
                        raise
                    continue
                if transport.is_authenticated():
                    return
                break  # accepted, but the server wants another method as well (publickey,password)
            if password is not None and (wanted is None or "password" in wanted):
                tried.append("password")
                # fallback=False: the password answers a password request only, never a
                # keyboard-interactive prompt the server may be using for something else
                transport.auth_password(creds.username, password, fallback=False)
                if transport.is_authenticated():
                    return
        except paramiko.BadAuthenticationType as exc:
            raise AuthenticationFailed(f"{self.where} does not accept {tried[-1]} authentication; it accepts "
                                f"{', '.join(exc.allowed_types) or 'nothing offered'}", server=self.server) from None
        except paramiko.AuthenticationException as exc:
            if not transport.is_active():
                raise  # the connection went (or the watchdog closed it): _connect says which
            raise self._auth_failed(tried, _scrub(str(exc), password)) from None
        finally:
            if agent is not None:
                agent.close()
        raise self._auth_failed(tried, "not accepted")

    def _auth_failed(self, tried: list[str], detail: str) -> AuthenticationFailed:
        what = " and ".join(tried) if tried else "no method the server accepts"
        checks = ["the username"]
        if self.credentials.key_file is not None or self.credentials.allow_agent:
            checks.append("that the public key is in the account's authorized_keys on the server")
        if self.settings.password is not None:
            checks.append(f"the password ({self.settings.password.describe()})")
        return AuthenticationFailed(f"authentication as {self.where} failed with {what} ({detail.rstrip('.')}); check "
                             + ", ".join(checks), server=self.server)

    def _load_key(self, path: Path, passphrase: str | None) -> paramiko.PKey:
        try:
            return paramiko.PKey.from_path(path, passphrase)
        except FileNotFoundError:
            raise InputError(f"SSH key file {path} does not exist") from None
        except (paramiko.PasswordRequiredException, TypeError) as exc:
            # paramiko raises PasswordRequiredException for PEM keys; for new-format OpenSSH
            # keys the cryptography package raises TypeError ("Key is password-protected")
            if isinstance(exc, TypeError) and (passphrase is not None or "password" not in str(exc)):
                raise InputError(f"cannot load the SSH key file {path}: {_scrub(str(exc), passphrase)}") from None
            raise InputError(f"SSH key file {path} is encrypted: give its passphrase as the server's password: "
                             "source, or use an ssh-agent (allow_agent: true)") from None
        except (paramiko.SSHException, ValueError, OSError) as exc:
            raise InputError(f"cannot load the SSH key file {path}: {_scrub(str(exc), passphrase)}") from None

    def _connect_error(self, exc: BaseException) -> TargetError:
        if isinstance(exc, TargetError):
            return exc
        text = str(exc) or type(exc).__name__
        return ConnectFailed(f"SSH connection to {self.where} failed: {text}", server=self.server, winerror=1231)

    # --- channels ----------------------------------------------------------------------------

    @contextmanager
    def bounded(self, what: str, expire: Callable[[], None], seconds: float | None = None) -> Iterator[Watchdog]:
        """Run a block under a watchdog; map socket and SSH errors to TransportTimeout / ConnectionLost."""
        limit = seconds if seconds is not None else self.timeout
        dog = Watchdog(limit, expire)
        try:
            with dog:
                yield dog
        except TimeoutError:
            raise TransportTimeout(f"{what}: no answer from {self.where} within {limit:g} s",
                                   server=self.server) from None
        except (paramiko.SSHException, EOFError, ConnectionError, OSError) as exc:
            if dog.fired:
                raise TransportTimeout(f"{what}: not finished within {limit:g} s", server=self.server) from None
            raise ConnectionLost(f"{what}: the SSH connection to {self.where} was lost ({exc or type(exc).__name__})",
                                 server=self.server) from None

    def open_channel(self, what: str) -> paramiko.Channel:
        transport = self.transport()
        try:
            chan = transport.open_session(timeout=self.timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise ConnectionLost(f"{what}: cannot open an SSH channel to {self.where} ({exc})",
                                 server=self.server) from None
        chan.settimeout(self.timeout)
        return chan

def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "********")
    return text


def resolve_path(base: Path, value: str) -> Path:
    return (base / os.path.expanduser(value)).resolve()


def credentials(settings: SshSettings, password: Secret | None, base: Path) -> Credentials:
    key_file = resolve_path(base, settings.key_file) if settings.key_file else None
    allow_agent = settings.allow_agent
    if key_file is None and password is None and not allow_agent:
        raise InputError(f"SSH to {settings.username}@{settings.host}: give key_file:, password: or allow_agent: true "
                         "in the inventory (deployer does not search ~/.ssh on its own)")
    return Credentials(settings.username, key_file, password, allow_agent)
