"""The Target interface: what deployer needs from a server, and nothing more.

A server is reached through two transports (as pyinfra keeps connectors apart from
operations): a FileTransport rooted at the server's SMS root (the SMS_SHRx share), and a
ServiceTransport speaking to its Service Control Manager. Paths are RelPaths (winpath):
backslash-separated, below the SMS root, compared case-insensitively by the server.

Errors are Windows errors: a transport translates whatever its protocol says (NTSTATUS,
errno, sc.exe output) into one of the TargetError classes with the Windows error code
(the tree is drawn in deployer/errors.py; they are re-exported here).
"""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol, runtime_checkable

from ..errors import (  # noqa: F401 - the transports' error classes, re-exported: one tree in errors.py
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    DialectMismatch,
    DiskFull,
    HostKeyChanged,
    HostKeyError,
    HostKeyUnknown,
    NetworkError,
    NotADirectory,
    NotFound,
    PathNotFound,
    ProtocolMismatch,
    ServiceError,
    SharingViolation,
    SigningUnavailable,
    TargetError,
    TransportTimeout,
)

CHUNK = 1 << 20


# --- errors ------------------------------------------------------------------------------


SERVICE_ERRORS = {
    5: "access denied: the account may not control this service",
    87: "the parameter is incorrect (the server does not accept this control code)",
    1051: "a stop control has been sent to a service that other running services depend on",
    1052: "the requested control is not valid for this service (ERROR_INVALID_SERVICE_CONTROL)",
    1053: "the service did not respond to the start or control request in a timely fashion",
    1056: "an instance of the service is already running",
    1058: "the service is disabled",
    1060: "the specified service does not exist as an installed service",
    1061: "the service cannot accept control messages at this time",
    1062: "the service has not been started (ERROR_SERVICE_NOT_ACTIVE)",
}


def connect_winerror(cause: BaseException) -> int:
    """The Windows error for a TCP connection that could not be made (one code per cause, any transport)."""
    if isinstance(cause, socket.gaierror):
        return 53  # ERROR_BAD_NETPATH: the name is unknown
    if isinstance(cause, ConnectionRefusedError):
        return 1225  # ERROR_CONNECTION_REFUSED
    return 1231  # ERROR_NETWORK_UNREACHABLE


def service_error(code: int, service: str, server: str | None = None, action: str = "") -> ServiceError:
    meaning = SERVICE_ERRORS.get(code, "the Service Control Manager reported an error")
    what = f"{action} {service}".strip()
    return ServiceError(f"{what}: {meaning}", server=server, winerror=code)


# --- data --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileStat:
    name: str  # the name as stored on the server (its case)
    size: int
    mtime_ns: int  # last write time, UTC nanoseconds since 1970 (FILETIME has 100 ns steps)
    is_dir: bool = False
    readonly: bool = False
    # What else tells one version of a file from another, where the transport gives it (the mock:
    # the inode's change time and number). Left out of equality: two stats of one file compare by
    # what every transport reports; run/known.py's fingerprints compare these too.
    change_ns: int | None = field(default=None, compare=False)
    file_id: int | None = field(default=None, compare=False)


RUNNING, STOPPED = "running", "stopped"
PENDING_STATES = ("start_pending", "stop_pending", "continue_pending", "pause_pending")


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running, stopped, start_pending, stop_pending, paused, ...
    display_name: str | None = None
    accepts_stop: bool = True
    extra: dict[str, str] = field(default_factory=dict)


# --- protocols ---------------------------------------------------------------------------


