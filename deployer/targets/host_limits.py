"""How many site sessions of this process may be open to one server host at a time.

Sites of a fleet can name the same host: a logon server or distribution server several
sites share, or one Samba host serving many test sites. Without a bound, `--forks 50`
opens fifty sessions to it at once, and a Windows NT server (or its admin) does not take
that well. So a site's session holds one slot of every SMB or SSH `host:port` it reaches,
from before its first connection until its last one is closed (SiteConnection.close), and
waits while the host has `--max-per-host` sessions open already. Mock sites (local folders)
take no slot.

A session takes its slots in one order (sorted host keys), so two sites that both reach
hosts A and B can never each hold one slot and wait for the other's. Several servers of
one site on the same host:port share that site's one slot: they are one site's session.

The bound is per process (fleets run in one process); hosts are compared by name as
written, case-insensitively, with IP addresses in their canonical form: no DNS lookup, so
`srv1` and `srv1.corp.example` are two hosts to this bound.
"""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..errors import InputError

if TYPE_CHECKING:
    from ..model.inventory import SiteRef
    from ..run.context import CancelToken

DEFAULT_MAX_PER_HOST = 4  # a few sessions per host keep it busy; an NT 4.0 server serves fleets, not only us
WAIT_TICK = 0.2  # how often a waiting site looks at its cancel token


@dataclass(frozen=True, order=True)
class HostKey:
    host: str  # normalized: see normalize_host
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def normalize_host(host: str) -> str:
    """`SRV1.`, `srv1` -> srv1; `[::1]`, `0:0::1` -> ::1 (the same address written two ways)."""
    name = host.strip().strip("[]").rstrip(".").casefold()
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _keys_of(server: Any) -> set[HostKey]:
    """The hosts one server (or PCM host) of the inventory is reached on: each transport's
    settings say where they connect (TransportSettings.reaches, model/transport.py)."""
    return {HostKey(normalize_host(host), port) for spec in (server.files, server.services)
            for host, port in spec.reaches(server)}


def host_keys(site: "SiteRef") -> list[HostKey]:
    """Every SMB/SSH host:port the site's session reaches, once each, in the order slots are taken."""
    keys: set[HostKey] = set()
    for server in [*site.site.servers.values(), *site.site.pcm_hosts.values()]:
        keys |= _keys_of(server)
    return sorted(keys)


class HostLimiter:
    """Open-session counts per host, with a wait while a host is at its limit."""

    def __init__(self, limit: int = DEFAULT_MAX_PER_HOST):
        self._cond = threading.Condition()
        self._open: Counter[HostKey] = Counter()
        self.peak: Counter[HostKey] = Counter()  # the most sessions ever open at once, per host
        self.limit = check_limit(limit)

    def configure(self, limit: int) -> None:
        """The bound for sessions opened from now on (a fleet sets its --max-per-host)."""
        with self._cond:
            self.limit = check_limit(limit)
            self._cond.notify_all()

    def open_now(self, key: HostKey) -> int:
        with self._cond:
            return self._open[key]

    def _take(self, key: HostKey, cancel: "CancelToken | None", waiting: Callable[[str], None] | None) -> None:
        told = False
        with self._cond:
            while self._open[key] >= self.limit:
                if cancel is not None and cancel.cancelled:
                    # the token raises its run's Cancelled (run/context.py, a layer above this one):
                    # the same exception, saying what the site was waiting for
                    try:
                        cancel.check()
                    except Exception as exc:
                        raise type(exc)(f"{cancel.why()}, while waiting for a free session to {key}") from None
                if not told and waiting is not None:
                    told = True
                    waiting(f"waiting for a free session to {key} ({self._open[key]} open, --max-per-host "
                            f"{self.limit})")
                self._cond.wait(WAIT_TICK)
            self._open[key] += 1
            self.peak[key] = max(self.peak[key], self._open[key])

    def _give(self, key: HostKey) -> None:
        with self._cond:
            self._open[key] -= 1
            if self._open[key] <= 0:
                del self._open[key]
            self._cond.notify_all()

    def acquire(self, keys: list[HostKey], cancel: "CancelToken | None" = None,
                waiting: Callable[[str], None] | None = None) -> Callable[[], None]:
        """Take a slot of each host (in sorted order); returns the release, to call exactly once."""
        held: list[HostKey] = []
        try:
            for key in sorted(set(keys)):
                self._take(key, cancel, waiting)
                held.append(key)
        except BaseException:
            for key in reversed(held):
                self._give(key)
            raise
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            for key in reversed(held):
                self._give(key)

        return release

    @contextmanager
    def held(self, keys: list[HostKey], cancel: "CancelToken | None" = None,
             waiting: Callable[[str], None] | None = None) -> Iterator[None]:
        release = self.acquire(keys, cancel, waiting)
        try:
            yield
        finally:
            release()


def check_limit(limit: int) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InputError(f"--max-per-host {limit}: give 1 or more (sessions open to one server host at a time)")
    return limit


LIMITER = HostLimiter()  # the process's one limiter: every site session goes through it


def configure(limit: int) -> None:
    LIMITER.configure(limit)
