"""Named failure points for fault-injection tests (after TiKV's `fail` and FreeBSD's fail points).

Code calls `hit("apply.action.3.before")` at interesting moments; nothing happens unless a
test armed that name, in-process with `arm()` or for a child process through the
DEPLOYER_FAILPOINTS environment variable: `name=action;name=action`, where action is
`raise` (an injected TargetError), `kill` (SIGKILL to this process: a crash with no
cleanup at all), `sleep:SECONDS` (hang there, as a stuck host does, for another process to
act meanwhile) or `call` (run a callback registered in-process). A `*` in a name matches
any text, so `apply.action.*.after=kill` arms every action.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import time
from typing import Callable

ENV = "DEPLOYER_FAILPOINTS"

_armed: dict[str, str] = {}
_callbacks: dict[str, Callable[[str], None]] = {}
_hits: list[str] = []


class InjectedFault(Exception):
    """Raised at an armed fail point: a stand-in for any failure the target could produce."""


def _from_env() -> dict[str, str]:
    out = {}
    for part in os.environ.get(ENV, "").split(";"):
        if "=" in part:
            name, action = part.split("=", 1)
            out[name.strip()] = action.strip()
    return out


def arm(name: str, action: str = "raise", callback: Callable[[str], None] | None = None) -> None:
    _armed[name] = action
    if callback is not None:
        _callbacks[name] = callback


def reset() -> None:
    _armed.clear()
    _callbacks.clear()
    _hits.clear()


def hits() -> list[str]:
    return list(_hits)


def hit(name: str) -> None:
    if not _armed and ENV not in os.environ:
        return
    _hits.append(name)
    table = {**_from_env(), **_armed}
    for pattern, action in table.items():
        if fnmatch.fnmatchcase(name, pattern):
            if action == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if action.startswith("sleep:"):
                time.sleep(float(action.split(":", 1)[1]))
                return
            if action == "call":
                _callbacks[pattern](name)
                return
            raise InjectedFault(f"injected fault at {name}")
