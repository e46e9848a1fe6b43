"""Q166765's checks before a PCM-service distribution or a hotfix, as plain functions.

Each check returns a CheckResult that passes, fails, or cannot be checked on this target,
and names the article requirement it enforces. `run` gathers them for a site:

  pcm-service       requirement 4: the PCM service installed and running (every server)
  pcm-version       recommended step 6: Helper.srv\\<Platform>.bin\\Pcmsvc32.exe has the file
                    date the playbook's manifest lists (by its rule: exact or or-later)
  polling-interval  recommended step 2: PCM Polling Interval of 20 minutes or more
  silent            requirement 1: no user input (a PCM record's User Input Flags)
  automated         requirement 2: Automated Command Line and System (Background) Task
  mandatory         requirement 3: sent as mandatory, with a Mandatory After time
  backup            recommended step 5: a backup marker younger than the site allows

Nothing here writes to a server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..model import winpath
from ..targets.base import TargetError
from . import attrs, layout
from .pcm.dumptext import date_to_text
from .pcm.record import PcmRecord

if TYPE_CHECKING:
    from ..model.inventory import SiteRef
    from ..steps.playbook import LoadedPlaybook
    from ..targets.connect import Endpoint, SiteConnection

PASS, FAIL, UNKNOWN = "pass", "fail", "cannot check"
PCM_SERVICE = "SMS_PACKAGE_COMMAND_MANAGER_NT"
PCM_IMAGE = "PCMSVC32.EXE"
MIN_POLLING_MINUTES = 20

REQUIREMENTS: dict[str, str] = {
    "pcm-service": "Q166765 requirement 4: the PCM service must be properly installed, configured, and running on "
                   "the target computer",
    "pcm-version": "Q166765 step 6: the target servers run the correct version of the PCM service (the file date "
                   "in Sms\\Helper.srv)",
    "polling-interval": "Q166765 step 2: the PCM Polling Interval is set to 20 minutes or greater",
    "silent": "Q166765 requirement 1: the package must be run silently with no user input required",
    "automated": "Q166765 requirement 2: the command line is an Automated Command Line and a System (Background) "
                 "Task",
    "mandatory": "Q166765 requirement 3: the job must be sent as mandatory, and runs at the Mandatory After time",
    "backup": "Q166765 step 5: the target computer has been properly backed up",
}


@dataclass(frozen=True)
class CheckResult:
    check: str
    target: str  # a server, the site, or a PCM record's request ID
    status: str  # pass, fail, cannot check
    detail: str

    @property
    def requirement(self) -> str:
        return REQUIREMENTS[self.check]

    def to_json(self) -> dict:
        return {**asdict(self), "requirement": self.requirement}


def _r(check: str, target: str, status: str, detail: str) -> CheckResult:
    return CheckResult(check, target, status, detail)


def pcm_service(ep: "Endpoint", state: str | None = None) -> CheckResult:
    """`state`: what the service will be at that point of a plan, when earlier steps change it."""
    if state is None:
        try:
            state = ep.services.query(PCM_SERVICE).state
        except TargetError as exc:
            if exc.winerror == 1060:
                return _r("pcm-service", ep.name, FAIL, f"{PCM_SERVICE} is not installed")
            return _r("pcm-service", ep.name, UNKNOWN, f"could not query {PCM_SERVICE}: {exc}")
    if state == "running":
        return _r("pcm-service", ep.name, PASS, f"{PCM_SERVICE} is running")
    return _r("pcm-service", ep.name, FAIL, f"{PCM_SERVICE} is {state}; start it before the distribution")


def installs_pcm(playbook: "LoadedPlaybook | None") -> bool:
    """Whether the playbook itself replaces Pcmsvc32.exe (then the version is checked after, by verify).
    The playbook answers, asking each step's kind (sms/ knows no step kind)."""
    return playbook is not None and playbook.installs(PCM_IMAGE)


def pcm_version(ep: "Endpoint", site: "SiteRef", playbook: "LoadedPlaybook | None") -> CheckResult:
    from .verify import judge, local_minute

    rel = winpath.join(layout.helper_bin(ep.platform), PCM_IMAGE)
    where = winpath.absolute(ep.sms_root, rel)
    try:
        stat = ep.files.stat(rel)
    except TargetError as exc:
        return _r("pcm-version", ep.name, UNKNOWN, f"could not read {where}: {exc}")
    if stat is None:
        return _r("pcm-version", ep.name, FAIL, f"{where} is not there: the PCM service is not installed from "
                                                "Helper.srv")
    manifest = playbook.manifest.manifest if playbook else None
    tz = manifest.zone(site.site.timezone) if manifest else None
    from zoneinfo import ZoneInfo

    have = local_minute(stat.mtime_ns, tz or ZoneInfo(site.site.timezone))
    shown = f"{attrs.format_date(have.date())} {attrs.format_time(have.time())}"
    entry = manifest.entry(PCM_IMAGE, ep.platform) if manifest else None
    if entry is None:
        why = "no playbook given" if manifest is None else f"{playbook.manifest.path.name} lists no " \
              f"Pcmsvc32.exe for {ep.platform.key}"  # type: ignore[union-attr]
        return _r("pcm-version", ep.name, UNKNOWN, f"{where} is dated {shown}; {why}, so there is no wanted date")
    if installs_pcm(playbook):
        return _r("pcm-version", ep.name, UNKNOWN,
                  f"{where} is dated {shown}; this playbook installs the {attrs.format_date(entry.date)} "
                  f"{attrs.format_time(entry.time)} Pcmsvc32.exe itself, "
                  "so its version is checked after the run (deployer verify)")
    wanted = f"{attrs.format_date(entry.date)} {attrs.format_time(entry.time)}"
    j = judge(entry, stat, tz)  # type: ignore[arg-type]
    if j.passes(manifest.rule):  # type: ignore[union-attr]
        return _r("pcm-version", ep.name, PASS, f"{where} is dated {shown}: the manifest wants {wanted} "
                                                f"({manifest.rule})")  # type: ignore[union-attr]
    return _r("pcm-version", ep.name, FAIL, f"{where}: {j.detail or j.status}; the manifest wants {wanted} "
                                            f"({manifest.rule})")  # type: ignore[union-attr]


