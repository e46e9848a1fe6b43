"""Plan -> RunResult. The applier decides nothing: it carries out a Plan, journals each
step before and after it, and on any failure hands the journal to the undo engine.

Phases of a run:
  prepare   every replaced file is backed up on its server (server-side copy, write time
            kept, checked against the observed sha256) and every new file is written beside
            its destination under a temporary name, its write time set to the manifest's and
            its size, time and sha256 read back and checked. Nothing visible has changed
            yet and no service has been stopped.
  execute   the plan's actions in order: services stopped and started (waiting for the
            final state), each replacement one atomic rename over the destination, the site
            reset (waiting until Site Configuration Manager's Helper.srv copies arrive).
  verify    the manifest check of every file the run is responsible for.
Any failure, Ctrl-C or SIGTERM in any phase: undo in reverse (rollback.py), exit 1; if
the undo cannot complete, exit 4 and the journal says what is left.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import failpoints
from .errors import ApplyFailed, InputError, RestoreFailed
from .journal import COMMITTED, ROLLBACK_FAILED, ROLLED_BACK, Journal, new_run_id, whoami
from .model.inventory import SiteRef
from .model.manifest import LoadedManifest
from .plan import Action, FileState, Plan, ReplaceFile, ResetSite, SendCode, StartService, StopService, describe
from .rollback import Undo, backup_path, current, signals_deferred, temp_path, wait_for
from .targets.base import RUNNING, STOPPED, TargetError
from .targets.connect import Endpoint, SiteConnection
from .verify import Report, verify

Say = Callable[[str], None]
Progress = Callable[[str, int, int], None]  # (what is going on, done, total)
NOTHING = "nothing"
SERVICE_TIMEOUT = 120.0


class VerificationFailed(Exception):
    pass


@dataclass
class RunResult:
    run: str | None
    status: str  # nothing, committed, rolled_back, rollback_failed
    error: str | None = None
    report: Report | None = None
    journal: str | None = None
    remaining: list[str] = field(default_factory=list)
    seconds: float = 0.0
    actions_done: int = 0
    events: list[dict] = field(default_factory=list)  # the run's journal records (timings for reports)

    def raise_for_status(self) -> None:
        if self.status == ROLLED_BACK:
            raise ApplyFailed(f"run {self.run} failed and the site was restored: {self.error}")
        if self.status == ROLLBACK_FAILED:
            raise RestoreFailed(f"run {self.run} failed ({self.error}) and the site could NOT be fully restored:\n  "
                                + "\n  ".join(self.remaining)
                                + f"\nThe journal is {self.journal}; fix what is listed, then run "
                                  "`deployer recover --site ...`")


def _same(state: FileState | None, expected: FileState) -> bool:
    return state is not None and (state.size, state.mtime_ns, state.sha256) == (expected.size, expected.mtime_ns,
                                                                                  expected.sha256)


class Runner:
    def __init__(self, plan: Plan, conn: SiteConnection, site: SiteRef, manifest: LoadedManifest, say: Say,
                 command: str = "apply", progress: Progress | None = None):
        self.progress = progress or (lambda what, done, total: None)
        self.plan = plan
        self.conn = conn
        self.site = site
        self.manifest = manifest
        self.say = say
        self.command = command
        self.run = new_run_id()
        self.journal = Journal(conn.site_server.files, self.run)

    def ep(self, name: str) -> Endpoint:
        return self.conn.endpoint(name)

    # --- the run ------------------------------------------------------------------------------

    def execute(self) -> RunResult:
        start = time.monotonic()
        if self.plan.empty:
            return RunResult(None, NOTHING, seconds=time.monotonic() - start)
        self.journal.create(self.plan.to_json())
        self.journal.write("run", command=self.command, kb=self.plan.kb, site=self.plan.site,
                           fingerprint=self.plan.fingerprint, actions=len(self.plan.actions), **whoami())
        where = f"{self.conn.site_server.where(self.journal.dir)}"
        try:
            self.prepare()
            for action in self.plan.actions:
                self.do(action)
            self.progress("verifying", len(self.plan.actions), len(self.plan.actions))
            report = self.verify()
            failpoints.hit("apply.commit")
            self.journal.write("committed")
            return RunResult(self.run, COMMITTED, report=report, journal=where, seconds=time.monotonic() - start,
                             actions_done=len(self.plan.actions), events=self.journal.events)
        except (Exception, KeyboardInterrupt) as exc:
            with signals_deferred(self.say):
                return self._roll_back(exc, where, start)

    def _roll_back(self, exc: BaseException, where: str, start: float) -> RunResult:
        reason = _reason(exc)
        self.say(f"FAILED: {reason}")
        self.say("Rolling back...")
        try:
            failpoints.hit("apply.rollback")
            self.journal.write("failed", error=reason)
        except Exception as jexc:  # the journal itself may be what failed; undo anyway
            self.say(f"  (could not journal the failure: {jexc})")
        try:
            undo = Undo(self.plan, self.conn, self.journal, self.say).run_all()
        except Exception as uexc:
            return RunResult(self.run, ROLLBACK_FAILED, reason, journal=where,
                             remaining=[f"the rollback stopped: {_reason(uexc)}"],
                             seconds=time.monotonic() - start, events=self.journal.events)
        status = ROLLED_BACK if undo.ok else ROLLBACK_FAILED
        return RunResult(self.run, status, reason, journal=where, remaining=undo.remaining,
                         seconds=time.monotonic() - start, events=self.journal.events)

    # --- prepare --------------------------------------------------------------------------------

    def prepare(self) -> None:
        uploads = [a for a in self.plan.actions if isinstance(a, ReplaceFile)]
        for a in self.plan.actions:
            if isinstance(a, ReplaceFile):
                self.progress(f"backing up and uploading {a.file} ({a.platform}) to {a.server}",
                              uploads.index(a), len(uploads))
                failpoints.hit(f"apply.stage.{a.number}")
                if a.before is not None:
                    self._backup(a.server, a.path, a.before, backup_path(self.journal.dir, a.number, a.file), a.number)
                self._stage(a)
            elif isinstance(a, ResetSite):
                for k, c in enumerate(a.copies):
                    if c.before is not None:
                        self._backup(c.server, c.path, c.before,
                                     backup_path(self.journal.dir, a.number, c.path.split("\\")[-1], k), a.number)

    def _backup(self, server: str, path: str, before: FileState, backup: str, number: int) -> None:
        ep = self.ep(server)
        ep.files.makedirs(backup.rsplit("\\", 1)[0])
        ep.files.copy(path, backup)
        got = current(ep, backup)
        if not _same(got, before):
            raise TargetError(f"the backup of {ep.where(path)} does not match the file observed when planning "
                              "(it changed since, or the copy is damaged)", server=server, path=path)
        self.journal.write("backup", action=number, server=server, path=path, backup=backup, sha256=before.sha256)

    def _stage(self, a: ReplaceFile) -> None:
        ep = self.ep(a.server)
        temp = temp_path(a.path, self.run)
        self.journal.write("staged", action=a.number, server=a.server, temp=temp)
        with open(Path(a.source), "rb") as fh:
            ep.files.write_file(temp, _chunks(fh, f"apply.stage.{a.number}.midcopy"), exclusive=True)
        failpoints.hit(f"apply.stage.{a.number}.written")
        ep.files.set_mtime(temp, a.new.mtime_ns)
        got = current(ep, temp)
        if not _same(got, a.new):
            have = f"{got.size:,} bytes, sha256 {got.sha256[:12]}..." if got else "nothing"
            raise TargetError(f"the uploaded copy of {a.file} does not match the hotfix file ({have}; expected "
                              f"{a.new.size:,} bytes, sha256 {a.new.sha256[:12]}...): damaged in transit, nothing "
                              "was replaced", server=a.server, path=temp)

    # --- execute --------------------------------------------------------------------------------

    def do(self, a: Action) -> None:
        self.progress(describe(a), a.number - 1, len(self.plan.actions))
        self.say(f"[{a.number}/{len(self.plan.actions)}] {describe(a)}")
        self.journal.write("begin", action=a.number)
        failpoints.hit(f"apply.action.{a.number}.before")
        if isinstance(a, StopService):
            self._service(a.server, a.service, STOPPED)
        elif isinstance(a, StartService):
            self._service(a.server, a.service, RUNNING)
        elif isinstance(a, ReplaceFile):
            ep = self.ep(a.server)
            ep.files.rename(temp_path(a.path, self.run), a.path, replace=True)
            got = ep.files.stat(a.path)
            if got is None or (got.size, got.mtime_ns) != (a.new.size, a.new.mtime_ns):
                raise TargetError("after the swap the file does not have the new size and write time",
                                  server=a.server, path=a.path)
        elif isinstance(a, SendCode):
            self.ep(a.server).services.control(a.service, a.code)
        elif isinstance(a, ResetSite):
            self._reset(a)
        failpoints.hit(f"apply.action.{a.number}.after")
        self.journal.write("done", action=a.number)

    def _service(self, server: str, name: str, want: str) -> None:
        svc = self.ep(server).services
        status = svc.stop(name, SERVICE_TIMEOUT) if want == STOPPED else svc.start(name, SERVICE_TIMEOUT)
        if status.state != want:
            raise TargetError(f"{name} is {status.state}, expected {want}", server=server)

    def _reset(self, a: ResetSite) -> None:
        svc = self.ep(a.server).services
        scm = "SMS_SITE_CONFIG_MANAGER"
        if svc.query(scm).state == RUNNING:
            self._service(a.server, scm, STOPPED)
        self._service(a.server, scm, RUNNING)
        svc.control(scm, 194)

        def arrived() -> bool:
            return all(_same(current(self.ep(c.server), c.path), c.after) for c in a.copies)

        if a.copies and not wait_for(arrived, a.timeout):
            late = [self.ep(c.server).where(c.path) for c in a.copies
                    if not _same(current(self.ep(c.server), c.path), c.after)]
            raise TargetError(f"Site Configuration Manager did not install the new service files within "
                              f"{a.timeout:.0f} s: {', '.join(late)}", server=a.server)

    # --- verify ---------------------------------------------------------------------------------

    def verify(self) -> Report:
        self.journal.write("verify")
        failpoints.hit("apply.verify")
        report = verify(self.manifest, self.site, self.conn, self.plan.checks)
        if not report.ok:
            bad = [f"{f.server} {f.path}: {f.status} {f.detail}".strip() for f in report.files if not f.passed]
            raise VerificationFailed("verification after the run failed: " + "; ".join(bad))
        return report


def _chunks(fh, failpoint: str, size: int = 256 << 10):
    """The payload in chunks; the fail point fires after the first one, mid-transfer."""
    first = True
    while block := fh.read(size):
        yield block
        if first:
            failpoints.hit(failpoint)
            first = False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C or SIGTERM)"
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (TargetError, InputError, VerificationFailed)) else f"{type(exc).__name__}: {text}"
