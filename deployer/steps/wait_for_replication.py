"""`wait_for_replication: {timeout: 900, restart_executive: false}`: wait until Maintenance
Manager has replicated the client files to every logon server's Logon.srv (Q241656:
"Maintenance Manager replicates the updated files to the Systems Management Server logon
servers on its next work cycle").

Plan: per logon server (the step's `servers:`, logon_servers by default) and platform, the
Logon.srv\\<Platform>.bin files that will change: each file of the site server's
Client.src\\<Platform>.bin as this playbook leaves it (its replaces applied) whose size or
write time differs from the logon server's copy (what Maintenance Manager compares).
Prepare: every copy about to be overwritten is backed up on its logon server. Execute:
restart SMS_EXECUTIVE when the playbook says so (the documented trigger; no control code
reaches Maintenance Manager), then wait up to `timeout` until every file of the manifest
has arrived on every logon server, by its attributes; Maintman.log says why one is late.
Undo: SMS_EXECUTIVE stopped (so no cycle replicates while Logon.srv is put back), the
copies restored from the backups, files that did not exist removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from pydantic import Field

from ..model import winpath
from ..model.state import FileState, describe as file_state
from ..model.runpaths import backup_path
from ..sms import layout, maintman_log
from ..sms.services import EXECUTIVE
from ..targets.base import RUNNING, TargetError
from ..sms.verify import Check
from .base import LogonStepModel, LogonWait, SiteWrittenKind, by_identity, plural



class ReplicationSpec(LogonWait):
    pass


class ReplicationStep(LogonStepModel):
    wait_for_replication: ReplicationSpec = Field(
        default_factory=ReplicationSpec, description="wait (bounded) until Maintenance Manager has copied the client "
        "files to every logon server's Logon.srv")


@dataclass
class LogonCopy:
    server: str
    path: str  # Logon.srv\<Platform>.bin\<name> on the logon server
    where: str
    source: str  # Client.src\<Platform>.bin\<name> on the site server
    before: FileState | None
    after: FileState
    awaited: bool  # a file of the manifest: the step waits for it (others are only backed up)


@dataclass
class WaitForReplication:
    number: int
    step: int
    server: str  # the site server
    copies: list[LogonCopy]
    logon_servers: list[str]
    timeout: float
    restart_executive: bool
    executive_before: str
    log_offset: int  # Maintman.log's size when planned: the evidence starts there
    kind: str = "wait_for_replication"


def _same_attributes(a: FileState, b: FileState | None) -> bool:
    return b is not None and (a.size, a.mtime_ns) == (b.size, b.mtime_ns)


class WaitReplication(SiteWrittenKind):
    key = "wait_for_replication"
    model = ReplicationStep
    action = WaitForReplication
    summary_rank = 25
    summary_group = "replication"

    def plan(self, planner, i, step):
        spec = step.wait_for_replication
        ss = planner.conn.site_server
        targets = planner.servers(i, step.servers)  # the site server too when it carries LOGON.SRV
        manifest = planner.pb.manifest.manifest
        replaced = planner.planned_files()  # Client.src as the earlier steps leave it
        copies: list[LogonCopy] = []
        differ: list[tuple[Any, str, str, FileState | None, FileState, str, bool]] = []
        # the copies' folders listed in one batch (servers that share a session together), not one round trip each
        planner.obs.prefetch_listings([(ep, [layout.logon_bin(p) for p in planner.site.site.platform_list])
                                       for ep in targets])
        for plat in planner.site.site.platform_list:
            src_dir = layout.client_src_bin(plat)
            if planner.obs.folder(ss, src_dir) != "folder":
                continue
            names = [f.name for f in planner.obs.listdir(ss, src_dir) if not f.is_dir]
            for name in names:
                src = winpath.join(src_dir, name)
                rep = replaced.get((ss.name, winpath.key(src)))
                # Replication goes by size and write time, and so does the decision here: contents
                # are read only for the copies that will be awaited (backups and checks need them).
                after = rep.after if rep is not None else planner.obs.file(ss, src, content=False)
                if after is None or after.size < 0:
                    continue
                entry = manifest.entry(name, plat)
                # a client file this playbook puts in Client.src (replaced now, or already current)
                planned_src = any(c.server == ss.name and winpath.key(c.path) == winpath.key(src)
                                  for c in planner.checks)
                for ep in targets:
                    dst = winpath.join(layout.logon_bin(plat), name)
                    before = planner.obs.file(ep, dst, content=False)
                    if before is not None:
                        dst = winpath.join(layout.logon_bin(plat), before.name or name)
                    if entry is not None and (rep is not None or planned_src):
                        planner.checks.append(Check(ep.name, dst, manifest.files.index(entry), "replication",
                                                    source_server=ss.name, source=src))
                    if _same_attributes(after, before):
                        continue
                    differ.append((ep, dst, src, before, after, name, entry is not None))
        # the contents of the copies that differ (backups and checks need them), each server's read
        # in one batch where its transport can (Observer.prefetch records each read as file() does)
        wanted: dict[str, tuple[Any, dict[str, str]]] = {}
        for ep, dst, src, before, after, _, _ in differ:
            if after.sha256 is None:
                wanted.setdefault(ss.name, (ss, {}))[1].setdefault(winpath.key(src), src)
            if before is not None and before.size >= 0 and not by_identity(ep):
                wanted.setdefault(ep.name, (ep, {}))[1].setdefault(winpath.key(dst), dst)
        for ep, rels in wanted.values():
            planner.obs.prefetch(ep, list(rels.values()))
        for ep, dst, src, before, after, name, awaited in differ:
            if after.sha256 is None:
                after = planner.obs.file(ss, src, content=True) or after
            # identified by size and write time where its backup and restore never cross the wire
            # (steps.base.by_identity); else by its content
            if before is not None and before.size >= 0 and not by_identity(ep):
                before = planner.obs.file(ep, dst, content=True)
            copies.append(LogonCopy(ep.name, dst, ep.where(dst), src, before,
                                    FileState(after.size, after.mtime_ns, after.sha256, name), awaited=awaited))
        exec_before = planner.state(ss, EXECUTIVE, i)
        if not copies:
            planner.skip(i, ss.name, "wait for replication",
                         f"Logon.srv is current on {plural(len(targets), 'logon server')}")
            return
        if not any(c.awaited for c in copies) and not planner.planned_files():
            # Only files of Maintenance Manager's own (copy lists, files no manifest lists) differ, and
            # this run changes nothing: its next cycle replicates them; no outage for that (and
            # `verify`, which passes such a site, agrees that there is nothing to do).
            planner.skip(i, ss.name, "wait for replication", "only files no manifest lists differ on Logon.srv ("
                         + ", ".join(sorted({winpath.basename(c.path) for c in copies})) + "); Maintenance "
                         "Manager's next cycle replicates them")
            return
        planner.add(WaitForReplication(planner.number(), i, ss.name, copies, [ep.name for ep in targets],
                                       spec.timeout, spec.restart_executive, exec_before,
                                       planner.obs.log_size(ss, layout.MAINTMAN_LOG)))
        if spec.restart_executive:
            planner.svc_state[(ss.name, EXECUTIVE)] = RUNNING

    # --- run --------------------------------------------------------------------------------------

    def prepare(self, run, a):
        self.backup_each(run, a, a.copies)

    def execute(self, run, a):
        ss = run.ep(a.server)
        if a.restart_executive:
            self.restart(run, a.server, EXECUTIVE)

        def late() -> list[LogonCopy]:
            awaited = [c for c in a.copies if c.awaited]
            ok = run.holds_all([(c.server, c.path, c.after) for c in awaited], copied=True)  # a batch a server
            return [c for c, held in zip(awaited, ok) if not held]

        pending: list[LogonCopy] = []  # as of the last poll: the heartbeat names the servers still waited for

        def settled() -> bool:
            pending[:] = late()
            return not pending

        if not run.wait_for(settled, a.timeout, interval=1.0, what=lambda: "replication to "
                            + ", ".join(sorted({c.server for c in pending}))):
            evidence = maintman_log.read_since(ss.files, a.log_offset)
            by_server: dict[str, list[str]] = {}
            for c in late():
                by_server.setdefault(c.server, []).append(winpath.basename(c.path))
            detail = "; ".join(f"{server}: {', '.join(names)} ({evidence.describe(server)})"
                               for server, names in by_server.items())
            raise TargetError(f"Maintenance Manager did not replicate the client files within {a.timeout:.0f} s: "
                              f"{detail}", server=", ".join(by_server))
        evidence = maintman_log.read_since(ss.files, a.log_offset)
        for server in a.logon_servers:
            n = sum(1 for c in a.copies if c.server == server)
            run.ctx.say(f"  {server}: {plural(n, 'client file')} replicated to Logon.srv "
                        f"({evidence.describe(server)})")

    def quiesce(self, undo, a):
        if a.number in undo.begun():
            undo.stop_if_running(a.server, EXECUTIVE, "so that Maintenance Manager does not replicate while "
                                 "Logon.srv is restored")

    def undo(self, undo, a):
        # server by server: a logon server that cannot be reached never stops the others' restore
        undo.restore_files((c.server, c.path, c.before, backup_path(undo.run, a.number, winpath.basename(c.path), k))
                           for k, c in enumerate(a.copies))

    # --- facts and words --------------------------------------------------------------------------

    def touched(self, a):
        return self.copies_touched(a.copies)

    def service_effects(self, a):
        return [(a.server, EXECUTIVE, RUNNING)] if a.restart_executive else []

    def server_names(self, a):
        return self.named_in("copies", a, a.copies)

    def server_paths(self, a):
        return self.copies_paths(a.copies)

    def describe(self, a):
        servers = sorted({c.server for c in a.copies})
        return (f"wait for replication: {plural(len(a.copies), 'Logon.srv file')} on "
                f"{', '.join(servers)}" + (f", after restarting {EXECUTIVE}" if a.restart_executive else ""))

    def label(self, a):
        return "wait for replication"

    def render(self, a, tz):

        first = ("restart SMS_EXECUTIVE on " + a.server + ", then w" if a.restart_executive else "W")
        lines: list[tuple[str, str | None]] = [
            (f"{first}ait up to {a.timeout:.0f} s for Maintenance Manager to replicate Client.src to the logon "
             "servers:", None)]
        lines += [(f"         {c.where}: {file_state(c.before, tz)}  ->  {file_state(c.after, tz)}", "dim")
                  for c in a.copies]
        return lines

    def summarize(self, actions):
        if not actions:
            return None
        return f"{plural(sum(len(a.copies) for a in actions), 'Logon.srv copy', 'Logon.srv copies')} awaited"
