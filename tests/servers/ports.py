"""TCP ports for the servers the tests start, one block per pytest-xdist worker.

Each worker (gw0, gw1, ...; a run without xdist counts as gw0) takes its ports from a block of
its own below the kernel's ephemeral range: the workers never hand out the same port, and no
outgoing connection of any process is given one of them between the check here and the
server binding it. Within the block the search starts at an offset taken from the process id,
so two test sessions on one machine rarely try the same ports; a port something else holds is
passed over (it is bound here first to see).
"""

from __future__ import annotations

import os
import socket

FIRST = 20000  # below 32768, where Linux's default ephemeral range (net.ipv4.ip_local_port_range) starts
BLOCK = 400
BLOCKS = 30  # 20000 + 30 * 400 = 32000
_given: set[int] = set()


def worker_index() -> int:
    """0 for gw0 (or no xdist), 1 for gw1, ..."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(c for c in name if c.isdigit())
    return int(digits or 0)


def block() -> range:
    start = FIRST + (worker_index() % BLOCKS) * BLOCK
    return range(start, start + BLOCK)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def take(n: int = 1) -> list[int]:
    """`n` ports of this worker's block that nothing listens on and this process has not given out."""
    ports = block()
    offset = os.getpid() % len(ports)
    out: list[int] = []
    for i in range(len(ports)):
        port = ports[(offset + i) % len(ports)]
        if port in _given or not _bindable(port):
            continue
        _given.add(port)
        out.append(port)
        if len(out) == n:
            return out
    raise RuntimeError(f"no free port left in {ports.start}-{ports.stop - 1} (this worker's block)")


def free_port() -> int:
    return take(1)[0]
