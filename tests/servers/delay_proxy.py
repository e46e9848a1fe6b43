"""A TCP proxy on 127.0.0.1 that delays each direction, keeping order: a WAN on loopback.

`tc netem` is not available on these kernels, so the link is simulated in user space: every
piece of data read from one side is written to the other `delay` seconds later, in the order
it came (one writer per direction). TCP_NODELAY on both legs, so nothing waits for Nagle.

It also counts, per proxy, what crossed it: bytes each way and **turns**: a turn is the moment
the server starts answering after the client has sent something. A client that pipelines
requests pays one turn for many; a client that waits for each answer pays one per request.
At a one-way delay d, a run's wall time is at least turns x 2d.

`stop()` closes the listener and every connection at once (a link that went down);
`cut_after(n)` does the same once n more bytes have gone to the server (mid-message, with
requests in flight), which tests use to cut a run mid-pipeline.

    proxy = DelayProxy(upstream_port, delay=0.025).start(); ...; proxy.stats(); proxy.stop()
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class LinkStats:
    turns: int = 0
    to_server: int = 0  # bytes
    to_client: int = 0
    connections: int = 0

    def __sub__(self, other: "LinkStats") -> "LinkStats":
        return LinkStats(self.turns - other.turns, self.to_server - other.to_server,
                         self.to_client - other.to_client, self.connections - other.connections)

    def __add__(self, other: "LinkStats") -> "LinkStats":
        return LinkStats(self.turns + other.turns, self.to_server + other.to_server,
                         self.to_client + other.to_client, self.connections + other.connections)


class DelayProxy:
    def __init__(self, upstream_port: int, *, delay: float = 0.025, upstream_host: str = "127.0.0.1",
                 listen_port: int = 0):
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay
        self.port = listen_port
        self._stats = LinkStats()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._cut_at: int | None = None  # to_server byte count at which the link goes down
        self._listen = True  # after a cut: keep accepting new connections (the link came back)
        self.cuts = 0

    # --- public ------------------------------------------------------------------------------

    def start(self) -> "DelayProxy":
        self._thread = threading.Thread(target=self._run, name=f"delay-proxy-{self.upstream[1]}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the delay proxy did not start")
        return self

    def stats(self) -> LinkStats:
        with self._lock:
            return LinkStats(**vars(self._stats))

    def cut_after(self, n: int, *, stay_down: bool = True) -> None:
        """Cut every connection once `n` more bytes have been sent to the server (those pass,
        nothing after them); with stay_down, stop listening too (the server is unreachable)."""
        with self._lock:
            self._cut_at = self._stats.to_server + n
            self._listen = not stay_down

    def _cut(self) -> None:
        """On the loop: the link goes down now."""
        self.cuts += 1
        self._abort(close_listener=not self._listen)

    def _abort(self, *, close_listener: bool) -> None:
        """On the loop: every connection (both legs) dropped, and the listener closed if asked."""
        if close_listener and self._server is not None:
            self._server.close()
        for w in list(self._writers):
            try:
                w.transport.abort()
            except Exception:  # noqa: BLE001 - already gone
                pass

    def stop(self) -> None:
        """Close the listener and cut every connection (both legs) at once."""
        loop = self._loop
        if loop is None:
            return
        done = threading.Event()

        def cut() -> None:
            self._abort(close_listener=True)
            done.set()

        loop.call_soon_threadsafe(cut)
        done.wait(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    # --- the loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            # the pumps of cut connections end on their own; wind up whatever is still pending
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.transport.abort()
            return
        for w in (c_writer, s_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._writers.add(w)
        with self._lock:
            self._stats.connections += 1
        state = {"last": None}
        try:
            await asyncio.gather(self._pump(c_reader, s_writer, "up", state),
                                 self._pump(s_reader, c_writer, "down", state), return_exceptions=True)
        except asyncio.CancelledError:
            pass  # the proxy is stopping: end quietly (asyncio would log a cancelled connection task)
        finally:
            for w in (c_writer, s_writer):
                self._writers.discard(w)
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, way: str,
                    state: dict) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if data is None:
                    writer.transport.abort() if writer.transport else None
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        task = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                cut = False
                with self._lock:
                    if way == "up" and self._cut_at is not None and self._stats.to_server + len(data) >= self._cut_at:
                        data = data[:self._cut_at - self._stats.to_server]
                        self._cut_at = None
                        cut = True
                    if way == "up":
                        self._stats.to_server += len(data)
                    else:
                        self._stats.to_client += len(data)
                        if state["last"] == "up":
                            self._stats.turns += 1
                    state["last"] = way
                if cut:  # what got through before the cut is delivered at once, then the link goes
                    if data:
                        writer.write(data)
                    self._cut()
                    break
                queue.put_nowait((time.monotonic() + self.delay, data))
        except (ConnectionError, OSError):
            pass
        finally:
            queue.put_nowait((time.monotonic() + self.delay, None))
            try:
                await task
            except (ConnectionError, OSError):
                pass
