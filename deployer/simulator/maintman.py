"""Maintenance Manager on the mock site: the thread of SMS_EXECUTIVE that feeds the logon servers.

What SMS 1.2 does (articles in brackets, see DESIGN.md "After the site server"):
  - it copies `Site.srv\\Maincfg.box\\Client.src\\<Platform>.bin` to `Logon.srv\\<Platform>.bin`
    on every logon server, on a first cycle when SMS_EXECUTIVE starts [Q153563] and then on
    its work cycle [Q193784, Q216552];
  - it never deletes a file from a logon server [Q193746] and does not update a file that is
    in use [Q164901];
  - it writes `Maintman.log`, "~Working on logon server <name>" per server [Q200769], and a
    failure line per server it could not update (event 116, [Q122178]);
  - when `System.map` has a new timestamp it regenerates the copy lists (Cl_nt.txt, ...)
    with a new CopyListVersion [Q166771, Q249151]; clients compare that value with their
    Sms.ini and update themselves when it differs.

How cycles run without a daemon. The mock has no process of its own, so:
  - the first cycle runs inside the mock SCM's start of SMS_EXECUTIVE on the site server
    (`first_cycle`): restarting the Executive is the documented trigger [Q181630], and it
    makes replication a deterministic consequence of an action deployer takes;
  - the work cycle is a daemon thread of the process that opened the mock site
    (`WorkCycle`, started by the mock transport, stopped when the connection closes): every
    `interval` seconds (site.json "maintenance_manager": {"interval": ...}; 600 by default,
    "about 10 minutes" [Q245816]) it runs a cycle if SMS_EXECUTIVE is running. Between
    deployer commands nothing runs, as if the clock stood still; a command that waits longer
    than the interval sees the cycles a real site would run in that time. A cycle computed
    from the clock on every touch of the mock was rejected: a read-only command (plan,
    verify) could then write to the site, and whether it did would depend on how long ago
    the lab was made.
Cycles are serialised across threads and processes with a lock file beside site.json.
The copy lists are generated into the site server's Client.src\\<Platform>.bin folders and
reach the logon servers with the other client files, so a logon server that missed a
cycle still carries the previous CopyListVersion, as on a real site.
"""

from __future__ import annotations

import fcntl
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import failpoints
from ..model import winpath
# the copy lists are SMS knowledge, shared with the step kinds and the clients report
from ..sms.copylists import COPY_LIST_NAMES, COPY_LISTS, copy_list_text, parse_copy_list_version  # noqa: F401
from ..errors import InputError
from ..sms import layout, maintman_log
from ..sms.platforms import lookup as platform_lookup
from ..targets.temps import MAINTMAN, temp_name
from ..targets.base import RUNNING, FileStat, FileTransport, SharingViolation, TargetError

if TYPE_CHECKING:
    from ..targets.mock import MockSite

SETTINGS_KEY = "maintenance_manager"
DEFAULT_INTERVAL = 600.0
LOCK_FILE = "maintman.lock"
EXECUTIVE = "SMS_EXECUTIVE"


@dataclass
class ServerOutcome:
    server: str
    copied: list[str] = field(default_factory=list)  # Logon.srv-relative paths
    in_use: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class CycleResult:
    reason: str
    servers: list[ServerOutcome] = field(default_factory=list)
    copy_list_version: int | None = None  # set when the copy lists were regenerated


# --- the site's settings and state ----------------------------------------------------------


def interval(site: "MockSite") -> float:
    settings = site.meta.get(SETTINGS_KEY)
    value = settings.get("interval", DEFAULT_INTERVAL) if isinstance(settings, dict) else DEFAULT_INTERVAL
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 86400:
        raise InputError(f"{site.root / 'site.json'}: {SETTINGS_KEY}.interval is {value!r}; it is the seconds "
                         "between Maintenance Manager's work cycles, 0 (off) to 86400")
    return float(value)


def _site_server(site: "MockSite") -> str:
    return next(n for n, s in site.servers.items() if s.role == "site_server")


