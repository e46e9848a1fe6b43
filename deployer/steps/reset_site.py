"""`reset_site: {timeout: 300}`: restart SMS_SITE_CONFIG_MANAGER and send it code 194, so
that it copies the Site.srv\\<Platform>.bin service files to every managed server's
Helper.srv\\<Platform>.bin (Q241656: "You must reset the site for the hotfix file to be
copied to all servers managed by Site Configuration Manager").

Plan: which Helper.srv copies will change (the Site.srv files this playbook replaces, or the
ones there now) and the helper services on those servers, for undoing the copies. Prepare:
each copy about to be overwritten is backed up. Execute: restart, code 194, then wait (up
to `timeout`) until every copy arrived. Undo: the helper services stopped (they hold
Helper.srv files open), the copies restored, the services started again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from pydantic import Field

from ..model import winpath
from ..model.common import Strict, number_in
from ..model.state import FileState, describe as file_state
from ..model.runpaths import backup_path
from ..sms import layout
from ..sms import services as sms
from ..targets.base import RUNNING, STOPPED, TargetError
from ..sms.verify import Check
from .base import SiteWrittenKind, by_identity, plural

SCM = "SMS_SITE_CONFIG_MANAGER"


class ResetSpec(Strict):
    timeout: Annotated[float, number_in(0, 3600, "timeout", integer=False, above=True)] = Field(
        default=300.0, description="seconds to wait for the helper copies")


class ResetStep(Strict):
    name: str | None = Field(default=None, description="a label shown in plans")
    reset_site: ResetSpec = Field(description="restart SMS_SITE_CONFIG_MANAGER and send it code 194 (Q254532): it "
                                  "copies the Site.srv service files to every managed server's Helper.srv")


@dataclass
class HelperCopy:
    server: str
    path: str
    where: str
    source: str  # path on the site server
    before: FileState | None
    after: FileState


@dataclass
class ResetSite:
    number: int
    step: int
    server: str
    scm_before: str
    copies: list[HelperCopy]
    helper_services: dict[str, dict[str, str]]  # server -> service -> state, for undoing the copies
    timeout: float
    kind: str = "reset_site"


class Reset(SiteWrittenKind):
    key = "reset_site"
    model = ResetStep
    action = ResetSite
    summary_rank = 20
    summary_group = "reset"

    # --- plan -------------------------------------------------------------------------------------

    def plan(self, planner, i, step):
        ss = planner.conn.site_server
        scm_state = planner.state(ss, SCM, i)
        copies: list[HelperCopy] = []
        helper_services: dict[str, dict[str, str]] = {}
        replaced = planner.planned_files()
        manifest = planner.pb.manifest.manifest
        # A copy whose size and write time are its source's is current (rsync's quick check, and the
        # replication wait's): contents are read only for the copies that will change (backups and
        # checks need them), where the session trusts fingerprints (run/known.py; not --checksum).
        # Otherwise every content is compared, each server's read in one batch.
        quick = bool(getattr(ss.files, "quick_check", False))
        if not quick:
            for ep in planner.conn.endpoints.values():
                planner.obs.prefetch(ep, [winpath.join(layout.helper_bin(ep.platform), n) for n in sms.HELPER_FILES])
            planner.obs.prefetch(ss, [winpath.join(layout.site_bin(p), n) for p in {e.platform for e in
                                      planner.conn.endpoints.values()} for n in sms.HELPER_FILES
                                      if (ss.name, winpath.key(winpath.join(layout.site_bin(p), n))) not in replaced])
        differ: list[tuple] = []
        # every server's Helper.srv folder listed in one batch (servers that share a session together)
        planner.obs.prefetch_listings([(ep, [layout.helper_bin(ep.platform)]) for ep in planner.conn.endpoints.values()])
        for ep in planner.conn.endpoints.values():
            plat = ep.platform
            for name in sms.HELPER_FILES:
                src = winpath.join(layout.site_bin(plat), name)
                replace = replaced.get((ss.name, winpath.key(src)))
                in_playbook = replace is not None or _in_playbook(planner, ss, plat, name)
                if replace is not None:
                    after = replace.after
                    src = replace.path
                else:
                    after = planner.obs.file(ss, src, content=not quick)
                    if after is None or after.size < 0:
                        continue
                dst = winpath.join(layout.helper_bin(plat), name)
                before = planner.obs.file(ep, dst, content=not quick)
                dst = planner.obs.real_case(ep, dst)
                entry = manifest.entry(name, plat)
                if entry is not None and in_playbook:  # a file this playbook puts in Site.srv
                    planner.checks.append(Check(ep.name, dst, manifest.files.index(entry), "reset"))
                if before is not None and (after.same_content(before) if not quick else
                                           (after.size, after.mtime_ns) == (before.size, before.mtime_ns)):
                    continue
                differ.append((ep, dst, src, before, after))
        # The copies that change are backed up and may be restored: identified by size and write
        # time where the server copies them itself and fingerprints are trusted (steps.base.by_identity:
        # the backup and the restore are checked against that identity, no bytes cross the wire);
        # else by their contents, a server's read in one batch.
        read_before = {ep.name: not by_identity(ep) for ep in planner.conn.endpoints.values()}
        for ep in planner.conn.endpoints.values():
            if read_before[ep.name]:
                planner.obs.prefetch(ep, [d for e, d, _, b, _ in differ if e is ep and b is not None and b.size >= 0])
        planner.obs.prefetch(ss, [s for _, _, s, _, a in differ if a.sha256 is None])
        for ep, dst, src, before, after in differ:
            if after.sha256 is None:
                after = planner.obs.file(ss, src, content=True) or after
            if before is not None and before.size >= 0 and before.sha256 is None and read_before[ep.name]:
                before = planner.obs.file(ep, dst, content=True)
            copies.append(HelperCopy(ep.name, dst, ep.where(dst), src, before,
                                     FileState(after.size, after.mtime_ns, after.sha256, after.name)))
        for ep in planner.conn.endpoints.values():
            if any(c.server == ep.name for c in copies):
                helper_services[ep.name] = {svc: planner.obs.service(ep, svc) for svc in sms.HELPER_SERVICES}
        if scm_state not in (RUNNING, STOPPED):
            raise TargetError(f"{SCM} is {scm_state}", server=ss.name)
        planner.add(ResetSite(planner.number(), i, ss.name, scm_state, copies, helper_services,
                              step.reset_site.timeout))
        planner.svc_state[(ss.name, SCM)] = RUNNING

    # --- run --------------------------------------------------------------------------------------

    def prepare(self, run, a):
        self.backup_each(run, a, a.copies)

    def execute(self, run, a):
        self.restart(run, a.server, SCM)
        run.ep(a.server).services.control(SCM, 194)

        def late() -> list[HelperCopy]:
            ok = run.holds_all([(c.server, c.path, c.after) for c in a.copies], copied=True)  # a batch a server
            return [c for c, held in zip(a.copies, ok) if not held]

        if a.copies and not run.wait_for(lambda: not late(), a.timeout, what="the site reset's Helper.srv copies"):
            names = ", ".join(run.ep(c.server).where(c.path) for c in late())
            raise TargetError(f"Site Configuration Manager did not install the new service files within "
                              f"{a.timeout:.0f} s: {names}", server=a.server)

    def undo(self, undo, a):
        by_server: dict[str, list[tuple[int, HelperCopy]]] = {}
        for k, c in enumerate(a.copies):
            if c.server in undo.unreachable:
                by_server.setdefault(c.server, [])  # on_each_server names it as not restored
                continue
            try:
                if undo.holds(c.server, c.path, c.before):  # read only when size and time say it may be
                    continue
            except TargetError:
                pass  # its restore says what it meets
            by_server.setdefault(c.server, []).append((k, c))
        def restore(server: str, items: list[tuple[int, HelperCopy]]) -> None:
            with undo.services_stopped(server, sms.HELPER_SERVICES):  # they hold Helper.srv files open
                undo.restore_on(server, [(c.path, c.before, backup_path(undo.run, a.number, winpath.basename(c.path), k))
                                         for k, c in items])

        # the copies are on every managed server: an unreachable one never stops the others' restore
        undo.on_each_server({server: partial(restore, server, items) for server, items in by_server.items()})

    # --- facts and words --------------------------------------------------------------------------

    def touched(self, a):
        return self.copies_touched(a.copies)

    def service_effects(self, a):
        return [(a.server, SCM, RUNNING)]

    def server_names(self, a):
        return self.named_in("copies", a, a.copies)

    def server_paths(self, a):
        return self.copies_paths(a.copies)

    def describe(self, a):
        return (f"reset site: restart {SCM} on {a.server}, send code 194; "
                f"{len(a.copies)} Helper.srv cop{'y' if len(a.copies) == 1 else 'ies'} will change")

    def label(self, a):
        return "reset site"

    def render(self, a, tz):

        restart = "restart" if a.scm_before == RUNNING else "start"
        lines: list[tuple[str, str | None]] = [
            (f"reset the site: {restart} {SCM} on {a.server}, then send it code 194 ({sms.describe_code(194)})",
             None)]
        if a.copies:
            lines.append((f"       Site Configuration Manager then installs {len(a.copies)} service "
                          f"file{'s' if len(a.copies) != 1 else ''} into Helper.srv:", "dim"))
        lines += [(f"         {c.where}: {file_state(c.before, tz)}  ->  {file_state(c.after, tz)}", "dim")
                  for c in a.copies]
        return lines

    def summarize(self, actions):
        if not actions:
            return None
        copies = sum(len(a.copies) for a in actions)
        return f"{plural(len(actions), 'site reset')} ({copies} Helper.srv cop{'ies' if copies != 1 else 'y'})"


def _in_playbook(planner, ep, plat, name: str) -> bool:
    """Does a replace step of this playbook target Site.srv\\<Platform>.bin\\<name> on `ep`?"""
    want = winpath.key(winpath.join(layout.site_bin(plat), name))
    return any(c.server == ep.name and winpath.key(c.path) == want for c in planner.checks)
