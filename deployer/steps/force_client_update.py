"""`force_client_update: {timeout: 900, restart_executive: true}`: force a site-wide client
update as Q166771 says (Q241656: "To update the clients, either manually run Upgrade.bat on
each client or follow ... Q166771 SMS: How to Force Site-Wide Client Updates").

After replication, System.map gets a new timestamp (the article opens and saves it in
Notepad; deployer sets its write time one minute later, the bytes stay). On its next pass Maintenance
Manager regenerates the copy lists (Cl_nt.txt, ...) with a new CopyListVersion and
replicates them to every logon server; a client whose Sms.ini holds another value
verifies its files against the logon server and fetches the new ones.

Plan: only when this playbook changes client files (a replace in Client.src, or Logon.srv
copies awaited), so a converged site is left alone. Prepare: System.map and every copy list
(site server and logon servers) backed up. Execute: the new timestamp, SMS_EXECUTIVE
restarted when the playbook says so (otherwise the work cycle does it), then a bounded wait
until every logon server offers the site server's new CopyListVersion; the new value is
reported per logon server. Undo: SMS_EXECUTIVE kept stopped, the copy lists and System.map
put back byte for byte, write times included; Maintenance Manager compares System.map with
the copy lists, so that is no new change, and clients that already saw the new value see
the old one again: it differs from their Sms.ini, so they verify once more and fetch the
restored files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

from ..model import winpath
from ..model.state import FileState, Touched, describe as file_state
from ..model.runpaths import backup_path
from ..sms import layout, maintman_log
from ..sms.copylists import COPY_LISTS, READ_LIMIT, parse_copy_list_version, read_version
from ..sms.services import EXECUTIVE
from ..targets.base import RUNNING, TargetError
from .base import LogonStepModel, LogonWait, SiteWrittenKind, plural


class ClientUpdateSpec(LogonWait):
    pass


class ClientUpdateStep(LogonStepModel):
    force_client_update: ClientUpdateSpec = Field(
        default_factory=ClientUpdateSpec, description="force a site-wide client update (Q166771): give System.map a "
        "new timestamp, so Maintenance Manager writes new copy lists with a new CopyListVersion")


@dataclass
class CopyListFile:
    server: str
    path: str
    where: str
    before: FileState | None
    version: int | None  # its CopyListVersion when planned


@dataclass
class ForceClientUpdate:
    number: int
    step: int
    server: str  # the site server
    system_map: str
    system_map_before: FileState
    system_map_after: FileState
    copy_lists: list[CopyListFile]
    logon_servers: list[str]
    timeout: float
    restart_executive: bool
    log_offset: int
    kind: str = "force_client_update"


def _version(files, rel: str) -> int | None:
    return read_version(files, rel)[0]


def _versions(wanted: list[tuple[Any, str]]) -> list[int | None]:
    """_version of each (files, path): a server whose transport reads many small files at once
    (SMB 2/3) in one batch, the others one by one."""
    out: list[int | None] = [None] * len(wanted)
    by_files: dict[int, list[int]] = {}
    for k, (files, _) in enumerate(wanted):
        by_files.setdefault(id(files), []).append(k)
    for ks in by_files.values():
        files = wanted[ks[0]][0]
        many = getattr(files, "read_many", None)
        if many is None:
            for k in ks:
                out[k] = _version(files, wanted[k][1])
            continue
        for k, data in zip(ks, many([wanted[k][1] for k in ks], READ_LIMIT)):
            out[k] = None if data is None else parse_copy_list_version(data)
    return out


def _changes_client_files(planner) -> bool:
    """Does an earlier action change a client file: one in the site server's Client.src, or a
    logon server's Logon.srv copy (whichever kind of step plans it)?"""
    ss = planner.conn.site_server.name
    client_src = winpath.key(layout.CLIENT_SRC) + "\\"
    return any((server == ss and path.startswith(client_src)) or _on_logon_srv(path)
               for server, path in planner.planned_files())


