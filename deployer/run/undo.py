"""Undo a run, from its plan and its journal alone.

The same code serves a failure inside `apply`, `deployer rollback` of a finished run and
`deployer recover` after a crash: what to undo is read from the journal (which actions
began, which temporary files and backups exist), never from the memory of the process
that made them. Every undo step first looks at the target and does nothing when the
thing is already as it was, so undoing twice is harmless. A journal damaged before its
last line is not trusted to say which actions began: then every action of the plan is
undone (each a no-op where nothing changed) and every temporary name the plan implies is
looked for.

Three phases, each safe to repeat from wherever an earlier attempt stopped:
  1. quiesce: every service the run stopped is stopped again if it runs now (it may have
     been restarted by a later step, or by an earlier, interrupted rollback). Windows
     refuses to replace a file a running service holds, so files come back only after;
  2. restore, in reverse order, each action by its kind (deployer/steps/);
  3. settle: every service back to the state the plan observed before the run.
Then every touched file is compared with what the plan observed before the run (size,
write time and sha256), every service with its original state, and every folder the run
touched with the names it held when the run began (folders.py: a temporary copy left by an
interrupted write is removed, anything else new is reported): the claim "restored byte for
byte" is checked, not assumed.

The undo restores as far as it can, whatever fails: a step that fails is listed and the
next one tried. Temporary files go first (on a full disk they are the space a restore
needs), and a journal that can no longer be written (the disk holding it is full) is noted,
not a reason to stop restoring.

Cancellation does not reach an undo: a half-undone site is the one outcome worse than
either end. A signal during an undo is noted and the undo goes on (SIGKILL cannot be
caught: that is what `deployer recover` is for).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .. import failpoints
from ..model import winpath
from ..model.state import FileState
from ..plan.model import Plan
from ..plan.observe import holds, read_file, state_of
from ..steps import kind_of
from ..targets.base import RUNNING, STOPPED, ConnectionLost, TargetError, TransportTimeout
from ..targets.connect import SiteConnection
from .before_state import CannotStart, account, missing_file
from .differences import file_differences, original_services, service_differences
from .batch import existing, restore_batch
from .context import RunContext
from .folders import extras, journaled_listing
from . import known
from .journal import Journal
from .store import TEMP_MARK, temp_path


@dataclass
class UndoResult:
    ok: bool
    remaining: list[str] = field(default_factory=list)  # what is not as it was, in words
    journal_error: str | None = None  # the journal could not record the undo (the site was still checked)
    warnings: list[str] = field(default_factory=list)  # facts of the before-state the restore brought back


class Undo:
    def __init__(self, plan: Plan, conn: SiteConnection, journal: Journal, ctx: RunContext):
        self.plan = plan
        self.conn = conn
        self.journal = journal
        self.ctx = ctx
        self.run = journal.run
        self.errors: list[str] = []
        events = journal.events
        self.trusted = events.trusted
        # what the journal says completed; a damaged journal vouches for nothing, so every stop
        # of the plan may have happened
        self.done = events.actions("done") if self.trusted else {a.number for a in plan.actions}
        # A server that timed out or went away is not asked again in this undo: against a hung
        # server every further step would wait its full timeout. What it holds is listed as
        # not restored, and `deployer recover` finishes the job once it is back.
        self.unreachable: dict[str, str] = {}
        self.journal_error: str | None = None
        # services that could not start because a file they need is missing (before_state.py)
        self.cannot_start: dict[tuple[str, str], CannotStart] = {}
        self._begun: list[int] | None = None
        self.warnings: list[str] = []

    def note(self, event: str, **data) -> None:
        self.note_many([(event, data)])

    def note_many(self, records: list[tuple[str, dict]]) -> None:
        """Journal undo events (one append); a journal that cannot be written is noted once, and the undo goes on."""
        try:
            self.journal.write_many(records)
        except Exception as exc:  # noqa: BLE001 - restoring the site matters more than its record
            if self.journal_error is None:
                self.journal_error = str(exc)
                self.ctx.warn(f"Warning: the journal cannot be written ({exc}); restoring anyway")

    def say(self, text: str) -> None:
        self.ctx.say(text)

    def _note_unreachable(self, exc: Exception, fallback: str) -> None:
        if isinstance(exc, (TransportTimeout, ConnectionLost)):
            self.unreachable.setdefault(getattr(exc, "server", None) or fallback, str(exc))

    def begun(self) -> list[int]:
        if not self.trusted:
            return sorted(a.number for a in self.plan.actions)
        if self._begun is None:
            began = self.journal.events.actions("begin")
            if began:
                # Files the site's own programs write (Maintenance Manager replicates Client.src as
                # soon as an earlier action starts SMS_EXECUTIVE) change before their action begins;
                # a restart of SMS_EXECUTIVE in the settle phase would copy the restored ones back,
                # but it may not start (before_state.py), so their restore never depends on it.
                began = began | {a.number for a in self.plan.actions if a.number not in began
                                 and kind_of(a).written_by_site and self._changed(a)}
            self._begun = sorted(began)
        return self._begun

    def _changed(self, action) -> bool:
        wanted = [(t.server, t.path, t.before) for t in kind_of(action).touched(action)
                  if t.server not in self.unreachable]
        try:
            return bool(file_differences(self.conn, wanted))
        except TargetError as exc:
            if isinstance(exc, TransportTimeout):  # hung: waited for once, not again by each step after
                self._note_unreachable(exc, action.server)
            return True  # its undo says what it meets

    def run_all(self, numbers: list[int] | None = None) -> UndoResult:
        self.ctx.undoing = True
        try:
            return self._run_all(self.begun() if numbers is None else numbers)
        finally:
            self.ctx.undoing = False

    def _run_all(self, numbers: list[int]) -> UndoResult:
        self._remove_temps()
        self._remove_leftovers()
        self._quiesce([self.plan.action(n) for n in numbers])
        runs, done_together = self._undo_runs(sorted(numbers, reverse=True)), set()
        for n in sorted(numbers, reverse=True):
            if n in done_together or (n in runs and self._undo_run(runs[n])):
                done_together |= {a.number for a in runs.get(n, [])}
                continue
            action = self.plan.action(n)
            kind = kind_of(action)
            self.note("undo_begin", action=n)
            gone = sorted(kind.servers(action) & set(self.unreachable))
            try:
                # a kind whose undo spans servers restores every one it can reach (on_each_server)
                if gone and kind.touched(action) and not kind.undo_per_server:
                    raise TargetError(f"{', '.join(gone)} cannot be reached ({self.unreachable[gone[0]]})")
                failpoints.hit(f"undo.action.{n}.before")
                kind.undo(self, action)
            except Exception as exc:  # keep going: restore as much as possible, report the rest
                self._note_unreachable(exc, action.server)
                self.errors.append(f"undo of action {n} failed: {_words(exc)}")
                self.note("undo_failed", action=n, error=_words(exc))
                self.say(f"  ! undo of action {n} failed: {_words(exc)}")
                continue
            self.note("undone", action=n)
        self._remove_temps()
        self._remove_leftovers()
        self._settle_services()
        remaining = self._check() + self.errors
        if remaining:
            self.note("rollback_failed", remaining=remaining, **({"warnings": self.warnings} if self.warnings else {}))
            return UndoResult(False, remaining, self.journal_error, self.warnings)
        self.note("rolled_back", **({"warnings": self.warnings} if self.warnings else {}))
        return UndoResult(True, journal_error=self.journal_error, warnings=self.warnings)

    def _undo_runs(self, numbers: list[int]) -> dict[int, list]:
        """Runs of consecutive actions (undo order) a kind undoes at once (`undo_many`), by first number."""
        runs: list[list] = []
        for n in numbers:
            a = self.plan.action(n)
            kind = kind_of(a)
            ok = getattr(kind, "undo_many", None) is not None and kind.undo_batchable(self, a) \
                and not kind.servers(a) & set(self.unreachable)
            if ok and runs and runs[-1] and kind_of(runs[-1][-1]) is kind:
                runs[-1].append(a)
            else:
                runs.append([a] if ok else [])
        return {r[0].number: r for r in runs if len(r) > 1}

    def _undo_run(self, group: list) -> bool:
        """Undo a run at once, in its place in the undo order: its undo_begin records in one durable
        append before any restore, its undone records in one after. False if it failed: the
        one-by-one loop then says which action failed (each undo does nothing where the file is
        already back)."""
        try:
            self.journal.write_many([("undo_begin", {"action": a.number}) for a in group])
        except Exception:  # noqa: BLE001 - one by one, each noting what it can
            return False
        try:
            for a in group:
                failpoints.hit(f"undo.action.{a.number}.before")
            kind_of(group[0]).undo_many(self, group)
        except Exception as exc:  # noqa: BLE001 - the one-by-one loop says which action failed
            self._note_unreachable(exc, group[0].server)
            return False
        self.note_many([("undone", {"action": a.number}) for a in group])
        return True

    # --- what the kinds call ----------------------------------------------------------------

    def on_each_server(self, parts: dict[str, Callable[[], None]]) -> None:
        """Run each server's part of an undo, whatever another server's part meets: one server
        that cannot be reached (or fails) never leaves the others' files as the run left them.
        Raises at the end, naming exactly the servers not restored; `recover` finishes them."""
        failed: dict[str, str] = {}
        for server, part in parts.items():
            if server in self.unreachable:
                failed[server] = f"cannot be reached ({self.unreachable[server]})"
                continue
            try:
                part()
            except Exception as exc:  # noqa: BLE001 - every other server is still restored
                self._note_unreachable(exc, server)
                failed[server] = _words(exc)
        if failed:
            done = [s for s in parts if s not in failed]
            raise TargetError("not restored on " + "; ".join(f"{s} ({why})" for s, why in failed.items())
                              + (f"; restored on {', '.join(done)}" if done else ""), server=", ".join(failed))

    def read(self, server: str, path: str) -> FileState | None:
        return read_file(self.conn.endpoint(server), path)

    def holds(self, server: str, path: str, want: FileState | None) -> bool:
        """Whether the file is `want`, its content read only when its size and time agree."""
        return holds(self.conn.endpoint(server), path, want)

    def stop_if_running(self, server: str, service: str, why: str) -> None:
        svc = self.conn.endpoint(server).services
        try:
            if svc.query(service).state == RUNNING:
                self.say(f"  stop {service} on {server} again, {why}")
                svc.stop(service)
        except TargetError as exc:
            self._note_unreachable(exc, server)
            self.errors.append(f"{server} service {service} could not be stopped: {exc}")

    @contextmanager
    def services_stopped(self, server: str, services: Iterable[str]) -> Iterator[None]:
        """Stop the running ones of `services` on `server` for the block, start them again after."""
        ep = self.conn.endpoint(server)
        stopped = []
        for svc in services:
            try:
                if ep.services.query(svc).state == RUNNING:
                    ep.services.stop(svc)
                    stopped.append(svc)
            except TargetError as exc:
                if getattr(exc, "winerror", 0) != 1060:
                    raise
        try:
            yield
        finally:
            for svc in reversed(stopped):
                self.start_service(server, svc)

    def start_service(self, server: str, name: str) -> None:
        """Start a service the undo returns to running. One that cannot find a file it needs is
        kept for the check, which tells a fact of the before-state from a failed restore."""
        try:
            self.conn.endpoint(server).services.start(name)
        except TargetError as exc:
            if not missing_file(exc):
                raise
            self.cannot_start[(server, name)] = CannotStart(server, name, str(exc))
            self.say(f"  ! {name} on {server} cannot start: {exc}")
        else:
            self.cannot_start.pop((server, name), None)

    def restore_files(self, files: Iterable[tuple[str, str, FileState | None, str]]) -> None:
        """restore_file for each (server, path, before, backup), server by server: files on
        several servers are restored on every server that can be reached (on_each_server)."""
        by_server: dict[str, list[tuple[str, FileState | None, str]]] = {}
        for server, dest, before, backup in files:
            by_server.setdefault(server, []).append((dest, before, backup))

        self.on_each_server({server: (lambda s=server: self.restore_on(s, by_server[s])) for server in by_server})

    def restore_on(self, server: str, items: list[tuple[str, FileState | None, str]]) -> None:
        """restore_file of each (path, before, backup) of one server: in batches where its
        transport copies many files at once (run/batch.py), else one by one."""
        ep = self.conn.endpoint(server)
        if getattr(ep.files, "copy_many", None) is None:
            for dest, before, backup in items:
                self.restore_file(server, dest, before, backup)
            return
        restore_batch(self, ep, items)

    def restore_file(self, server: str, dest: str, before: FileState | None, backup: str) -> None:
        ep = self.conn.endpoint(server)
        if getattr(ep.files, "copy_many", None) is not None:  # its backup and temporary name asked at once
            restore_batch(self, ep, [(dest, before, backup)])
            return
        if before is None:
            if ep.files.stat(dest) is not None:
                self.say(f"  remove {ep.where(dest)} (it did not exist before)")
                ep.files.remove(dest)
            return
        if holds(ep, dest, before):  # read only when its size and time say it may be as before
            return
        self.say(f"  restore {ep.where(dest)} from its backup")
        self._put_back(server, dest, backup, before)

    def _put_back(self, server: str, dest: str, backup: str, before: FileState) -> None:
        """Restore `dest` from `backup` atomically: server-side copy to a temporary name beside
        it, write time set, content checked, then one rename over the destination."""
        ep = self.conn.endpoint(server)
        found = ep.files.stat(backup)
        if found is None:
            raise TargetError(f"backup {winpath.absolute(ep.sms_root, backup)} is missing; cannot restore",
                              server=ep.name, path=dest)
        tmp = temp_path(dest, self.run, "restore")
        if ep.files.stat(tmp) is not None:
            ep.files.remove(tmp)
        vouched = known.vouched_sources(ep, [(backup, before)], [found])  # then the copy need not be read back
        ep.files.copy(backup, tmp)
        ep.files.set_mtime(tmp, before.mtime_ns)
        failpoints.hit("undo.restore.written")  # the restored copy beside the file, not yet renamed
        got = known.vouched_copies(ep, [(tmp, before)], vouched)[0]
        if before.sha256 and got is None and ep.files.sha256(tmp) != before.sha256:
            ep.files.remove(tmp)
            raise TargetError(f"backup {backup} does not match the original's sha256; not restored", server=ep.name,
                              path=dest)
        if not before.sha256 and not before.matches(got or state_of(ep.files.stat(tmp))):  # by fingerprint (steps/base.py by_identity)
            ep.files.remove(tmp)
            raise TargetError(f"backup {backup} does not match the original's size and write time; not restored",
                              server=ep.name, path=dest)
        ep.files.rename(tmp, dest, replace=True)

    # --- around the actions -----------------------------------------------------------------

    def _quiesce(self, actions: list) -> None:
        for a in actions:
            try:
                kind_of(a).quiesce(self, a)
            except Exception as exc:  # noqa: BLE001 - the restore of that file will say what it meets
                self._note_unreachable(exc, a.server)
                self.errors.append(f"services of action {a.number} could not be stopped again: {_words(exc)}")

    def _remove_leftovers(self) -> None:
        """Remove the temporary copies interrupted writes left beside the touched files."""
        try:
            found = extras(self.plan, self.conn, journaled_listing(self.journal.events), set(self.unreachable))
        except Exception as exc:  # noqa: BLE001 - the check lists the folders again and reports
            self.errors.append(f"the touched folders could not be listed: {_words(exc)}")
            return
        for extra in (e for e in found if e.leftover_of):
            ep = self.conn.endpoint(extra.server)
            try:
                self.say(f"  remove {ep.where(extra.path)} (a temporary copy of {extra.leftover_of} left by an "
                         "interrupted write)")
                ep.files.remove(extra.path)
            except Exception as exc:  # noqa: BLE001 - reported by the check
                self.errors.append(f"temporary file {ep.where(extra.path)} could not be removed: {_words(exc)}")

    def _temps(self) -> list[tuple[str, str]]:
        """(server, temp path) of every temporary name this run may have left: those the journal
        announced, and (the journal may be damaged) those the plan implies for its files."""
        out = [(e["server"], e["temp"]) for e in self.journal.events.of("staged")
               if isinstance(e.get("server"), str) and isinstance(e.get("temp"), str) and TEMP_MARK in e["temp"]]
        for a in self.plan.actions:
            for t in kind_of(a).touched(a):
                for purpose in ("new", "restore"):
                    out.append((t.server, temp_path(t.path, self.run, purpose)))
        return list(dict.fromkeys(out))

    def _remove_temps(self) -> None:
        temps = self._temps()
        present = existing(self.conn, [(s, t) for s, t in temps if s not in self.unreachable])
        for server, temp in temps:
            if (server, temp) in present and not present[(server, temp)]:
                continue  # asked in a batch with the server's other temporary names: not there
            try:
                ep = self.conn.endpoint(server)
            except KeyError:
                continue
            if ep.name in self.unreachable:
                error = f"temporary file {ep.where(temp)} could not be removed: {ep.name} cannot be reached"
                if error not in self.errors:
                    self.errors.append(error)
                continue
            try:
                if ep.files.stat(temp) is not None:
                    ep.files.remove(temp)
            except Exception as exc:  # noqa: BLE001 - listed; the next attempt (recover) tries again
                self._note_unreachable(exc, ep.name)
                error = f"temporary file {ep.where(temp)} could not be removed: {_words(exc)}"
                if error not in self.errors:
                    self.errors.append(error)

    def _settle_services(self) -> None:
        # services the run stopped come back last, after every other service (the order they
        # were stopped in, reversed), as an operator following the article would restart them
        stops = [(server, service) for a in self.plan.actions
                 for server, service, state in kind_of(a).service_effects(a) if state == STOPPED]
        originals = original_services(self.plan)
        order = [k for k in originals if k not in stops] + [k for k in reversed(stops) if k in originals]
        for (server, name), state in ((k, originals[k]) for k in order):
            if state not in (RUNNING, STOPPED) or server in self.unreachable:
                continue
            ep = self.conn.endpoint(server)
            try:
                if ep.services.query(name).state == state:
                    continue
                self.say(f"  {'start' if state == RUNNING else 'stop'} {name} on {server} (back to {state})")
                self.start_service(server, name) if state == RUNNING else ep.services.stop(name)
            except Exception as exc:  # noqa: BLE001 - every other service is still returned
                self._note_unreachable(exc, server)
                self.errors.append(f"{server} service {name} could not be returned to {state}: {_words(exc)}")

    def _check(self) -> list[str]:
        """What is not byte-identical (size, write time, sha256) or in its original state."""
        gone = set(self.unreachable)
        wanted = [(t.server, t.path, t.before) for t in self.plan.touched() if t.server not in gone]
        try:
            files = file_differences(self.conn, wanted)
            new = extras(self.plan, self.conn, journaled_listing(self.journal.events), gone)
        except Exception as exc:  # noqa: BLE001 - unverified is not restored
            return [f"the restored files cannot be read ({_words(exc)})"]
        existed = {(server, path) for server, path, before in wanted if before is not None}
        off = []
        for server, path, _ in files:
            where = self.conn.endpoint(server).where(path)
            off.append(f"{where} is not as before the run" if (server, path) in existed
                       else f"{where} exists but did not before the run")
        off += [f"{self.conn.endpoint(e.server).where(e.path)} was not in its folder when the run began"
                + (f" (a temporary copy of {e.leftover_of} that could not be removed)" if e.leftover_of else
                   "; deployer did not create it and leaves it to you") for e in new]
        off += [f"{server} could not be reached, so nothing on it was checked: {why}"
                for server, why in sorted(self.unreachable.items())]
        services = {k: v for k, v in original_services(self.plan).items() if k[0] not in gone}
        changed = {server for server, _, _ in files} | {e.server for e in new}
        for key, item in self.cannot_start.items():
            try:
                if self.conn.endpoint(item.server).services.query(item.service).state == RUNNING:
                    continue  # started since (the settle phase tries again)
            except TargetError:
                pass  # the service check below says what it meets
            if item.server in changed or item.server in gone:
                off.append(f"{item.server} service {item.service} could not be started: {item.error}")
                continue
            # its server's files are all as before the run: the before-state lacks what it needs
            lacked = [t.path for t in self.plan.touched() if t.server == item.server and t.before is None]
            warning = account(item, lacked, self.conn.endpoint(item.server).where)
            self.warnings.append(warning)
            self.ctx.warn(f"Warning: {warning}.")
            self.note("before_state_lacks", server=item.server, service=item.service, error=item.error,
                      created=lacked)
            services.pop(key, None)
        return off + service_differences(self.conn, services, "was")


def _words(exc: BaseException) -> str:
    """An error as a user reads it: a target's own message, or the kind and text of anything else."""
    return str(exc) if isinstance(exc, TargetError) else f"{type(exc).__name__}: {exc}"
