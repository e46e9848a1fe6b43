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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .. import failpoints
from ..targets import standin
from ..errors import InputError
from ..model.inventory import SiteRef
from ..model.manifest import LoadedManifest
from ..model.state import FileState
from ..model.transport import HARD_LINK
from ..plan.model import Plan
from ..plan.observe import holds, read_file
from ..steps import kind_of
from ..targets.base import STOPPED, TargetError
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
            for action in self.plan.actions:
                t0 = time.monotonic()
                self.do(action)
                timings.append((action.number, time.monotonic() - t0))
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
            self.journal.write("failed", error=reason)
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
        for a in self.plan.actions:
            self.ctx.cancel.check()
            # not the action's own label: "stop SMS_EXECUTIVE" while only backing up reads as if it stopped
            self.ctx.progress(f"preparing: backups and uploads for action {a.number} of {total}", 0, total)
            failpoints.hit(f"apply.stage.{a.number}")
            try:
                kind_of(a).prepare(self, a)
                self.flush_backups()
            finally:
                self._backups = []

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
        if link is None and getattr(ep.files, "copy_many", None) is not None:
            # copied with the action's other backups on this server, in the round trips of one
            self._backups.append(_Backup(server, path, before, backup, number))
            return  # a backup elsewhere, made now, is independent of the queued ones: their records may follow its
        if link is not None:
            link(path, backup)
            got = ep.files.stat(backup)
            same = got is not None and (got.size, got.mtime_ns) == (before.size, before.mtime_ns)
        else:
            vouched = known.vouched_sources(ep, [(path, before)])  # then the copy need not be read back
            ep.files.copy(path, backup)
            same = before.same_content(known.vouched_copies(ep, [(backup, before)], vouched)[0]
                                       or self.read(server, backup))
        if not same:
            raise TargetError(f"the backup of {ep.where(path)} does not match the file observed when planning "
                              "(it changed since, or the copy is damaged)", server=server, path=path)
        self.journal.write("backup", action=number, server=server, path=path, backup=backup, sha256=before.sha256,
                           **({"linked": True} if link is not None else {}))

    def flush_backups(self) -> None:
        """Make the backups queued by backup(), server by server, each checked against the file
        observed when planning as one at a time would be; their journal records in one append.
        Done before anything else of the run touches the site (an upload, a swap)."""
        queued, self._backups = self._backups, []
        by_server: dict[str, list[_Backup]] = {}
        for b in queued:
            by_server.setdefault(b.server, []).append(b)
        for server, items in by_server.items():
            ep = self.ep(server)
            vouched = known.vouched_sources(ep, [(b.path, b.before) for b in items])  # known.py: no read-back
            errors = ep.files.copy_many([(b.path, b.backup) for b in items])
            made = [b for b, e in zip(items, errors) if e is None]
            got = dict(zip((id(b) for b in made), known.vouched_copies(
                ep, [(b.backup, b.before) for b in made], [v for v, e in zip(vouched, errors) if e is None])))
            rest = [b for b in made if got[id(b)] is None]
            got.update(zip((id(b) for b in rest), read_files(ep, [b.backup for b in rest], [b.before.size for b in rest])))
            records: list[tuple[str, dict]] = []
            failure: TargetError | None = None
            for b, error in zip(items, errors):
                if error is not None:
                    failure = error
                elif not b.before.same_content(got[id(b)]):
                    failure = TargetError(f"the backup of {ep.where(b.path)} does not match the file observed when "
                                          "planning (it changed since, or the copy is damaged)", server=server,
                                          path=b.path)
                if failure is not None:
                    break
                records.append(("backup", dict(action=b.number, server=server, path=b.path, backup=b.backup,
                                               sha256=b.before.sha256)))
            self.journal.write_many(records)
            if failure is not None:
                raise failure

    def stage(self, server: str, path: str, source: str, new: FileState, number: int, label: str) -> None:
        """Upload `source` beside `path` under the run's temporary name, with the new write time, and check it."""
        self.flush_backups()
        ep = self.ep(server)
        temp = temp_path(path, self.run)
        self.journal.write("staged", action=number, server=server, temp=temp)
        with open(Path(source), "rb") as fh:
            ep.files.write_file(temp, self._chunks(fh, f"apply.stage.{number}.midcopy"), exclusive=True)
        failpoints.hit(f"apply.stage.{number}.written")
        ep.files.set_mtime(temp, new.mtime_ns)
        got = self.read(server, temp)
        if not new.same_content(got):
            have = f"{got.size:,} bytes, sha256 {(got.sha256 or '')[:12]}..." if got else "nothing"
            raise TargetError(f"the uploaded copy of {label} does not match the hotfix file ({have}; expected "
                              f"{new.size:,} bytes, sha256 {(new.sha256 or '')[:12]}...): damaged in transit, "
                              "nothing was replaced", server=server, path=temp)

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
        self.journal.write("begin", action=a.number)
        failpoints.hit(f"apply.action.{a.number}.before")
        kind.execute(self, a)
        failpoints.hit(f"apply.action.{a.number}.after")
        self.journal.write("done", action=a.number)

    def read(self, server: str, path: str) -> FileState | None:
        return read_file(self.ep(server), path)

    def holds(self, server: str, path: str, want: FileState | None, *, copied: bool = False) -> bool:
        """Whether the file is `want`, its content read only when its size and time agree (observe.holds)."""
        return holds(self.ep(server), path, want, copied=copied)

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
        self.journal.write("verify")
        failpoints.hit("apply.verify")
        report = verify(self.manifest, self.site, self.conn, self.plan.checks)
        if report.mismatched:  # a machine the plan skipped as unreachable is reported, not a reason to undo
            bad = [f"{f.server} {f.path}: {f.status} {f.detail}".strip() for f in report.mismatched]
            raise VerificationFailed("verification after the run failed: " + "; ".join(bad))
        return report


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Cancelled):
        return f"interrupted ({exc.reason})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGTERM)"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (TargetError, InputError, VerificationFailed)) else f"{type(exc).__name__}: {text}"
