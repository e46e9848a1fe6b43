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
from typing import Any

from . import winpath
from .errors import SiteLockedError
from .journal import whoami
from .sms.layout import STATE_DIR
from .targets.base import AlreadyExists, FileTransport, TargetError

LOCK_PATH = winpath.join(STATE_DIR, "lock")

# Tokens of the locks this process holds: a lock naming this very process but a token it
# does not hold was left by an earlier command of the same process (an API user, a test).
_HELD: set[str] = set()


@dataclass
class LockInfo:
    holder: dict[str, Any]
    since: str
    command: str
    run: str | None
    token: str | None = None

    def describe(self) -> str:
        h = self.holder
        return f"{h.get('user')}@{h.get('host')} (pid {h.get('pid')}, {self.command}" + \
            (f" run {self.run}" if self.run else "") + f") since {self.since}"

    def stale(self) -> bool | None:
        """True: holder gone; False: alive; None: cannot tell (another machine)."""
        if self.holder.get("host") != socket.gethostname():
            return None
        pid = int(self.holder.get("pid") or 0)
        if pid <= 0:
            return True
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
    if files.stat(LOCK_PATH) is None:
        return None
    try:
        data = json.loads(b"".join(files.read_chunks(LOCK_PATH)) or b"{}")
    except (json.JSONDecodeError, TargetError):
        data = {}
    return LockInfo(data.get("holder", {}), data.get("since", "unknown"), data.get("command", "unknown"),
                    data.get("run"), data.get("token"))


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
                           "command": self.command, "run": self.run, "site": self.site, "token": token}).encode()
        try:
            self.files.write_file(LOCK_PATH, [body], exclusive=True)
        except AlreadyExists:
            info = read_lock(self.files)
            if info is None:  # released between our attempt and the read
                return self.acquire(break_lock=break_lock)
            stale = info.stale()
            if break_lock and stale is False:
                raise SiteLockedError(
                    f"site {self.site} is locked by {info.describe()}, a process that is still running on this "
                    "machine; --break-lock does not break the lock of a live process: wait for it to finish, or "
                    "stop it first") from None
            if break_lock:
                self.files.remove(LOCK_PATH)
                return self.acquire(break_lock=False)
            state = {True: "stale: that process is gone", False: "held by a running process",
                     None: "on another machine, cannot tell if it is alive"}[stale]
            raise SiteLockedError(
                f"site {self.site} is locked by {info.describe()} ({state}). Wait for it, or if you are sure no "
                "run is active, repeat with --break-lock; then `deployer recover` finishes or undoes its run") from None
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

    def __enter__(self) -> "SiteLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