@runtime_checkable
class FileTransport(Protocol):
    server: str

    def stat(self, path: str) -> FileStat | None:
        """The file or folder's attributes, or None when nothing is there."""

    def listdir(self, path: str) -> list[FileStat]: ...

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]: ...

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        """Create or truncate `path` and write the chunks; durable on return. Returns bytes written."""

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Append; with durable, flushed to stable storage before returning (the journal's
        write-ahead records depend on it). Without, the bytes are written to the file at once
        (another process, or this one after a crash of deployer, reads them) and reach stable
        storage with the next durable append to the same file."""

    def copy(self, src: str, dst: str) -> None:
        """Copy on the server (no round trip through deployer when the protocol allows), keeping the write time."""

    # Optional: `hard_link(src, dst)` makes dst a second name of the file src (an NTFS hard link,
    # CreateHardLink): no bytes move. Only transports that can do it have the method; see
    # Runner.backup for the one use that is safe (a file that will be swapped by a rename).

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        """Rename atomically; with replace=True an existing dst is replaced in one step."""

    def remove(self, path: str) -> None: ...

    def rmdir(self, path: str) -> None:
        """Remove an empty folder."""

    def mkdir(self, path: str) -> None:
        """Create one folder (AlreadyExists if it is there, PathNotFound if its parent is not)."""

    def makedirs(self, path: str) -> None:
        """Create a folder and any missing parents; an existing folder is fine."""

    def set_mtime(self, path: str, mtime_ns: int) -> None: ...

    def sha256(self, path: str) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class ServiceTransport(Protocol):
    server: str

    def query(self, name: str) -> ServiceStatus: ...

    def stop(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        """Stop and wait for STOPPED (ServiceError 1062 if not running)."""

    def start(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        """Start and wait for RUNNING (ServiceError 1056 if already running)."""

    def control(self, name: str, code: int) -> None:
        """Send a user-defined control code (128-255)."""

    def close(self) -> None: ...


class ServicePoll:
    """Deadline and back-off while waiting for a service to reach a state: the Service Control
    Manager offers no cheap notification, so transports poll. `pause()` sleeps before the next
    look, or raises ERROR_SERVICE_REQUEST_TIMEOUT (1053) once the time is up."""

    def __init__(self, timeout: float, *, first: float, floor: float, maximum: float):
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.next = first  # 0: look again at once (a quick service is there already)
        self.floor = floor
        self.maximum = maximum

    def pause(self, name: str, state: str, server: str, action: str) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            err = service_error(1053, name, server, action)
            err.detail += f" (still {state} after {self.timeout:g} s)"
            raise err
        time.sleep(min(self.next, left))
        self.next = min(max(self.next * 2, self.floor), self.maximum)


EPOCH_FILETIME = 116_444_736_000_000_000  # 1970-01-01 as a Windows FILETIME (100 ns steps since 1601)


def filetime_to_ns(ft: int) -> int:
    """A FILETIME, as SMB 2/3 and SMB1 carry write times, as nanoseconds since 1970."""
    return (ft - EPOCH_FILETIME) * 100


def ns_to_filetime(ns: int) -> int:
    return ns // 100 + EPOCH_FILETIME


def sha256_of(chunks: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def local_sha256(path: Path) -> str:
    """The sha256 of a file on this machine (a payload, a lab file), read in 1 MiB blocks: the one
    hasher of local files (plans, stand-ins, worker payloads and fleet journals all call it)."""
    with open(path, "rb") as fh:
        return sha256_of(iter(lambda: fh.read(1 << 20), b""))


def makedirs_via(files: FileTransport, path: str) -> None:
    """makedirs in terms of stat and a one-level mkdir, for any transport."""
    from ..model.winpath import split

    parts = split(path)
    subs = ["\\".join(parts[:i]) for i in range(1, len(parts) + 1)]
    # a transport that stats many paths at once (SFTP) is asked for every folder on the way in one
    # go; any other one folder at a time, stopping at the first that is a file
    many = getattr(files, "stat_many", None)
    stats = iter(many(subs)) if many is not None else None
    for sub in subs:
        st = next(stats) if stats is not None else files.stat(sub)
        if st is None:
            try:
                files.mkdir(sub)
            except AlreadyExists:  # made by someone else meanwhile
                pass
        elif not st.is_dir:
            raise PathNotFound(f"the system cannot find the path specified ({sub} is a file, not a folder)",
                               server=files.server, path=sub)


def stat_many(files: FileTransport, paths: list[str]) -> list[FileStat | None]:
    """stat() of each path, in as few round trips as the transport can: its own `stat_many` (SMB 2/3
    compounds them) or, by default, one stat at a time (the mock, SMB1, SFTP)."""
    if not paths:
        return []
    many = getattr(files, "stat_many", None)
    if many is not None:
        return list(many(list(paths)))
    return [files.stat(p) for p in paths]


def sha256_seen(files: FileTransport, path: str, stat: FileStat) -> str:
    """The sha256 of a file just stat'ed: from the site's known hashes when that stat is the file's
    recorded fingerprint (run/known.py, when the session keeps them), else read."""
    seen = getattr(files, "sha256_seen", None)
    return seen(path, stat) if seen is not None else files.sha256(path)


class CaseResolver:
    """The path as the server spells it (NTFS keeps each name's case): one stat per folder, cached.

    `prefetch` asks for every prefix of many paths at once (one `stat_many`) and keeps the stats,
    so that a caller checking those paths (verify, the re-check under the lock) reads them from
    `known` instead of asking once more per file."""

    def __init__(self, files: FileTransport):
        self.files = files
        self._cache: dict[str, str] = {}
        self.known: dict[str, FileStat | None] = {}  # winpath.key of a path asked by prefetch -> its stat

    def prefetch(self, paths: list[str]) -> None:
        from ..model.winpath import key, split

        wanted: dict[str, str] = {}
        for path in paths:
            parts = split(path)
            for i in range(1, len(parts) + 1):
                prefix = "\\".join(parts[:i])
                k = key(prefix)
                if k not in self.known and k not in wanted:
                    wanted[k] = prefix
        for (k, prefix), stat in zip(wanted.items(), stat_many(self.files, list(wanted.values()))):
            self.known[k] = stat
            if stat is not None:
                self._cache.setdefault(k, stat.name)

    def stat(self, path: str) -> FileStat | None:
        """The stat prefetch took of this path, or a fresh one (kept)."""
        from ..model.winpath import key

        k = key(path)
        if k not in self.known:
            self.known[k] = self.files.stat(path)
        return self.known[k]

    def seed(self, folder: str, entries: list[FileStat]) -> None:
        """The spelling of each name a listing of `folder` returned."""
        from ..model.winpath import join, key

        for e in entries:
            self._cache.setdefault(key(join(folder, e.name)), e.name)

    def __call__(self, path: str) -> str:
        from ..model.winpath import key, split

        parts = split(path)
        many = getattr(self.files, "stat_many", None)
        if many is not None:  # a transport that stats several names in one round trip (SMB 2/3)
            missing = ["\\".join(parts[:i]) for i in range(1, len(parts) + 1)
                       if key("\\".join(parts[:i])) not in self._cache and key("\\".join(parts[:i])) not in self.known]
            if len(missing) > 1:
                for prefix, stat in zip(missing, many(missing)):
                    if stat is None:
                        break  # the rest does not exist either: the walk below keeps the caller's spelling
                    self._cache[key(prefix)] = stat.name
        out: list[str] = []
        for i in range(1, len(parts) + 1):
            prefix = "\\".join(parts[:i])
            k = key(prefix)
            if k not in self._cache:
                stat = self.known[k] if k in self.known else self.files.stat(prefix)
                if stat is None:  # the rest does not exist: keep the caller's spelling
                    return "\\".join(out + parts[i - 1:])
                self._cache[k] = stat.name
            out.append(self._cache[k])
        return "\\".join(out)
