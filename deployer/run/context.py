"""What a run is given besides its plan: the site, a cancel token and an event sink.

A run never prints, never reads the keyboard and never installs a signal handler. It
emits events (messages, progress ticks, questions, results), each tagged with its site,
and a renderer subscribed to them shows them; it checks its cancel token at every action
boundary. So a run behaves the same on the main thread or on a worker thread of a fleet,
and the CLI alone decides what a signal or a terminal means.

A sink that raises (a closed pipe, a full disk under a log, a bug in a renderer) is
detached and the run goes on: what the operator sees may end early, but the site still
ends fully patched or fully restored. Nothing a renderer does can stop an undo.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

# event kinds
SAY = "say"  # a line of the run's narrative ("[3/14] stop SMS_EXECUTIVE on DEMOSRV")
WARN = "warn"  # a warning (unfinished runs, a lock that could not be removed)
PROGRESS = "progress"  # data: what, done, total
QUESTION = "question"  # data: question, plan; the sink's return value is the answer
PLAN = "plan"  # data: plan, before the question
RESULT = "result"  # data: result
WAIT = "wait"  # text: what is awaited; data: elapsed, timeout (s): a long wait's heartbeat, at each poll
BYTES = "bytes"  # data: bytes, payload bytes just sent to a server (a fleet adds them up for its live view and report)


@dataclass(frozen=True)
class Event:
    site: str
    kind: str
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


Sink = Callable[[Event], Any]


class Cancelled(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM, SIGHUP, a fleet's max-fail): it rolls back."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class CancelToken:
    """Set from any thread or signal handler; checked by the run at its boundaries.

    A fleet shares one token among its sites (`child()` tokens are cancelled with their
    parent, and can be cancelled alone)."""

    def __init__(self, parent: "CancelToken | None" = None):
        self._event = threading.Event()
        self.reason = ""
        self.parent = parent

    def cancel(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or (self.parent is not None and self.parent.cancelled)

    def why(self) -> str:
        if self._event.is_set():
            return self.reason
        return self.parent.why() if self.parent is not None else ""

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled(self.why())

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if cancelled meanwhile."""
        if self.parent is None:
            return self._event.wait(seconds)
        deadline = time.monotonic() + seconds
        while not self.cancelled:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._event.wait(min(left, 0.1))
        return True

    def child(self) -> "CancelToken":
        return CancelToken(self)


class RunContext:
    """The site a run works on, how it is told to stop, and where its events go."""

    def __init__(self, site: str, sink: Sink | None = None, cancel: CancelToken | None = None):
        self.site = site
        self.sink = sink
        self.cancel = cancel or CancelToken()
        self.detached: BaseException | None = None  # why the sink was detached
        # True while the site is being changed: a signal then cancels the run (it rolls back)
        # instead of interrupting the command where it stands
        self.changing = False
        self.undoing = False  # an undo is running: it finishes whatever signal comes
        self.traffic: dict[str, Any] | None = None  # round trips and bytes of its sessions (targets/traffic.py)
        self.declined = False  # a question was answered no (or could not be asked): see ask

    def emit(self, kind: str, text: str = "", **data: Any) -> Any:
        if self.sink is None or self.detached is not None:
            return None
        try:
            return self.sink(Event(self.site, kind, text, data))
        except Exception as exc:  # noqa: BLE001 - whatever a renderer does, the run goes on
            self.detached = exc
            logging.getLogger("deployer.run").debug("site %s: the event sink failed and was detached: %r",
                                                     self.site, exc)
            return None

    def say(self, text: str) -> None:
        self.emit(SAY, text)

    def warn(self, text: str) -> None:
        self.emit(WARN, text)

    def progress(self, what: str, done: int, total: int) -> None:
        self.emit(PROGRESS, what, done=done, total=total)

    def waiting(self, what: str, elapsed: float, timeout: float) -> None:
        """A wait goes on (replication, a service): renderers show its clock and, piped, a
        heartbeat line at most every 30 s (report/heartbeat.py)."""
        self.emit(WAIT, what, elapsed=elapsed, timeout=timeout)

    def moved(self, count: int) -> None:
        """`count` payload bytes went to a server (a staged upload's chunk)."""
        self.emit(BYTES, bytes=count)

    def ask(self, question: str, **data: Any) -> bool:
        """A question for the operator; no answer (no renderer, or a failed one) is a no, and a
        command answered no leaves the site as it found it (`declined`: the session writes nothing)."""
        yes = self.emit(QUESTION, question, **data) is True
        self.declined = self.declined or not yes
        return yes