def logon_servers(site: "MockSite") -> list[str]:
    """Every server with Logon.srv to feed (layout.is_logon_server): a site server that carries one included."""
    out = []
    for n, s in site.servers.items():
        carries = False
        if s.role == "site_server":
            try:
                st = site.files(n).stat(layout.LOGON_SRV)
                carries = st is not None and st.is_dir
            except TargetError:
                carries = False
        if layout.is_logon_server(s.role, carries):
            out.append(n)
    return out


def executive_running(site: "MockSite") -> bool:
    try:
        return site.services(_site_server(site)).query(EXECUTIVE).state == RUNNING
    except TargetError:
        return False


# --- copy lists ---------------------------------------------------------------------------------

# (the copy lists' names and format are SMS knowledge: sms/copylists.py)


def write_copy_lists(files: FileTransport, platforms: list[str], version: int, mtime_ns: int) -> list[str]:
    """(Re)write every copy list into Client.src\\<Platform>.bin; the paths written."""
    written = []
    for key in platforms:
        plat = platform_lookup(key)
        folder = layout.client_src_bin(plat)
        if files.stat(folder) is None:
            continue
        names = [f.name.upper() for f in files.listdir(folder)
                 if not f.is_dir and f.name.casefold() not in COPY_LIST_NAMES]
        for list_name in COPY_LISTS.get(plat.key, ()):
            rel = winpath.join(folder, list_name)
            tmp = temp_name(rel, MAINTMAN)
            files.write_file(tmp, [copy_list_text(list_name, version, names)], durable=False)
            files.set_mtime(tmp, mtime_ns)
            failpoints.hit("mock.maintman.copylist.written")  # a kill here leaves the temporary copy
            files.rename(tmp, rel, replace=True, durable=False)
            written.append(rel)
    return written


def install(site: "MockSite", version: int = 1) -> None:
    """Set a new lab site up as SMS setup leaves it: copy lists at `version`, as old as
    System.map, and a first cycle (SMS_EXECUTIVE was started by setup)."""
    files = site.files(_site_server(site))
    stamp = files.stat(layout.SYSTEM_MAP)
    write_copy_lists(files, site.meta.get("platforms", []), version, stamp.mtime_ns if stamp else time.time_ns())
    run_cycle(site, "first cycle after setup")


# --- one cycle ---------------------------------------------------------------------------------


class _Log:
    def __init__(self, files: FileTransport):
        self.files = files

    def line(self, text: str) -> None:
        stamp = time.strftime("%m-%d-%Y %H:%M:%S", time.localtime())
        data = maintman_log.format_line(text, stamp).encode()
        try:
            try:
                self.files.append(layout.MAINTMAN_LOG, data, durable=False)
            except TargetError:
                # the Logs folder is made only when the line could not be written (it is missing):
                # not looked up again before each of a cycle's lines
                self.files.makedirs(layout.LOGS)
                self.files.append(layout.MAINTMAN_LOG, data, durable=False)
        except TargetError:
            pass  # SMS carries on when its trace log cannot be written; so does the mock


