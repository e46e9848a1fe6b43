"""The per-site lock, held on the site server (`.deployer\\lock`), so that two operators on
two machines collide just as two shells on one machine do.

The lock is a file created exclusively (CreateDisposition FILE_CREATE on SMB, O_EXCL
locally): creating it either succeeds for exactly one holder or fails. It records who
holds it and since when. A lock whose holder was on this machine and whose process is
gone is stale; a lock from another machine cannot be judged from here. Either way it is
broken only when the operator says so (`--break-lock`), and never while its holder is
running on this machine.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..errors import SiteLockedError
from ..targets.base import AlreadyExists, FileTransport, TargetError
from .store import LOCK_PATH, STATE_DIR, whoami

# Tokens of the locks this process holds: a lock naming this very process but a token it
# does not hold was left by an earlier command of the same process (an API user, a test).
_HELD: set[str] = set()

# A lease this process renews while it works (a worker's task: workers/tasks.py), written into
# every lock it takes, so that a process on another host can tell whether the holder is alive:
# a PID means something only on its own host, a lease renewed in the broker means it anywhere.
# Lease checkers (registered by a process that can reach the lease's store) answer True: the
# holder renews it (alive), False: it expired (gone), None: cannot tell.
LEASE: dict[str, Any] | None = None
_LEASE_CHECKERS: list[Callable[[dict[str, Any]], bool | None]] = []


def register_lease_checker(check: Callable[[dict[str, Any]], bool | None]) -> None:
    if check not in _LEASE_CHECKERS:
        _LEASE_CHECKERS.append(check)


@dataclass
class LockInfo:
    holder: dict[str, Any]
    since: str
    command: str
    run: str | None
    token: str | None = None

    damaged: str | None = None  # why the lock file could not be read, when it could not
    lease: dict[str, Any] | None = None  # the holder's renewed lease, when it has one (see LEASE)

    def describe(self) -> str:
        if self.damaged:
            return f"an unreadable lock file ({self.damaged})"
        h = self.holder
        return f"{h.get('user')}@{h.get('host')} (pid {h.get('pid')}, {self.command}" + \
            (f" run {self.run}" if self.run else "") + f") since {self.since}"

    def stale(self) -> bool | None:
        """True: holder gone; False: alive; None: cannot tell (another machine, or no holder named)."""
        if self.lease is not None:
            for check in _LEASE_CHECKERS:
                alive = check(self.lease)
                if alive is not None:
                    return not alive
        if self.damaged or self.holder.get("host") != socket.gethostname():
            return None
        pid = self.holder.get("pid")
        if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        if pid == os.getpid():
            return self.token not in _HELD
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def read_lock(files: FileTransport) -> LockInfo | None:
    """The lock's holder, or None when there is no lock. A lock file that cannot be read as
    deployer writes it (empty, garbage, a folder) is still a lock: it is reported as damaged,
    never trusted and never a traceback, and `--break-lock` removes it."""
    stat = files.stat(LOCK_PATH)
    if stat is None:
        return None
    if stat.is_dir:
        return LockInfo({}, "unknown", "unknown", None, damaged="it is a folder")
    try:
        raw = b"".join(files.read_chunks(LOCK_PATH))
    except TargetError as exc:
        return LockInfo({}, "unknown", "unknown", None, damaged=f"cannot be read: {exc}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return LockInfo({}, "unknown", "unknown", None,
                        damaged="empty" if not raw.strip() else "not the JSON deployer writes")
    if not isinstance(data, dict) or not isinstance(data.get("holder"), dict):
        return LockInfo({}, "unknown", "unknown", None, damaged="no holder recorded in it")

    def text(key: str) -> str:
        v = data.get(key)
        return v if isinstance(v, str) else "unknown"

    run = data.get("run")
    token = data.get("token")
    lease = data.get("lease")
    return LockInfo(data["holder"], text("since"), text("command"), run if isinstance(run, str) else None,
                    token if isinstance(token, str) else None, lease=lease if isinstance(lease, dict) else None)


def lock_advice(site: str, info: LockInfo, stale: bool | None, command: str) -> str:
    """Why the site is locked, and the one command that gets past it."""
    again = f"deployer recover --site {site} --break-lock"
    if info.damaged:
        return (f"site {site} is locked by {info.describe()}. If no deployer run is active on this site, break it: "
                f"`{again}`")
    if stale is True:
        return (f"site {site} is locked by {info.describe()} (stale: that process is gone). Break the lock and "
                f"finish or undo its run with `{again}`")
    if stale is False and info.lease is not None:
        return (f"site {site} is locked by {info.describe()}, whose lease is still renewed (it is running). Wait "
                "for it to finish; then repeat the command")
    if stale is False:
        return (f"site {site} is locked by {info.describe()}, a process still running on this machine. Wait for it "
                "to finish, or stop it; then repeat the command")
    return (f"site {site} is locked by {info.describe()} (on another machine, cannot tell if it is alive). Wait for "
            f"it, or if you are sure no run is active there, `{again}`")


class SiteLock:
    def __init__(self, files: FileTransport, site: str, command: str, run: str | None = None):
        self.files = files
        self.site = site
        self.command = command
        self.run = run
        self.held = False
        self.token: str | None = None
        self.created_dir = False  # a first contact leaves no trace when nothing ran

    def acquire(self, *, break_lock: bool = False) -> None:
        if self.files.stat(STATE_DIR) is None:
            self.files.makedirs(STATE_DIR)
            self.created_dir = True
        token = os.urandom(8).hex()
        body = json.dumps({"holder": whoami(), "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "command": self.command, "run": self.run, "site": self.site, "token": token,
                           **({"lease": LEASE} if LEASE else {})}).encode()
        try:
            self.files.write_file(LOCK_PATH, [body], exclusive=True)
        except AlreadyExists:
            info = read_lock(self.files)
            if info is None:  # released between our attempt and the read
                return self.acquire(break_lock=break_lock)
            stale = info.stale()
            if break_lock and stale is False:
                raise SiteLockedError(
                    f"site {self.site} is locked by {info.describe()}, a process that is still running "
                    + ("(its lease is renewed)" if info.lease else "on this machine")
                    + "; --break-lock does not break the lock of a live process: wait for it to finish, or "
                    "stop it first") from None
            if break_lock:
                if info.damaged == "it is a folder":
                    # never written by deployer, perhaps not empty: moved aside whole, kept as found
                    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
                    self.files.rename(LOCK_PATH, f"{LOCK_PATH}.broken-{stamp}-{os.urandom(2).hex()}")
                else:
                    self.files.remove(LOCK_PATH)
                return self.acquire(break_lock=False)
            raise SiteLockedError(lock_advice(self.site, info, stale, self.command)) from None
        self.held = True
        self.token = token
        _HELD.add(token)

    def release(self) -> None:
        if self.held:
            _HELD.discard(self.token)
            try:
                self.files.remove(LOCK_PATH)
                if self.created_dir and not self.files.listdir(STATE_DIR):
                    self.files.rmdir(STATE_DIR)
            finally:
                self.held = False

    def forget(self) -> None:
        """The lock file went away with the folder that held it (a mock site recreated under it)."""
        _HELD.discard(self.token)
        self.held = False

    def __enter__(self) -> "SiteLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