class ClientUpdate(SiteWrittenKind):
    key = "force_client_update"
    model = ClientUpdateStep
    action = ForceClientUpdate
    summary_rank = 30
    summary_group = "clients"

    def plan(self, planner, i, step):
        spec = step.force_client_update
        ss = planner.conn.site_server
        targets = planner.servers(i, step.servers)  # the site server too when it carries LOGON.SRV
        if not _changes_client_files(planner):
            planner.skip(i, ss.name, "force a site-wide client update", "this run changes no client file")
            return
        sysmap = planner.obs.file(ss, layout.SYSTEM_MAP, content=True)
        if sysmap is None or sysmap.size < 0:
            raise TargetError(f"{ss.where(layout.SYSTEM_MAP)} is missing; Maintenance Manager regenerates the "
                              "copy lists from it (Q166771)", server=ss.name)
        path = planner.obs.real_case(ss, layout.SYSTEM_MAP)
        # "a new date/time stamp": one minute later than it has. Maintenance Manager looks for a
        # changed timestamp, not the current time; a fixed step makes every run of this plan (a
        # saved plan, a recovery finishing it) end in the same state.
        new_ns = sysmap.mtime_ns + 60 * 10**9
        lists: list[CopyListFile] = []
        folders = [(ss, layout.client_src_bin), *[(ep, layout.logon_bin) for ep in targets]]
        for ep, folder in folders:  # the copy lists' contents, each server's in one batch
            planner.obs.prefetch_contents(ep, [winpath.join(folder(p), n) for p in planner.site.site.platform_list
                                               for n in COPY_LISTS.get(p.key, ())], READ_LIMIT)
        for ep, folder in folders:
            for plat in planner.site.site.platform_list:
                for name in COPY_LISTS.get(plat.key, ()):
                    rel = winpath.join(folder(plat), name)
                    before = planner.obs.file(ep, rel, content=False)
                    if before is not None and before.size < 0:
                        continue
                    data = None
                    if before is not None:
                        rel = planner.obs.real_case(ep, rel)
                        data = planner.obs.content(ep, rel, READ_LIMIT)  # its CopyListVersion, sha256 recorded
                        before = planner.obs.file(ep, rel, content=True)  # (hashed by that same read)
                    lists.append(CopyListFile(ep.name, rel, ep.where(rel), before,
                                              None if data is None else parse_copy_list_version(data)))
        planner.add(ForceClientUpdate(planner.number(), i, ss.name, path, sysmap,
                                      FileState(sysmap.size, new_ns, sysmap.sha256, sysmap.name), lists,
                                      [ep.name for ep in targets], spec.timeout, spec.restart_executive,
                                      planner.obs.log_size(ss, layout.MAINTMAN_LOG)))
        if spec.restart_executive:
            planner.svc_state[(ss.name, EXECUTIVE)] = RUNNING

    # --- run --------------------------------------------------------------------------------------

    def prepare(self, run, a):
        run.backup(a.server, a.system_map, a.system_map_before,
                   backup_path(run.run, a.number, winpath.basename(a.system_map)), a.number)
        self.backup_each(run, a, a.copy_lists)

    def execute(self, run, a):
        ss = run.ep(a.server)
        ss.files.set_mtime(a.system_map, a.system_map_after.mtime_ns)
        if a.restart_executive:
            self.restart(run, a.server, EXECUTIVE)
        source = [c for c in a.copy_lists if c.server == a.server and not _on_logon_srv(c.path)]
        old = max((c.version for c in source if c.version is not None), default=0)

        def offered() -> dict[tuple[str, str], int | None]:
            return dict(zip(((c.server, c.path) for c in a.copy_lists),
                            _versions([(run.ep(c.server).files, c.path) for c in a.copy_lists])))

        def done() -> bool:
            now = offered()
            new = [now[(c.server, c.path)] for c in source]
            if not new or any(v is None or v <= old for v in new):
                return False
            want = max(new)
            return all(v == want for v in now.values())

        if not run.wait_for(done, a.timeout, interval=1.0,
                            what=f"a new CopyListVersion on {', '.join(a.logon_servers) or a.server}"):
            now = offered()
            evidence = maintman_log.read_since(ss.files, a.log_offset)
            late = sorted({c.server for c in a.copy_lists if now[(c.server, c.path)] is None
                           or now[(c.server, c.path)] <= old})
            detail = "; ".join(f"{s}: {evidence.describe(s)}" for s in late if s != a.server)
            raise TargetError(f"no new CopyListVersion on {', '.join(late)} within {a.timeout:.0f} s after "
                              f"System.map got a new timestamp" + (f" ({detail})" if detail else ""),
                              server=", ".join(late))
        now = offered()
        for server in a.logon_servers:
            versions = sorted({v for (s, p), v in now.items() if s == server and v is not None and _on_logon_srv(p)})
            run.ctx.say(f"  {server}: clients compare against CopyListVersion "
                        f"{', '.join(map(str, versions))} (was {old})")

    def quiesce(self, undo, a):
        if a.number in undo.begun():
            undo.stop_if_running(a.server, EXECUTIVE, "so that Maintenance Manager does not regenerate the copy "
                                 "lists while they are restored")

    def undo(self, undo, a):
        # server by server: a logon server that cannot be reached never stops the others' restore
        undo.restore_files([*((c.server, c.path, c.before, backup_path(undo.run, a.number, winpath.basename(c.path), k))
                              for k, c in enumerate(a.copy_lists)),
                            (a.server, a.system_map, a.system_map_before,
                             backup_path(undo.run, a.number, winpath.basename(a.system_map)))])

    # --- facts and words --------------------------------------------------------------------------

    def touched(self, a):
        # the copy lists' new content is Maintenance Manager's to write: restored by undo, not planned
        return [Touched(a.server, a.system_map, a.system_map_before, a.system_map_after)]

    def rewritten(self, a):
        return [(c.server, c.path) for c in a.copy_lists]

    def service_effects(self, a):
        return [(a.server, EXECUTIVE, RUNNING)] if a.restart_executive else []

    def server_names(self, a):
        return self.named_in("copy_lists", a, a.copy_lists)

    def server_paths(self, a):
        return [(("system_map",), a.system_map)] + [(("copy_lists", j, "path"), c.path)
                                                     for j, c in enumerate(a.copy_lists)]

    def describe(self, a):
        return (f"force a site-wide client update: new timestamp on {a.server} {a.system_map}"
                + (f", restart {EXECUTIVE}" if a.restart_executive else "")
                + f"; wait for a new CopyListVersion on {', '.join(a.logon_servers) or 'the site server'}")

    def label(self, a):
        return "force client update"

    def render(self, a, tz):

        versions = sorted({c.version for c in a.copy_lists if c.version is not None})
        lines: list[tuple[str, str | None]] = [
            (f"force a site-wide client update (Q166771): give {a.server} {a.system_map} a new timestamp"
             + (f", restart {EXECUTIVE}" if a.restart_executive else ""), None),
            (f"       {file_state(a.system_map_before, tz)}  ->  {file_state(a.system_map_after, tz)}", "dim"),
            (f"       then wait up to {a.timeout:.0f} s until {plural(len(a.logon_servers), 'logon server')} offer "
             f"a new CopyListVersion (now {', '.join(map(str, versions)) or 'none'})", "dim")]
        return lines

    def summarize(self, actions):
        return plural(len(actions), "client update") if actions else None


def _on_logon_srv(path: str) -> bool:
    """A copy list a logon server offers (the site server's own LOGON.SRV included), not the source in Client.src."""
    return winpath.key(path).startswith(winpath.key(layout.LOGON_SRV) + "\\")