def run_cycle(site: "MockSite", reason: str) -> CycleResult:
    """One work cycle of Maintenance Manager, serialised with every other one on this site."""
    with open(site.root / LOCK_FILE, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cycle(site, reason)


def _cycle(site: "MockSite", reason: str) -> CycleResult:
    result = CycleResult(reason)
    server = _site_server(site)
    src = site.files(server)
    log = _Log(src)
    log.line(f"~Maintenance Manager cycle ({reason})")
    result.copy_list_version = _regenerate_copy_lists(site, src, log)
    for name in logon_servers(site):
        outcome = ServerOutcome(name)
        result.servers.append(outcome)
        log.line(f"{maintman_log.WORKING}{name}")
        try:
            _replicate(site, src, site.files(name), outcome, log)
        except TargetError as exc:
            outcome.error = str(exc)
            log.line(f"{maintman_log.FAILED}{name}: {exc} (event 116)")
    log.line("~Maintenance Manager cycle done")
    return result


def _regenerate_copy_lists(site: "MockSite", src: FileTransport, log: _Log) -> int | None:
    """New copy lists when System.map is newer than them ("detect the changed date/time stamp",
    Q166771). Compared with the copy lists' own write time, not a remembered one, so that a
    rollback that puts System.map and the copy lists back as they were is not a change."""
    stamp = src.stat(layout.SYSTEM_MAP)
    if stamp is None:
        return None
    lists = _copy_lists(site, src)
    if lists and stamp.mtime_ns <= min(st.mtime_ns for _, st in lists):
        return None
    versions = [parse_copy_list_version(b"".join(src.read_chunks(rel))) for rel, _ in lists]
    version = max((v for v in versions if v is not None), default=0) + 1
    # written with System.map's time: the copy lists are now as new as it is (and two sites
    # that got the same System.map get the same copy lists)
    written = write_copy_lists(src, site.meta.get("platforms", []), version, stamp.mtime_ns)
    log.line(f"~SYSTEM.MAP has a new timestamp: regenerated {len(written)} copy lists, CopyListVersion={version}")
    return version


def _copy_lists(site: "MockSite", src: FileTransport) -> list[tuple[str, FileStat]]:
    out = []
    for key in site.meta.get("platforms", []):
        plat = platform_lookup(key)
        for name in COPY_LISTS.get(plat.key, ()):
            rel = winpath.join(layout.client_src_bin(plat), name)
            st = src.stat(rel)
            if st is not None and not st.is_dir:
                out.append((rel, st))
    return out


def _replicate(site: "MockSite", src: FileTransport, dst: FileTransport, outcome: ServerOutcome, log: _Log) -> None:
    for key in site.meta.get("platforms", []):
        plat = platform_lookup(key)
        src_dir = layout.client_src_bin(plat)
        if src.stat(src_dir) is None:
            continue
        dst_dir = layout.logon_bin(plat)
        dst.makedirs(dst_dir)
        present = {f.name.casefold(): f for f in dst.listdir(dst_dir)}
        for f in src.listdir(src_dir):
            if f.is_dir:
                continue
            have = present.get(f.name.casefold())
            if have is not None and (have.size, have.mtime_ns) == (f.size, f.mtime_ns):
                continue
            name = have.name if have else f.name
            target = winpath.join(dst_dir, name)
            on_share = f"\\\\{outcome.server}\\SMS_SHR\\{plat.folder}\\{name}"  # Logon.srv is shared as SMS_SHR
            if _copy(src, winpath.join(src_dir, f.name), dst, target, f.mtime_ns):
                outcome.copied.append(target)
                log.line(f"Copied {winpath.join(src_dir, f.name)} to {on_share}")
            else:
                outcome.in_use.append(target)
                log.line(f"~File {on_share} is in use; it will be updated on a later cycle")


def _copy(src: FileTransport, src_rel: str, dst: FileTransport, dst_rel: str, mtime_ns: int) -> bool:
    """Copy one file (write time kept) through a temporary name; False if the target is in use."""
    tmp = temp_name(dst_rel, MAINTMAN)
    dst.write_file(tmp, src.read_chunks(src_rel), durable=False)
    dst.set_mtime(tmp, mtime_ns)
    failpoints.hit("mock.maintman.copy.written")
    try:
        dst.rename(tmp, dst_rel, replace=True, durable=False)
    except SharingViolation:
        dst.remove(tmp)
        return False
    return True


# --- when cycles run ----------------------------------------------------------------------------


def first_cycle(site: "MockSite") -> CycleResult | None:
    """The cycle SMS_EXECUTIVE runs when it starts. A failure here never fails the start."""
    try:
        return run_cycle(site, "SMS_EXECUTIVE started")
    except (TargetError, OSError) as exc:
        _Log(site.files(_site_server(site))).line(f"Maintenance Manager cycle failed: {exc}")
        return None


class WorkCycle:
    """The work cycle: a daemon thread running a cycle every `interval` seconds while
    SMS_EXECUTIVE runs on the site server, for as long as the mock site is open."""

    def __init__(self, site: "MockSite"):
        self.site = site
        self.interval = interval(site)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"maintman {site.root.name}", daemon=True)

    def start(self) -> "WorkCycle":
        if self.interval > 0:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if executive_running(self.site):
                    run_cycle(self.site, "work cycle")
            except (TargetError, OSError):
                continue  # the next cycle tries again, as Maintenance Manager does
