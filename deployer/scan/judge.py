"""Judging every hotfix of a catalogue on a site, from one reading of it.

Each manifest is verified as `deployer verify MANIFEST --site X` verifies it (the same
default_checks and verify, over SiteReader's read-once connection), and verify's file
results decide the status:

- no file to check (none of its platforms on the site), or none of them there: not applicable;
- every file passes: installed;
- some pass, some not: partial; none: missing;
- but when only rows flagged for review fail, or verify cannot judge at all (a listed time
  that does not exist in the site's zone, a file that cannot be read): cannot tell;
- a missing, partial or undecided hotfix that a hotfix installed on the site supersedes
  (directly or through a chain): superseded.
"""

from __future__ import annotations

from typing import Callable

from ..model import winpath
from ..errors import DeployerError, InputError, TargetError
from ..kb.catalog import Catalog, Hotfix
from ..model.inventory import SiteRef
from ..targets.connect import SiteConnection
from ..sms.verify import (MISSING as V_MISSING, NEWER as V_NEWER, OLDER as V_OLDER, UNCHECKED as V_UNCHECKED,
                          FileResult, default_checks, verify)
from .model import (CANNOT_TELL, FAILING, INSTALLED, MISSING, NOT_APPLICABLE, PARTIAL, STATUSES, SUPERSEDED,
                    ApplyStep, Deciding, HotfixStatus, ScanResult, SiteScan, Skipped)
from .observe import ReadOnlyViolation, SiteReader


def _deciding(f: FileResult) -> Deciding:
    listed = " ".join(x for x in (f.expected_date, f.expected_time, f.expected_size, f.expected_version or "") if x)
    found = ("not found" if f.actual_size is None else
             " ".join(x for x in (f.actual_date or "", f.actual_time or "", f"{f.actual_size:,}",
                                  f.actual_version or "") if x))
    if f.detail and f.status not in (V_MISSING, V_OLDER, V_NEWER):  # a date speaks for itself; a size does not
        found += f" ({f.detail})"
    flagged = any("flagged for review" in x for x in f.loose)
    return Deciding(f.server, f.path, listed, found, f.status, f.passed, flagged)


def classify(files: list[FileResult]) -> tuple[str, str, list[FileResult]]:
    """The status verify's results give, why, and the files that decide it."""
    if not files:
        return NOT_APPLICABLE, "the site has none of its platforms", []
    if all(f.status == V_MISSING for f in files):
        return NOT_APPLICABLE, "none of its files is on the site", files
    unchecked = [f for f in files if f.status == V_UNCHECKED]
    if unchecked:  # as verify's INCOMPLETE: a file that could not be checked decides nothing either way
        return CANNOT_TELL, "a file could not be checked: " + "; ".join(
            sorted({f"{f.server} {f.name}: {f.detail}" for f in unchecked})), unchecked
    passed = [f for f in files if f.passed]
    failed = [f for f in files if not f.passed]
    if not failed:
        return INSTALLED, "every file at or later than the manifest", files
    sure = [f for f in failed if not any("flagged for review" in x for x in f.loose)]
    if not sure:  # only rows the importer could not read exactly fail: the row may be what is wrong
        return CANNOT_TELL, "only rows flagged for review do not match; check them against the article", failed
    if passed:
        why = f"{len(passed)} of {len(files)} files at its level; not: " + ", ".join(sorted({f.name for f in failed}))
        if all(f.origin == "reset" for f in sure):
            # the site server has the hotfix; the services of the helper servers still run the old copies
            why += (" (only Helper.srv copies: a site reset copies them, `deployer sendcode --site SITE "
                    "SMS_SITE_CONFIG_MANAGER 194`)")
        return PARTIAL, why, failed
    return MISSING, "no file at its level", failed


def judge_site(cat: Catalog, site: SiteRef, conn: SiteConnection,
               warn: Callable[[str], None] | None = None) -> SiteScan:
    out = SiteScan(site.name, site.code)
    reader = SiteReader(conn)
    checks: dict[str, list] = {}
    for kb, h in cat.hotfixes.items():
        checks[kb] = default_checks(h.loaded, site)
    reader.prefetch((c.server, c.path) for cs in checks.values() for c in cs)
    _skip_needless_reads(cat, site, reader, checks)
    raw = {kb: _judge_one(h, site, reader, checks[kb]) for kb, h in cat.hotfixes.items()}
    _supersede(cat, raw)
    when = {kb: h.released for kb, h in cat.hotfixes.items()}
    out.hotfixes = sorted(raw.values(), key=lambda s: (STATUSES.index(s.status), when[s.kb], s.kb))
    for p in cat.problems:  # an unreadable manifest: one status all the same
        out.hotfixes.append(HotfixStatus(p.path.name, None, CANNOT_TELL, f"the manifest cannot be read: {p.message}",
                                         "", manifest=str(p.path)))
    out.hotfixes.sort(key=lambda s: STATUSES.index(s.status))  # stable: oldest first within a status
    _order(cat, out, raw, when)
    cost = reader.cost
    out.cost = {"stats": cost.stats, "listings": cost.listings, "reads": cost.reads}
    return out


