"""Manifest vs observed file attributes: the verification report.

Statuses, per file and per server:
  ok        the listed date and time (to the minute, in the site's local time), the size
            (exact bytes, or kilobytes rounded up as Explorer shows them), and the version
            and hash where the manifest gives them
  newer     written later than listed: passes under `or-later`, fails under `exact`
  older     written earlier than listed (or a lower version)
  missing   not there
  mismatch  the listed date and time, but another size, version or content
  unchecked not verified: its machine could not be reached or the file could not be read.
            Never a pass: a report with one is INCOMPLETE (exit 3), and says which and why

Where the manifest leaves something open (no time, a size range or none, no platform, a
version with a build note, a row flagged for review) the file is checked as far as the
manifest allows and its result says so (`loose`), so that a pass is never mistaken for a
full check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from ..model import winpath
from ..model.manifest import UNKNOWN, FileEntry, LoadedManifest, version_parts, version_tuple
from ..model.inventory import SiteRef
from . import attrs, fileversion, layout
from . import services as sms
from ..errors import NetworkError, TargetError
from ..targets.base import CaseResolver, FileStat, sha256_seen
from ..targets.connect import SiteConnection

OK, NEWER, OLDER, MISSING, MISMATCH = "ok", "newer", "older", "missing", "mismatch"
STATUSES = (OK, NEWER, OLDER, MISSING, MISMATCH)
UNCHECKED = "unchecked"  # not a judgement of the file: counted apart from STATUSES
PASSED, FAILED, INCOMPLETE = "PASSED", "FAILED", "INCOMPLETE"


@dataclass(frozen=True)
class Judgement:
    status: str
    detail: str = ""

    def passes(self, rule: str) -> bool:
        return self.status == OK or (self.status == NEWER and rule == "or-later")


def local_minute(mtime_ns: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(mtime_ns // 1_000_000_000, tz).replace(second=0, microsecond=0)


def judge(entry: FileEntry, stat: FileStat | None, tz: ZoneInfo, *, sha256: str | None = None,
          version: str | None = None) -> Judgement:
    if stat is None:
        return Judgement(MISSING, "not found")
    if stat.is_dir:
        return Judgement(MISMATCH, "is a folder, not a file")
    have = local_minute(stat.mtime_ns, tz)
    want = entry.instant(tz)
    if entry.time is None:  # the article lists a day only: compare days
        have, want = have.date(), want.date()
    if entry.version and version and _lower(version, entry.version):
        return Judgement(OLDER, f"version {version} is lower than {entry.version}")
    if have > want:
        return Judgement(NEWER, f"written {_stamp(have)}, later than listed")
    if have < want:
        return Judgement(OLDER, f"written {_stamp(have)}, earlier than listed")
    problems = []
    if entry.size is not None and not entry.size.matches(stat.size):
        problems.append(f"size {stat.size:,} bytes is not {entry.size}")
    if entry.version and version is not None and not _same_version(version, entry.version):
        problems.append(f"version {version} is not {entry.version}")
    if entry.version and version is None:
        problems.append(f"no version resource (expected {entry.version})")
    if entry.sha256 and sha256 and sha256 != entry.sha256:
        problems.append("content differs from the listed sha256")
    if problems:
        return Judgement(MISMATCH, "; ".join(problems))
    return Judgement(OK)


def _stamp(dt: datetime | date) -> str:
    if not isinstance(dt, datetime):
        return attrs.format_date(dt)
    return f"{attrs.format_date(dt.date())} {attrs.format_time(dt.time())}"


def _lower(have: str, listed: str) -> bool:
    dotted, loose = version_parts(listed)
    want = version_tuple(dotted)
    got = version_tuple(have)
    if loose:  # "1.2 (build 786)": only the listed parts are known
        n = len(dotted.split("."))
        return got[:n] < want[:n]
    return got < want


def _same_version(have: str, listed: str) -> bool:
    dotted, loose = version_parts(listed)
    if not loose:
        return have == listed
    n = len(dotted.split("."))
    return version_tuple(have)[:n] == version_tuple(dotted)[:n]


# --- where to look -------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One file to verify: which manifest entry, on which server, at which path."""

    server: str
    path: str  # RelPath
    entry_index: int
    origin: str = "playbook"  # playbook (a replace step), reset (a Helper.srv copy), manifest (default folder)
    note: str = ""  # why the place itself is a guess (no platform listed)
    # a Logon.srv copy: the site server's Client.src file it must equal by size and write time,
    # Maintenance Manager's own rule (and the plan's): a copy that differs is replaced on its next
    # cycle, so verify does not pass it even when its time is "later" than the manifest's
    source_server: str = ""
    source: str = ""


