"""What a run cost on the wire, per server: round trips, requests, payload bytes each way.

Over a WAN what a patch costs is round trips, not disk: every transport counts them, so a run
shows its budget (the JSON report's `traffic`, and `-v` on stderr). A **round trip** is one
wait for the server after sending: requests sent together (a compound, a pipeline) and then
waited for cost one; a request waited for alone costs one. **Requests** are the protocol's
messages (SMB2 requests in a compound count one each; SFTP packets; a mock operation).
**Bytes** are file data: read from the server (downloads, read-backs) and written to it.

A meter belongs to one connection (an SMB session is shared by the servers that are one
machine): it attributes each count to the server whose operation is running.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator


@dataclass
class Traffic:
    round_trips: int = 0
    requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0

    def add(self, other: "Traffic") -> None:
        self.round_trips += other.round_trips
        self.requests += other.requests
        self.bytes_read += other.bytes_read
        self.bytes_written += other.bytes_written

    def to_json(self) -> dict[str, int]:
        return asdict(self)


class Meter:
    """Counts of one connection, by server name. `sent` then `answered` is one round trip,
    however many requests were sent before the wait."""

    def __init__(self, server: str):
        self.server = server  # the server counts go to unless `using` names another
        self.by_server: dict[str, Traffic] = {}
        self._waiting = False  # requests went out since the last answer
        self._lock = threading.Lock()

    def _t(self, server: str | None) -> Traffic:
        name = server or self.server
        t = self.by_server.get(name)
        if t is None:
            t = self.by_server[name] = Traffic()
        return t

    def sent(self, requests: int = 1, server: str | None = None) -> None:
        with self._lock:
            self._t(server).requests += requests
            self._waiting = True

    def answered(self, server: str | None = None) -> None:
        with self._lock:
            if self._waiting:
                self._waiting = False
                self._t(server).round_trips += 1

    def exchange(self, requests: int = 1, server: str | None = None) -> None:
        """Requests sent and their answers awaited at once (a blocking call)."""
        with self._lock:
            t = self._t(server)
            t.requests += requests
            t.round_trips += 1
            self._waiting = False

    def read(self, n: int, server: str | None = None) -> None:
        with self._lock:
            self._t(server).bytes_read += n

    def wrote(self, n: int, server: str | None = None) -> None:
        with self._lock:
            self._t(server).bytes_written += n


def meters_of(transports: Iterable[Any]) -> list[Meter]:
    """The meters of these transports (their own, or their shared link's), each once."""
    seen: dict[int, Meter] = {}
    for t in transports:
        for holder in (t, getattr(t, "link", None), getattr(t, "conn", None)):
            m = getattr(holder, "meter", None)
            if isinstance(m, Meter):
                seen.setdefault(id(m), m)
                break
    return list(seen.values())


def summary(meters: Iterable[Meter]) -> dict[str, Any]:
    """{"servers": {name: counts}, "total": counts}: the JSON report's `traffic`."""
    servers: dict[str, Traffic] = {}
    for m in meters:
        with m._lock:
            for name, t in m.by_server.items():
                servers.setdefault(name, Traffic()).add(t)
    total = Traffic()
    for t in servers.values():
        total.add(t)
    return {"servers": {k: servers[k].to_json() for k in sorted(servers, key=str.casefold)}, "total": total.to_json()}


def merge(a: dict[str, Any] | None, b: dict[str, Any]) -> dict[str, Any]:
    """Two summaries added up (a command that connects twice: plan, then apply)."""
    if not a:
        return b
    servers: dict[str, Traffic] = {}
    for doc in (a, b):
        for name, counts in doc["servers"].items():
            servers.setdefault(name, Traffic()).add(Traffic(**counts))
    total = Traffic()
    for t in servers.values():
        total.add(t)
    return {"servers": {k: servers[k].to_json() for k in sorted(servers, key=str.casefold)}, "total": total.to_json()}


def describe(doc: dict[str, Any]) -> str:
    """One line per server and the total, for -v."""
    def line(name: str, c: dict[str, int]) -> str:
        return (f"{name}: {c['round_trips']} round trips, {c['requests']} requests, "
                f"{c['bytes_written']:,} bytes written, {c['bytes_read']:,} bytes read")
    return "; ".join([*(line(n, c) for n, c in doc["servers"].items()), line("total", doc["total"])])


class MeteredFiles:
    """A FileTransport whose calls are counted as one request and one round trip each: for the
    mock site, whose "server" is a folder (no wire to count on), so that its runs report the
    same budget as the network transports do, operation for operation."""

    def __init__(self, files: Any):
        self._files = files
        self.server = files.server
        self.meter = Meter(files.server)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._files, name)
        if name.startswith("_") or not callable(value):
            return value

        def counted(*args: Any, **kw: Any) -> Any:
            self.meter.exchange()
            return value(*args, **kw)
        return counted

    def read_chunks(self, *args: Any, **kw: Any) -> Iterator[bytes]:
        self.meter.exchange()
        for block in self._files.read_chunks(*args, **kw):
            self.meter.read(len(block))
            yield block

    def sha256(self, path: str) -> str:
        from .base import sha256_of

        return sha256_of(self.read_chunks(path))

    def write_file(self, *args: Any, **kw: Any) -> int:
        self.meter.exchange()
        n = self._files.write_file(*args, **kw)
        self.meter.wrote(n)
        return n

    def append(self, path: str, data: bytes, **kw: Any) -> None:
        self.meter.exchange()
        self._files.append(path, data, **kw)
        self.meter.wrote(len(data))

    def __repr__(self) -> str:
        return f"Metered({self._files!r})"