def _skip_needless_reads(cat: Catalog, site: SiteRef, reader: SiteReader, checks: dict[str, list]) -> None:
    """A file written before the listed date is `older` whatever its version resource says (verify
    judges a lower version older, and an equal or higher one by the date): its content is read
    only when some hotfix naming it lists a version and finds it at or after the listed date."""
    from zoneinfo import ZoneInfo

    from ..sms.verify import judge

    needed: dict[tuple[str, str], bool] = {}
    for kb, h in cat.hotfixes.items():
        m = h.loaded.manifest
        tz = ZoneInfo(m.timezone or site.site.timezone)
        for c in checks[kb]:
            entry = m.files[c.entry_index]
            key = (c.server.casefold(), winpath.key(c.path))
            if not (entry.version or entry.sha256) or needed.get(key):
                needed.setdefault(key, False)
                continue
            try:
                stat = reader.conn.endpoint(c.server).files.stat(c.path)
                needed[key] = stat is not None and not stat.is_dir and judge(entry, stat, tz).status != V_OLDER
            except (TargetError, ValueError):  # cannot tell here: leave it to verify
                needed[key] = True
    for (server, path), need in needed.items():
        if not need:
            reader.files[reader.conn.endpoint(server).name].skip_content(path)


def _judge_one(h: Hotfix, site: SiteRef, reader: SiteReader, checks: list) -> HotfixStatus:
    base = dict(kb=h.kb, title=h.title, released=h.released_text, manifest=str(h.path),
                playbook=str(h.playbook) if h.playbook else None)
    try:
        report = verify(h.loaded, site, reader.conn, checks)
    except ReadOnlyViolation:
        raise
    except InputError as exc:  # a listed time the site's clock never showed
        st = HotfixStatus(status=CANNOT_TELL, why=f"the manifest cannot be judged here: {exc}", **base)
    except TargetError as exc:
        st = HotfixStatus(status=CANNOT_TELL, why=f"a file could not be judged: {exc}", **base)
    else:
        status, why, deciding = classify(report.files)
        st = HotfixStatus(status=status, why=why, files=[_deciding(f) for f in deciding], **base)
    return st


def _supersede(cat: Catalog, raw: dict[str, HotfixStatus]) -> None:
    installed = {kb for kb, s in raw.items() if s.status == INSTALLED}
    for kb, s in raw.items():
        if s.status not in (*FAILING, CANNOT_TELL):
            continue
        by = [k for k in cat.superseders(kb) if k in installed]
        if by:
            s.status, s.superseded_by = SUPERSEDED, by
            s.why = f"{', '.join(by)} installed, which replaces it ({s.why} by its own files)"


def _order(cat: Catalog, out: SiteScan, raw: dict[str, HotfixStatus], when: dict) -> None:
    """Oldest first; a hotfix that a later one in the list replaces is skipped."""
    todo = sorted((s for s in raw.values() if s.status in FAILING), key=lambda s: (when[s.kb], s.kb))
    kbs = {s.kb for s in todo}
    for s in todo:
        later = [k for k in cat.superseders(s.kb) if k in kbs]
        if later:
            out.skipped.append(Skipped(s.kb, f"superseded by {', '.join(later)}, which is applied later in this list"))
            continue
        out.apply.append(ApplyStep(s.kb, s.title, s.status, s.released, s.playbook))


def scan(cat: Catalog, sites: list[SiteRef], *, warn: Callable[[str, str], None] | None = None,
         forks: int = 1) -> ScanResult:
    """Every site of `sites` against the catalogue, `forks` at a time (each its own connection; the
    catalogue is only read); a site that cannot be reached is reported, not fatal."""
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(cat.hotfixes.values(), key=lambda h: (h.released, h.kb))
    result = ScanResult(str(cat.root), [h.kb for h in order] + [p.path.name for p in cat.problems],
                        problems=[{"manifest": str(p.path), "error": p.message} for p in cat.problems],
                        flagged={kb: h.flagged for kb, h in cat.hotfixes.items() if h.flagged},
                        edges=[{"new": e.new, "old": e.old, "how": e.how} for e in cat.edges])
    if forks > 1 and len(sites) > 1:
        with ThreadPoolExecutor(max_workers=min(forks, len(sites))) as pool:
            result.sites = list(pool.map(lambda s: _scan_one(cat, s, warn), sites))  # in the order named
    else:
        result.sites = [_scan_one(cat, s, warn) for s in sites]
    return result


def _scan_one(cat: Catalog, site: SiteRef, warn: Callable[[str, str], None] | None) -> SiteScan:
    from ..fleet.workflow import session, unfinished_message

    try:
        with session(site) as conn:
            msg = unfinished_message(conn)
            one = judge_site(cat, site, conn)
            if msg:
                one.warnings.append(msg)
                if warn:
                    warn(site.name, msg)
            return one
    except (ReadOnlyViolation, InputError):
        raise
    except DeployerError as exc:
        return SiteScan(site.name, site.code, error=str(exc))