def default_checks(manifest: LoadedManifest, site: SiteRef) -> list[Check]:
    """Where an article's files belong when only the manifest is given: the site server's
    Site.srv or Client.src folder, and for service files every managed server's Helper.srv.
    A file listed without a platform is looked for in each platform folder the site has."""
    s = site.site
    plats = {p.key for p in s.platform_list}
    checks = []
    for i, f in enumerate(manifest.manifest.files):
        if f.platform is UNKNOWN:
            for p in s.platform_list:
                checks.append(Check(s.site_server_name, winpath.join(layout.default_folder(f.name, p), f.name), i,
                                    "manifest", f"no platform listed: looked in the {p.folder} folder"))
            continue
        if f.platform.key not in plats:
            continue
        checks.append(Check(s.site_server_name, winpath.join(layout.default_folder(f.name, f.platform), f.name), i,
                            "manifest"))
        if f.name.casefold() in {h.casefold() for h in sms.HELPER_FILES}:
            for name, server in s.servers.items():
                if server.platform == f.platform:
                    checks.append(Check(name, winpath.join(layout.helper_bin(f.platform), f.name), i, "reset"))
    return checks


# --- the report ----------------------------------------------------------------------------


@dataclass
class FileResult:
    server: str
    path: str  # as the operator types it: C:\SMS\Site.srv\X86.BIN\Base.dll
    name: str
    platform: str  # as the article spells it
    expected_date: str
    expected_time: str
    expected_size: str
    expected_version: str | None
    expected_sha256: str | None
    status: str
    detail: str
    passed: bool
    actual_date: str | None = None
    actual_time: str | None = None
    actual_size: int | None = None
    actual_mtime_utc: str | None = None
    actual_version: str | None = None
    actual_sha256: str | None = None
    origin: str = "playbook"
    loose: list[str] = field(default_factory=list)  # what could only be checked loosely, in words
    line: int | None = None  # the article line of the row


@dataclass
class ArticleOnSite:
    """Which article, on which site, by which rule, in which time zone: how a verification report
    and a plan (plan/model.py) both begin."""

    kb: str
    title: str | None
    site: str
    site_code: str
    rule: str
    timezone: str


@dataclass
class Report(ArticleOnSite):
    files: list[FileResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.files if f.status == s) for s in (*STATUSES, UNCHECKED)}

    @property
    def ok(self) -> bool:
        return all(f.passed for f in self.files)

    @property
    def unchecked(self) -> list[FileResult]:
        """Files that could not be checked (machine unreachable, file unreadable): never a pass."""
        return [f for f in self.files if f.status == UNCHECKED]

    @property
    def mismatched(self) -> list[FileResult]:
        """Files checked and found not to match."""
        return [f for f in self.files if not f.passed and f.status != UNCHECKED]

    @property
    def verdict(self) -> str:
        """PASSED (every file checked and passing), FAILED (a file does not match), INCOMPLETE (none
        failed, but some could not be checked)."""
        if self.mismatched:
            return FAILED
        return INCOMPLETE if self.unchecked else PASSED

    def not_verified(self) -> list[str]:
        """One line per machine that could not be checked: `DEMOWKS1 unreachable: <why> (1 file)`."""
        by_server: dict[str, list[FileResult]] = {}
        for f in self.unchecked:
            by_server.setdefault(f.server, []).append(f)
        return [f"{server}: {files[0].detail} ({len(files)} file{'s' if len(files) != 1 else ''}: "
                f"{', '.join(f.path for f in files)})" for server, files in by_server.items()]

    @property
    def loose(self) -> list[FileResult]:
        return [f for f in self.files if f.loose]

    def to_json(self) -> dict:
        return {
            "kb": self.kb, "title": self.title, "site": self.site, "site_code": self.site_code, "rule": self.rule,
            "timezone": self.timezone, "passed": self.ok, "outcome": self.verdict,
            "summary": {**self.counts, "total": len(self.files), "loose": len(self.loose)},
            "not_verified": [{"server": f.server, "path": f.path, "reason": f.detail} for f in self.unchecked],
            "files": [asdict(f) for f in self.files],
        }