def polling_interval(ep: "Endpoint") -> CheckResult:
    # asked of the transport's capabilities, not of its class: only one that can read the site's
    # properties (the mock) offers site_properties()
    properties = getattr(ep.services, "site_properties", None)
    if properties is None:
        kind = type(ep.services).__name__
        return _r("polling-interval", "site", UNKNOWN,
                  "cannot be checked on this target: SMS 1.2 keeps the PCM Polling Interval in the site's "
                  f"properties (Site Properties > Clients), which {kind} cannot read; check it in the SMS "
                  "Administrator")
    minutes = properties()["pcm_polling_interval_minutes"]
    if not isinstance(minutes, int) or isinstance(minutes, bool):
        return _r("polling-interval", "site", UNKNOWN, f"the mock site's polling interval {minutes!r} is not a "
                                                        "number of minutes")
    status = PASS if minutes >= MIN_POLLING_MINUTES else FAIL
    extra = "" if status == PASS else "; below 20 the status MIF may not be processed and the package runs again"
    return _r("polling-interval", "site", status, f"PCM polls every {minutes} minutes{extra}")


def package(records: list[PcmRecord] | None) -> list[CheckResult]:
    if not records:
        why = "no PCM record given (--pcm-record FILE: PCMDUMP output or deployer-pcm YAML)"
        return [_r(c, "package", UNKNOWN, why) for c in ("silent", "automated", "mandatory")]
    out = []
    for rec in records:
        who = rec.request_id
        out.append(_r("silent", who, FAIL, "User Input Flags 1: requires user input") if rec.user_input_flags
                   else _r("silent", who, PASS, "User Input Flags 0: no user input"))
        props = {"Automated Command Line": rec.automated_command_line, "System (Background) Task": rec.background_task}
        off = [k for k, v in props.items() if v is False]
        unknown = [k for k, v in props.items() if v is None]
        if off:
            out.append(_r("automated", who, FAIL, f"not {' nor '.join(off)}"))
        elif unknown:
            out.append(_r("automated", who, UNKNOWN, f"{' and '.join(unknown)}: not in PCMDUMP's layout; record "
                                                     "them in the YAML form (automated_command_line, background_task)"))
        else:
            out.append(_r("automated", who, PASS, "Automated Command Line, System (Background) Task"))
        if not rec.install_by_full:
            out.append(_r("mandatory", who, FAIL, "Install By Full 0: optional install"))
        elif rec.install_by_date is None:
            out.append(_r("mandatory", who, FAIL, "mandatory, but no Mandatory After time (Install By Date not set)"))
        else:
            out.append(_r("mandatory", who, PASS, f"mandatory after {date_to_text(rec.install_by_date)}"))
    return out


def backup(ep: "Endpoint", site: "SiteRef", now: datetime) -> CheckResult:
    settings = site.site.preflight
    if settings.backup_marker is None:
        return _r("backup", ep.name, UNKNOWN, f"site {site.name} names no backup marker (sites.yaml: "
                                              "preflight: {backup_marker: PATH under the SMS root})")
    where = winpath.absolute(ep.sms_root, settings.backup_marker)
    try:
        stat = ep.files.stat(settings.backup_marker)
    except TargetError as exc:
        return _r("backup", ep.name, UNKNOWN, f"could not read {where}: {exc}")
    if stat is None or stat.is_dir:
        return _r("backup", ep.name, FAIL, f"no backup marker {where}")
    written = datetime.fromtimestamp(stat.mtime_ns / 1e9, timezone.utc)
    age_h = (now - written).total_seconds() / 3600
    limit = settings.backup_max_age_hours
    when = f"{where} written {written:%Y-%m-%d %H:%M} UTC"
    if age_h > limit:
        return _r("backup", ep.name, FAIL, f"{when}, {age_h:.0f} hours ago (at most {limit} allowed)")
    if age_h < -1:  # a marker from the future: a wrong clock, not a backup
        return _r("backup", ep.name, FAIL, f"{when}, in the future: check the server's clock")
    return _r("backup", ep.name, PASS, f"{when}, {max(age_h, 0):.1f} hours ago")


def run(site: "SiteRef", conn: "SiteConnection", playbook: "LoadedPlaybook | None" = None,
        records: list[PcmRecord] | None = None, now: datetime | None = None,
        service_states: dict[str, str] | None = None) -> list[CheckResult]:
    """Every check on every server. `service_states`: the PCM service's state per server where
    a plan's earlier steps change it (a preflight step after a stop)."""
    now = now or datetime.now(timezone.utc)
    results: list[CheckResult] = []
    for ep in conn.endpoints.values():
        results.append(pcm_service(ep, (service_states or {}).get(ep.name)))
        results.append(pcm_version(ep, site, playbook))
        results.append(backup(ep, site, now))
    results.append(polling_interval(conn.site_server))
    results.extend(package(records))
    return results


def failed(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == FAIL]
