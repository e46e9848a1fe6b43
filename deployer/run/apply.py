"""Plan -> RunResult. The applier decides nothing: it carries out a Plan, journals each
step before and after it, and on any failure hands the journal to the undo engine.

Phases of a run:
  prepare   each action's kind backs up what it will change (server-side copy, write time
            kept, checked against the observed sha256) and writes every new file beside its
            destination under a temporary name, its write time set and its size, time and
            sha256 read back. Nothing visible has changed yet and no service has been stopped.
  execute   the plan's actions in order, each by its kind (deployer/steps/).
  verify    the manifest check of every file the run is responsible for.
Any failure or cancellation (Ctrl-C, SIGTERM, SIGHUP: the CLI sets the context's cancel
token) in any phase: undo in reverse (undo.py), result rolled_back; if the undo cannot
complete, rollback_failed and the journal says what is left.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import failpoints
from ..targets import standin
from ..errors import InputError
from ..model.inventory import SiteRef
from ..model.manifest import LoadedManifest
from ..model.state import FileState
from ..model.transport import DEFERRED_WRITES, GROUPED_APPEND, HARD_LINK
from ..plan.model import Plan
from ..plan.observe import holds_many, read_file
from ..steps import kind_of
from ..targets.base import STOPPED, TargetError, stat_many
from ..targets.connect import Endpoint, SiteConnection
from ..sms.verify import Report, verify
from .batch import read_files
from .context import Cancelled, RunContext
from .folders import list_folders
from . import known
from .journal import Journal
from .result import RunResult
from .store import RunState, new_run_id, temp_path, whoami
from .undo import Undo

SERVICE_TIMEOUT = 120.0
HEARTBEAT = 30.0  # seconds between the lines that say a long wait is still a wait


class VerificationFailed(Exception):
    pass


@dataclass(frozen=True)
class _Backup:
    server: str
    path: str
    before: FileState
    backup: str
    number: int
    linked: bool = False  # a hard link (the file is swapped by a rename), not a copy


@dataclass(frozen=True)
class _Stage:
    server: str
    path: str
    source: str
    new: FileState
    number: int
    label: str


class Runner:
    def __init__(self, plan: Plan, conn: SiteConnection, site: SiteRef, manifest: LoadedManifest, ctx: RunContext,
                 command: str = "apply"):
        self.plan = plan
        self.conn = conn
        self.site = site
        self.manifest = manifest
        self.ctx = ctx
        self.command = command
        self.run = new_run_id()
        self.journal = Journal(conn.site_server.files, self.run)
        self._backups: list[_Backup] = []  # backups by server-side copy queued by backup(), see flush_backups
        self._stages: list[_Stage] = []  # uploads queued by stage(), see flush_stages
        self._done: list[tuple[str, dict]] = []  # the last action's "done", sent with the next record (_append)
        # where the journal's transport appends records together at the cost of one (its declared
        # GROUPED_APPEND: SMB 2/3, SMB1, SFTP): elsewhere (local files) each record at once
        self._join_done = conn.site_server.can(GROUPED_APPEND)
        # The one gate for lab stand-ins: every command that changes a site builds a Runner first
        # (a fresh plan, a saved one, a fleet's site, a worker's task), before anything is written.
        standin.refuse_on_real_servers([u for a in plan.actions for u in kind_of(a).uploads(a)],
                                       {n: ep.files for n, ep in conn.every_endpoint().items()})

    def ep(self, name: str) -> Endpoint:
        return self.conn.endpoint(name)

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        start = time.monotonic()
        if self.plan.empty:
            return RunResult(None, RunState.NOTHING, seconds=time.monotonic() - start)
        self.ctx.changing = True
        try:
            self.journal.create(self.plan.to_json())
            self.journal.write("run", command=self.command, kb=self.plan.kb, site=self.plan.site,
                               fingerprint=self.plan.fingerprint, actions=len(self.plan.actions), **whoami())
            failpoints.hit("apply.journal.run")
            # what the touched folders hold now, so that an undo notices what a killed write left there
            self.journal.write("folders", listing=list_folders(self.plan, self.conn))
            failpoints.hit("apply.journal.folders")
        except BaseException:
            self.ctx.changing = False
            raise
        where = self.conn.site_server.where(self.journal.dir)
        timings: list[tuple[int, float]] = []
        try:
            self.prepare()
            for group in self._groups():
                t0 = time.monotonic()
                self.do(group[0]) if len(group) == 1 else self.do_many(group)
                timings += [(a.number, (time.monotonic() - t0) / len(group)) for a in group]
            self.ctx.progress("verifying", len(self.plan.actions), len(self.plan.actions))
            report = self.verify()
            failpoints.hit("apply.commit")
            self.journal.write("committed")
            return RunResult(self.run, RunState.COMMITTED, report=report, journal=where,
                             seconds=time.monotonic() - start, actions_done=len(self.plan.actions), timings=timings,
                             events=self.journal.events.items)
        except (Exception, KeyboardInterrupt) as exc:
            result = self._roll_back(exc, where, start)
            result.timings = timings
            result.events = self.journal.events.items
            return result
        finally:
            self.ctx.changing = False

    def _roll_back(self, exc: BaseException, where: str, start: float) -> RunResult:
        reason = _reason(exc)
        self.ctx.say(f"FAILED: {reason}")
        self.ctx.say("Rolling back...")
        try:
            failpoints.hit("apply.rollback")
            self._append([("failed", {"error": reason})])
        except Exception as jexc:  # the journal itself may be what failed; undo anyway
            self.ctx.say(f"  (could not journal the failure: {jexc})")
        try:
            undo = Undo(self.plan, self.conn, self.journal, self.ctx).run_all()
        except Exception as uexc:
            return RunResult(self.run, RunState.ROLLBACK_FAILED, reason, journal=where,
                             remaining=[f"the rollback stopped: {_reason(uexc)}"], seconds=time.monotonic() - start,
                             site=self.plan.site)
        status = RunState.ROLLED_BACK if undo.ok else RunState.ROLLBACK_FAILED
        return RunResult(self.run, status, reason, journal=where, remaining=undo.remaining,
                         seconds=time.monotonic() - start, site=self.plan.site, warnings=undo.warnings)

    # --- prepare --------------------------------------------------------------------------------

    def prepare(self) -> None:
        total = len(self.plan.actions)
        try:
            for a in self.plan.actions:
                self.ctx.cancel.check()
                # not the action's own label: "stop SMS_EXECUTIVE" while only backing up reads as if it stopped
                self.ctx.progress(f"preparing: backups and uploads for action {a.number} of {total}", 0, total)
                failpoints.hit(f"apply.stage.{a.number}")
                kind_of(a).prepare(self, a)
            # what transports queued (backups, uploads) goes out together: nothing visible changes
            # in prepare, so no action's work waits for another's (a batch costs one file's round trips)
            self.flush_stages()
        finally:
            self._backups, self._stages = [], []

    def backup(self, server: str, path: str, before: FileState, backup: str, number: int, *,
               swapped: bool = False) -> None:
        """Keep the bytes of `path` as `backup` on its own server, checked against what the plan observed.

        `swapped`: the caller replaces `path` only by renaming a new file over it, never by
        writing into it. The old file then lives on under its other name, so where the target
        can (the mock site), the backup is a hard link: no bytes copied, and nothing that could
        be damaged in a copy to check but its size and write time. The restore still checks the
        backup's sha256 before it puts it back.
        """
        ep = self.ep(server)
        ep.files.makedirs(backup.rsplit("\\", 1)[0])
        failpoints.hit(f"apply.backup.{number}")  # the backup folder made, the copy not yet
        link = ep.files.hard_link if swapped and ep.can(HARD_LINK) else None  # type: ignore[attr-defined]
        if link is not None and getattr(ep.files, "hard_link_many", None) is not None:
            self._backups.append(_Backup(server, path, before, backup, number, linked=True))  # see flush_backups
            return
        if link is None and getattr(ep.files, "copy_many", None) is not None:
            # copied with the action's other backups on this server, in the round trips of one
            self._backups.append(_Backup(server, path, before, backup, number))
            return  # a backup elsewhere, made now, is independent of the queued ones: their records may follow its
        if link is not None:
            link(path, backup)
            same = _same_stat(before, ep.files.stat(backup))
        else:
            vouched = known.vouched_sources(ep, [(path, before)])  # then the copy need not be read back
            ep.files.copy(path, backup)
            same = before.matches(known.vouched_copies(ep, [(backup, before)], vouched)[0]
                                  or self.read(server, backup))
        if not same:
            raise _backup_differs(ep, server, path)
        self.journal.write("backup", action=number, server=server, path=path, backup=backup, sha256=before.sha256,
                           **_identity(before), **({"linked": True} if link is not None else {}))

    def flush_backups(self, then: list[tuple[str, dict]] | None = None) -> None:
        """Make the backups queued by backup(), server by server, each checked against the file
        observed when planning as one at a time would be; their journal records (and `then`'s,
        if every backup was made) in one append. Done before anything else of the run touches
        the site (an upload, a swap)."""
        queued, self._backups = self._backups, []
        by_server: dict[str, list[_Backup]] = {}
        for b in queued:
            by_server.setdefault(b.server, []).append(b)
        records: list[tuple[str, dict]] = []
        failure: TargetError | None = None
        for server, items in by_server.items():
            ep = self.ep(server)
            links = [b for b in items if b.linked]
            copies = [b for b in items if not b.linked]
            errors = dict(zip(map(id, links), ep.files.hard_link_many([(b.path, b.backup) for b in links]))) \
                if links else {}
            linked = [b for b in links if errors[id(b)] is None]
            stats = dict(zip(map(id, linked), stat_many(ep.files, [b.backup for b in linked])))
            vouched = known.vouched_sources(ep, [(b.path, b.before) for b in copies])  # known.py: no read-back
            copy_errors = ep.files.copy_many([(b.path, b.backup) for b in copies]) if copies else []
            errors.update(zip(map(id, copies), copy_errors))
            made = [b for b in copies if errors[id(b)] is None]
            got = dict(zip((id(b) for b in made), known.vouched_copies(
                ep, [(b.backup, b.before) for b in made], [v for v, e in zip(vouched, copy_errors) if e is None])))
            rest = [b for b in made if got[id(b)] is None]
            got.update(zip((id(b) for b in rest), read_files(ep, [b.backup for b in rest], [b.before.size for b in rest])))
            for b in items:
                if errors[id(b)] is not None:
                    failure = errors[id(b)]
                elif not (_same_stat(b.before, stats[id(b)]) if b.linked else b.before.matches(got[id(b)])):
                    failure = _backup_differs(ep, server, b.path)
                if failure is not None:
                    break
                records.append(("backup", dict(action=b.number, server=server, path=b.path, backup=b.backup,
                                               sha256=b.before.sha256, **_identity(b.before),
                                               **({"linked": True} if b.linked else {}))))
            if failure is not None:
                break
        self.journal.write_many(records + (then or [] if failure is None else []))
        if failure is not None:
            raise failure

    def stage(self, server: str, path: str, source: str, new: FileState, number: int, label: str) -> None:
        """Upload `source` beside `path` under the run's temporary name, with the new write time, and check it."""
        ep = self.ep(server)
        if ep.can(DEFERRED_WRITES) or self._join_done:
            # see flush_stages: the uploads go out together where the transport defers writes, and
            # where the journal groups records their "staged" records ride in one append
            self._stages.append(_Stage(server, path, source, new, number, label))
            return
        self.flush_backups()
        temp = temp_path(path, self.run)
        self.journal.write("staged", action=number, server=server, temp=temp)
        with open(Path(source), "rb") as fh:
            ep.files.write_file(temp, self._chunks(fh, f"apply.stage.{number}.midcopy"), exclusive=True)
        failpoints.hit(f"apply.stage.{number}.written")
        ep.files.set_mtime(temp, new.mtime_ns)
        got = self.read(server, temp)
        _check_staged(server, temp, new, label, got)

    def flush_stages(self) -> None:
        """The queued backups, then the uploads stage() queued, server by server: every file's
        bytes and write time sent together where the transport declares DEFERRED_WRITES (its
        deferred_writes()), else one after another; then every staged file read back and checked
        at once, as stage() checks one. Their "staged" records go out with the backups' before
        any upload."""
        queued, self._stages = self._stages, []
        self.flush_backups([("staged", dict(action=s.number, server=s.server, temp=temp_path(s.path, self.run)))
                            for s in queued])
        by_server: dict[str, list[_Stage]] = {}
        for s in queued:
            by_server.setdefault(s.server, []).append(s)
        for server, items in by_server.items():
            ep = self.ep(server)
            temps = [temp_path(s.path, self.run) for s in items]
            together = ep.files.deferred_writes() if ep.can(DEFERRED_WRITES) else nullcontext()  # type: ignore
            with ExitStack() as sources, together:
                for s, temp in zip(items, temps):  # each read as its upload goes out (the sources open till then)
                    fh = sources.enter_context(open(Path(s.source), "rb"))
                    ep.files.write_file(temp, self._chunks(fh, f"apply.stage.{s.number}.midcopy"), exclusive=True)
                    ep.files.set_mtime(temp, s.new.mtime_ns)
            for s in items:
                failpoints.hit(f"apply.stage.{s.number}.written")
            for s, temp, got in zip(items, temps, read_files(ep, temps, [s.new.size for s in items])):
                _check_staged(server, temp, s.new, s.label, got)

    def _chunks(self, fh, failpoint: str, size: int = 256 << 10) -> Iterator[bytes]:
        """The payload in chunks; cancellation is honoured between them, and the fail point fires
        after the first one, mid-transfer."""
        first = True
        while block := fh.read(size):
            yield block
            self.ctx.moved(len(block))  # the transport took the block: count it in the run's bytes moved
            if first:
                failpoints.hit(failpoint)
                first = False
            self.ctx.cancel.check()

    # --- execute --------------------------------------------------------------------------------

    def do(self, a) -> None:
        self.ctx.cancel.check()
        kind = kind_of(a)
        self.ctx.progress(kind.describe(a), a.number - 1, len(self.plan.actions))
        self.ctx.say(f"[{a.number}/{len(self.plan.actions)}] {kind.describe(a)}")
        self._append([("begin", {"action": a.number})])
        failpoints.hit(f"apply.action.{a.number}.before")
        kind.execute(self, a)
        failpoints.hit(f"apply.action.{a.number}.after")
        self._ended([a])

    def _ended(self, actions: list) -> None:
        done = [("done", {"action": a.number}) for a in actions]
        if self._join_done:
            self._done = done
        else:
            self.journal.write_many(done)

    def _append(self, records: list[tuple[str, dict]]) -> None:
        """Journal records, the last action's "done" first: it is lazy, and the next record (the
        next action's begin, the run's verify or its failure) follows it at once, so both cost
        one append (a round trip over a network). Kept for the next try if the append fails."""
        self.journal.write_many(self._done + records)
        self._done = []

    def _groups(self) -> list[list]:
        """The plan's actions in runs to execute together: consecutive actions of a kind that can
        (its `execute_many`, where its `batchable` says the action's transport allows it), none
        touching a file another of the run touches; every other action alone."""
        groups: list[list] = []
        seen: set[tuple[str, str]] = set()
        open_batch = False
        for a in self.plan.actions:
            kind = kind_of(a)
            many = getattr(kind, "batchable", None) is not None and kind.batchable(self, a)
            keys = {(t.server, t.path.casefold()) for t in kind.touched(a)}
            if many and open_batch and kind_of(groups[-1][0]) is kind and not keys & seen:
                groups[-1].append(a)
                seen |= keys
            else:
                groups.append([a])
                seen = keys
            open_batch = many
        return groups

    def do_many(self, group: list) -> None:
        """do() of independent actions together: their begin records in one durable append
        before any of them changes anything, their changes sent together by their kind, their
        done records in one append."""
        self.ctx.cancel.check()
        kind = kind_of(group[0])
        for a in group:
            self.ctx.progress(kind.describe(a), a.number - 1, len(self.plan.actions))
            self.ctx.say(f"[{a.number}/{len(self.plan.actions)}] {kind.describe(a)}")
        self._append([("begin", {"action": a.number}) for a in group])
        for a in group:
            failpoints.hit(f"apply.action.{a.number}.before")
        kind.execute_many(self, group)
        for a in group:
            failpoints.hit(f"apply.action.{a.number}.after")
        self._ended(group)

    def read(self, server: str, path: str) -> FileState | None:
        return read_file(self.ep(server), path)

    def holds_all(self, items: list[tuple[str, str, FileState | None]], *, copied: bool = False) -> list[bool]:
        """observe.holds of each (server, path, want): whether the file is `want`, its content read only
        when its size and time agree; each server's stats in one batch where its
        transport can (a poll of a site reset's or replication's copies)."""
        by_server: dict[str, list[int]] = {}
        for k, (server, _, _) in enumerate(items):
            by_server.setdefault(server, []).append(k)
        out = [False] * len(items)
        for server, ks in by_server.items():
            got = holds_many(self.ep(server), [(items[k][1], items[k][2]) for k in ks], copied=copied)
            for k, ok in zip(ks, got):
                out[k] = ok
        return out

    def service(self, server: str, name: str, want: str) -> None:
        svc = self.ep(server).services
        status = svc.stop(name, SERVICE_TIMEOUT) if want == STOPPED else svc.start(name, SERVICE_TIMEOUT)
        if status.state != want:
            raise TargetError(f"{name} is {status.state}, expected {want}", server=server)

    def wait_for(self, predicate, timeout: float, interval: float = 0.5, what=None) -> bool:
        """Poll until `predicate()` or `timeout`; a cancellation ends the wait (the run then rolls back).
        `what` (what is awaited, "replication to DEMOLOG1", or a callable saying it after each poll):
        each poll tells the renderers how long so far (a WAIT event: the fleet panel's line and its
        piped heartbeat), and a line every HEARTBEAT seconds says it in the run's narrative, so a
        piped log that has no live progress shows a long wait (Maintenance Manager: ten minutes)
        is a wait, not a hang."""
        start = time.monotonic()
        deadline = start + timeout
        beat = start + HEARTBEAT
        while True:
            if predicate():
                return True
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                return False
            if what:
                said = what() if callable(what) else what
                self.ctx.waiting(f"waiting for {said}", now - start, timeout)
                if now >= beat:
                    self.ctx.say(f"{self.plan.site}: waiting for {said}, {now - start:.0f} s of {timeout:.0f}")
                    beat = now + HEARTBEAT
            if self.ctx.cancel.wait(min(interval, left)):
                self.ctx.cancel.check()

    # --- verify ---------------------------------------------------------------------------------

    def verify(self) -> Report:
        self._append([("verify", {})])
        failpoints.hit("apply.verify")
        report = verify(self.manifest, self.site, self.conn, self.plan.checks)
        if report.mismatched:  # a machine the plan skipped as unreachable is reported, not a reason to undo
            bad = [f"{f.server} {f.path}: {f.status} {f.detail}".strip() for f in report.mismatched]
            raise VerificationFailed("verification after the run failed: " + "; ".join(bad))
        return report