def verify(manifest: LoadedManifest, site: SiteRef, conn: SiteConnection, checks: list[Check]) -> Report:
    m = manifest.manifest
    tzname = m.timezone or site.site.timezone
    tz = ZoneInfo(tzname)
    manifest.check_times(tz)
    report = Report(m.kb, m.title, site.name, site.code, m.rule, tzname)
    spell = {name: CaseResolver(ep.files) for name, ep in conn.every_endpoint().items()}
    # each reachable server's paths (and the folders above them, for their spelling) in one stat_many
    by_server: dict[str, list[str]] = {}
    for c in checks:
        try:
            by_server.setdefault(conn.endpoint(c.server).name, []).append(c.path)
            if c.source:  # a Logon.srv copy is compared with its Client.src source: asked in the same batch
                by_server.setdefault(conn.endpoint(c.source_server).name, []).append(c.source)
        except KeyError:  # a PCM service host that was off or unreachable when connecting
            continue
    gone: dict[str, str] = {}  # server -> why it cannot be read any more (its connection failed)
    for name, paths in by_server.items():
        try:
            spell[name].prefetch(paths)
        except NetworkError as exc:  # gone: its files are not checked, and not asked again one by one
            gone[name.casefold()] = f"unreachable: {exc}"
        except TargetError:  # then each file is stat'ed alone below, and says what is wrong with it
            pass
    for c in checks:
        entry = m.files[c.entry_index]
        try:
            ep = conn.endpoint(c.server)
        except KeyError:  # a PCM service host that was off or unreachable when connecting
            ep = None
        why = gone.get(c.server.casefold()) or (None if ep is not None else _unreachable(conn, c.server))
        stat = sha = ver = None
        path = c.path
        if why is None:
            assert ep is not None
            try:
                stat = spell[ep.name].stat(c.path)
                if stat is not None and not stat.is_dir:
                    if entry.sha256:  # read only when no recorded hash holds for this stat (run/known.py)
                        sha = sha256_seen(ep.files, c.path, stat)
                    if entry.version:
                        ver = fileversion.find_version(ep.files.read_chunks(c.path))
                path = spell[ep.name](c.path)
            except TargetError as exc:  # unreadable, or the server went away: not checked, never passed
                why = f"could not be read: {exc}"
                if isinstance(exc, NetworkError):
                    gone[c.server.casefold()] = f"unreachable: {exc}"
        name, root = (ep.name, ep.sms_root) if ep is not None else _where(site, c.server)
        j = Judgement(UNCHECKED, why) if why is not None else judge(entry, stat, tz, sha256=sha, version=ver)
        if why is None and c.source and stat is not None and not stat.is_dir and j.status in (OK, NEWER):
            j = _against_source(conn, c, stat, tz, spell) or j
        res = FileResult(
            server=name, path=winpath.absolute(root, path), name=entry.name,
            platform=entry.platform.article_name, expected_date=attrs.format_date(entry.date),
            expected_time=attrs.format_time(entry.time) if entry.time else "-",
            expected_size="-" if entry.size is None else str(entry.size),
            expected_version=entry.version, expected_sha256=entry.sha256, status=j.status, detail=j.detail,
            passed=why is None and j.passes(m.rule), origin=c.origin, loose=[*filter(None, [c.note]), *entry.loose()],
            line=entry.line,
        )
        if stat is not None and not stat.is_dir and why is None:
            have = datetime.fromtimestamp(stat.mtime_ns // 1_000_000_000, tz)
            res.actual_date = attrs.format_date(have.date())
            res.actual_time = attrs.format_time(have.time())
            res.actual_size = stat.size
            res.actual_mtime_utc = datetime.fromtimestamp(stat.mtime_ns / 1e9, ZoneInfo("UTC")).isoformat()
            res.actual_version = ver
            res.actual_sha256 = sha
        report.files.append(res)
    return report


def _against_source(conn: SiteConnection, c: Check, stat: FileStat, tz: ZoneInfo,
                    spell: dict[str, CaseResolver] | None = None) -> Judgement | None:
    """A Logon.srv copy that is not what Client.src holds: MISMATCH, naming what `plan` would do about it."""
    try:
        ep = conn.endpoint(c.source_server)
        src = spell[ep.name].stat(c.source) if spell and ep.name in spell else ep.files.stat(c.source)
    except (KeyError, TargetError):
        return None  # the source cannot be read: the manifest's judgement stands
    if src is None or src.is_dir or (src.size, src.mtime_ns) == (stat.size, stat.mtime_ns):
        return None
    return Judgement(MISMATCH, f"differs from {ep.where(c.source)} ({src.size:,} bytes, "
                     f"{_stamp(local_minute(src.mtime_ns, tz))}; here {stat.size:,} bytes, "
                     f"{_stamp(local_minute(stat.mtime_ns, tz))}): Maintenance Manager replaces it on its next "
                     "cycle, and `deployer plan` schedules that replication")


def _unreachable(conn: SiteConnection, server: str) -> str:
    for name, why in conn.unreachable.items():
        if name.casefold() == server.casefold():
            return "unreachable: " + (why[len(name) + 2:] if why.startswith(f"{name}: ") else why)
    return "unreachable: not connected"


def _where(site: SiteRef, server: str) -> tuple[str, str]:
    """The inventory's name and root of a machine deployer holds no connection to."""
    s = site.site
    for name, srv in s.servers.items():
        if name.casefold() == server.casefold():
            return name, srv.sms_root
    for name, host in s.pcm_hosts.items():
        if name.casefold() == server.casefold():
            return name, host.install_dir
    return server, "C:\\"
