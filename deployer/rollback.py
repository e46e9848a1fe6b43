"""Undo a run, from its plan and its journal alone.

The same code serves a failure inside `apply`, `deployer rollback` of a finished run and
`deployer recover` after a crash: what to undo is read from the journal (which actions
began, which temporary files and backups exist), never from the memory of the process
that made them. Every undo step first looks at the target and does nothing when the
thing is already as it was, so undoing twice is harmless.

Three phases, each safe to repeat from wherever an earlier attempt stopped:
  1. quiesce: every service the run stopped is stopped again if it runs now (it may have
     been restarted by a later step, or by an earlier, interrupted rollback). Windows
     refuses to replace a file a running service holds, so files come back only after;
  2. restore, in reverse order: replaced files from their backups (byte for byte, with
     their write times), new files removed, Helper.srv copies of a site reset restored;
  3. settle: every service back to the state the plan observed before the run.
Then every touched file is compared with what the plan observed before the run (size,
write time and sha256) and every service with its original state: the claim "restored
byte for byte" is checked, not assumed.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from . import failpoints, winpath
from .journal import Journal
from .plan import FileState, Plan, ReplaceFile, ResetSite, SendCode, StartService, StopService
from .sms import services as sms
from .targets.base import RUNNING, STOPPED, ConnectionLost, TargetError, TransportTimeout
from .targets.connect import Endpoint, SiteConnection

Say = Callable[[str], None]


def backup_path(run_dir: str, number: int, name: str, copy: int | None = None) -> str:
    tag = f"{number:03d}" if copy is None else f"{number:03d}-{copy:02d}"
    return winpath.join(run_dir, "backup", f"{tag}-{name}")


def temp_path(dest: str, run: str, purpose: str = "new") -> str:
    return f"{dest}.~dpl-{run[-4:]}-{purpose}"


def current(ep: Endpoint, rel: str) -> FileState | None:
    stat = ep.files.stat(rel)
    if stat is None:
        return None
    if stat.is_dir:
        return FileState(-1, stat.mtime_ns, None, stat.name)
    return FileState(stat.size, stat.mtime_ns, ep.files.sha256(rel), stat.name)


def file_differences(conn: SiteConnection, wanted: list[tuple[str, str, FileState | None]]
                     ) -> list[tuple[Endpoint, str, FileState | None]]:
    """(endpoint, path, found) for every (server, path, wanted state) that does not hold;
    a wanted None means the file must not exist; found is None if it does not."""
    off = []
    for server, path, want in wanted:
        ep = conn.endpoint(server)
        now = current(ep, path)
        if (want is None and now is not None) or (want is not None and not want.same_content(now)):
            off.append((ep, path, now))
    return off


def service_differences(conn: SiteConnection, wanted: dict[tuple[str, str], str], wanted_word: str) -> list[str]:
    """Services not in their wanted state (running or stopped), in words."""
    off = []
    for (server, name), want in wanted.items():
        if want not in (RUNNING, STOPPED):
            continue
        try:
            now = conn.endpoint(server).services.query(name).state
        except TargetError as exc:
            off.append(f"{server} service {name}: cannot be queried ({exc})")
            continue
        if now != want:
            off.append(f"{server} service {name} is {now}, {wanted_word} {want}")
    return off


def put_back(ep: Endpoint, dest: str, backup: str, before: FileState, run: str) -> None:
    """Restore `dest` from `backup` atomically: server-side copy to a temporary name beside
    it, write time set, content checked, then one rename over the destination."""
    if ep.files.stat(backup) is None:
        raise TargetError(f"backup {winpath.absolute(ep.sms_root, backup)} is missing; cannot restore", server=ep.name,
                          path=dest)
    tmp = temp_path(dest, run, "restore")
    if ep.files.stat(tmp) is not None:
        ep.files.remove(tmp)
    ep.files.copy(backup, tmp)
    ep.files.set_mtime(tmp, before.mtime_ns)
    if before.sha256 and ep.files.sha256(tmp) != before.sha256:
        ep.files.remove(tmp)
        raise TargetError(f"backup {backup} does not match the original's sha256; not restored", server=ep.name,
                          path=dest)
    ep.files.rename(tmp, dest, replace=True)


@dataclass
class UndoResult:
    ok: bool
    remaining: list[str] = field(default_factory=list)  # what is not as it was, in words


class Undo:
    def __init__(self, plan: Plan, conn: SiteConnection, journal: Journal, say: Say):
        self.plan = plan
        self.conn = conn
        self.journal = journal
        self.say = say
        self.run = journal.run
        self.errors: list[str] = []
        # A server that timed out or went away is not asked again in this undo: against a hung
        # server every further step would wait its full timeout. What it holds is listed as
        # not restored, and `deployer recover` finishes the job once it is back.
        self.unreachable: dict[str, str] = {}

    def _servers_of(self, a) -> set[str]:
        return {a.server} | ({c.server for c in a.copies} if isinstance(a, ResetSite) else set())

    def _note_unreachable(self, exc: Exception, fallback: str) -> None:
        if isinstance(exc, (TransportTimeout, ConnectionLost)):
            self.unreachable.setdefault(getattr(exc, "server", None) or fallback, str(exc))

    def _events(self, kind: str) -> list[dict]:
        return [e for e in self.journal.events if e["event"] == kind]

    def begun(self) -> list[int]:
        numbers = {e["action"] for e in self._events("begin")}
        return sorted(numbers)

    def run_all(self, numbers: list[int] | None = None) -> UndoResult:
        with signals_deferred(self.say):
            return self._run_all(numbers)

    def _run_all(self, numbers: list[int] | None) -> UndoResult:
        numbers = self.begun() if numbers is None else numbers
        by_number = {a.number: a for a in self.plan.actions}
        self._quiesce([by_number[n] for n in numbers])
        for n in sorted(numbers, reverse=True):
            action = by_number[n]
            self.journal.write("undo_begin", action=n)
            gone = sorted(self._servers_of(action) & set(self.unreachable))
            try:
                if gone and not isinstance(action, (StopService, StartService, SendCode)):
                    raise TargetError(f"{', '.join(gone)} cannot be reached ({self.unreachable[gone[0]]})")
                failpoints.hit(f"undo.action.{n}.before")
                self._undo(action)
            except Exception as exc:  # keep going: restore as much as possible, report the rest
                self._note_unreachable(exc, action.server)
                self.errors.append(f"undo of action {n} failed: {exc}")
                self.journal.write("undo_failed", action=n, error=str(exc))
                self.say(f"  ! undo of action {n} failed: {exc}")
                continue
            self.journal.write("undone", action=n)
        self._remove_temps()
        self._settle_services()
        remaining = self._check() + self.errors
        if remaining:
            self.journal.write("rollback_failed", remaining=remaining)
            return UndoResult(False, remaining)
        self.journal.write("rolled_back")
        return UndoResult(True)

    # --- per action -------------------------------------------------------------------------

    def _quiesce(self, actions: list) -> None:
        # only services the run did stop: a stop that failed, or never ran, changed nothing
        stopped = {e["action"] for e in self._events("done")}
        for a in actions:
            if isinstance(a, StopService) and a.number in stopped and a.server not in self.unreachable:
                svc = self.conn.endpoint(a.server).services
                try:
                    if svc.query(a.service).state == RUNNING:
                        self.say(f"  stop {a.service} on {a.server} again, to restore the files it holds")
                        svc.stop(a.service)
                except TargetError as exc:
                    self._note_unreachable(exc, a.server)
                    self.errors.append(f"{a.server} service {a.service} could not be stopped: {exc}")

    def _undo(self, a) -> None:
        if isinstance(a, (StopService, StartService)):
            return  # services are quiesced before and settled after the files
        if isinstance(a, ReplaceFile):
            self._restore_file(a.server, a.path, a.before, backup_path(self.journal.dir, a.number, a.file))
        elif isinstance(a, ResetSite):
            self._undo_reset(a)
        elif isinstance(a, SendCode):
            self.say(f"  code {a.code} sent to {a.service} cannot be taken back ({sms.describe_code(a.code)}); "
                     "nothing to undo")

    def _restore_file(self, server: str, dest: str, before: FileState | None, backup: str) -> None:
        ep = self.conn.endpoint(server)
        now = current(ep, dest)
        if before is None:
            if now is not None:
                self.say(f"  remove {ep.where(dest)} (it did not exist before)")
                ep.files.remove(dest)
            return
        if before.same_content(now):
            return
        self.say(f"  restore {ep.where(dest)} from its backup")
        put_back(ep, dest, backup, before, self.run)

    def _undo_reset(self, a: ResetSite) -> None:
        by_server: dict[str, list[tuple[int, object]]] = {}
        for k, c in enumerate(a.copies):
            ep = self.conn.endpoint(c.server)
            if c.before is not None and c.before.same_content(current(ep, c.path)):
                continue
            if c.before is None and ep.files.stat(c.path) is None:
                continue
            by_server.setdefault(c.server, []).append((k, c))
        for server, items in by_server.items():
            ep = self.conn.endpoint(server)
            stopped = []
            for svc in sms.HELPER_SERVICES:  # they hold Helper.srv files open
                try:
                    if ep.services.query(svc).state == RUNNING:
                        ep.services.stop(svc)
                        stopped.append(svc)
                except TargetError as exc:
                    if getattr(exc, "winerror", 0) != 1060:
                        raise
            try:
                for k, c in items:
                    self._restore_file(server, c.path, c.before,
                                       backup_path(self.journal.dir, a.number, winpath.basename(c.path), k))
            finally:
                for svc in reversed(stopped):
                    ep.services.start(svc)

    # --- after the actions ------------------------------------------------------------------

    def _remove_temps(self) -> None:
        for e in self._events("staged"):
            ep = self.conn.endpoint(e["server"])
            if ep.name in self.unreachable:
                self.errors.append(f"temporary file {ep.where(e['temp'])} could not be removed: {ep.name} cannot be "
                                   "reached")
                continue
            try:
                if ep.files.stat(e["temp"]) is not None:
                    ep.files.remove(e["temp"])
            except TargetError as exc:
                self._note_unreachable(exc, ep.name)
                self.errors.append(f"temporary file {ep.where(e['temp'])} could not be removed: {exc}")

    def _original_services(self) -> dict[tuple[str, str], str]:
        return {(o["server"], o["service"]): o["state"] for o in self.plan.observations if o["kind"] == "service"}

    def _settle_services(self) -> None:
        # services the run stopped come back last, after every other service (the order they
        # were stopped in, reversed), as an operator following the article would restart them
        stops = [(a.server, a.service) for a in self.plan.actions if isinstance(a, StopService)]
        originals = self._original_services()
        order = [k for k in originals if k not in stops] + [k for k in reversed(stops) if k in originals]
        for (server, name), state in ((k, originals[k]) for k in order):
            if state not in (RUNNING, STOPPED) or server in self.unreachable:
                continue
            ep = self.conn.endpoint(server)
            try:
                now = ep.services.query(name).state
                if now == state:
                    continue
                self.say(f"  {'start' if state == RUNNING else 'stop'} {name} on {server} (back to {state})")
                ep.services.start(name) if state == RUNNING else ep.services.stop(name)
            except TargetError as exc:
                self._note_unreachable(exc, server)
                self.errors.append(f"{server} service {name} could not be returned to {state}: {exc}")

    def _check(self) -> list[str]:
        """What is not byte-identical (size, write time, sha256) or in its original state."""
        gone = set(self.unreachable)
        wanted = [(t.server, t.path, t.before) for t in self.plan.touched() if t.server not in gone]
        try:
            files = file_differences(self.conn, wanted)
        except TargetError as exc:
            return [f"the restored files cannot be read ({exc})"]
        existed = {(server, path) for server, path, before in wanted if before is not None}
        off = [f"{ep.where(path)} is not as before the run" if (ep.name, path) in existed
               else f"{ep.where(path)} exists but did not before the run" for ep, path, _ in files]
        off += [f"{server} could not be reached, so nothing on it was checked: {why}"
                for server, why in sorted(self.unreachable.items())]
        services = {k: v for k, v in self._original_services().items() if k[0] not in gone}
        return off + service_differences(self.conn, services, "was")

@contextmanager
def signals_deferred(say: Say) -> Iterator[None]:
    """Ctrl-C and SIGTERM cannot cut a rollback short: a half-undone site is the one outcome
    worse than either end. They are noted and the undo goes on (SIGKILL cannot be caught:
    that is what `deployer recover` is for)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, frame: object) -> None:
        say(f"  ({signal.Signals(signum).name} received: the rollback finishes first, it is not stopped half-way)")

    previous = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