def _same_stat(before: FileState, got) -> bool:
    """A hard-linked backup is the file itself under another name: its size and write time show it."""
    return got is not None and (got.size, got.mtime_ns) == (before.size, before.mtime_ns)


def _backup_differs(ep: Endpoint, server: str, path: str) -> TargetError:
    return TargetError(f"the backup of {ep.where(path)} does not match the file observed when planning "
                       "(it changed since, or the copy is damaged)", server=server, path=path)


def _identity(before: FileState) -> dict:
    """A backup record's word on how the file backed up was identified: by its sha256 (the
    record's `sha256`), or, read by no one (steps/base.py by_identity), by size and write time:
    rollback and recover check the backup and the restore the same way (FileState.matches)."""
    return {} if before.sha256 else {"identity": "size+time", "size": before.size, "mtime_ns": before.mtime_ns}


def _check_staged(server: str, temp: str, new: FileState, label: str, got: FileState | None) -> None:
    if not new.same_content(got):
        have = f"{got.size:,} bytes, sha256 {(got.sha256 or '')[:12]}..." if got else "nothing"
        raise TargetError(f"the uploaded copy of {label} does not match the hotfix file ({have}; expected "
                          f"{new.size:,} bytes, sha256 {(new.sha256 or '')[:12]}...): damaged in transit, "
                          "nothing was replaced", server=server, path=temp)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Cancelled):
        return f"interrupted ({exc.reason})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGTERM)"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (TargetError, InputError, VerificationFailed)) else f"{type(exc).__name__}: {text}"
