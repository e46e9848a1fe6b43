"""A scan as text: per site the hotfixes by status (partial first) with the files that decide
each, and the order to apply what is missing; for several sites a hotfix x site matrix first."""

from __future__ import annotations

from ..scan.model import FAILING, NOT_APPLICABLE, SHORT, STATUSES, ScanResult, SiteScan
from .escape import visible_line
from .out import Out

FILES_SHOWN = 6  # per hotfix in text; JSON and HTML have them all


def safe(text: str | None) -> str:
    """Text from manifests and sites on one line, its control characters shown (report/escape.py's
    one escape: `\\x1b`, `\\u202e`, `\\n`), never obeyed by a terminal."""
    return visible_line(text or "")


def _apply_command(step, site: str) -> str:
    if step.playbook:
        return f"deployer apply {safe(step.playbook)} --site {safe(site)}"
    return "no playbook in the catalogue (`deployer kb import ARTICLE --playbook` drafts one)"


def render_site(s: SiteScan, out: Out, *, matrix: bool = False) -> None:
    out.line(f"Site {safe(s.site)} ({safe(s.site_code)}): " + (
        f"not scanned: {safe(s.error)}" if s.error else
        ", ".join(f"{n} {st}" for st, n in s.counts.items() if n) or "no hotfix in the catalogue"),
        "bad" if s.error or s.failing else "good")
    for w in s.warnings:
        out.line(f"  Warning: {safe(w)}", "warn")
    if s.error:
        return
    for st in STATUSES:
        group = [h for h in s.hotfixes if h.status == st]
        if not group:
            continue
        if st == NOT_APPLICABLE:
            out.line(f"  not applicable ({len(group)}): " + ", ".join(safe(h.kb) for h in group))
            continue
        if matrix and st not in FAILING:
            continue
        for h in group:
            out.line(f"  {st.upper():<14} {safe(h.kb):<9} {h.released:<9} {safe(h.title)}",
                     "bad" if st in FAILING else ("warn" if st not in ("installed", "superseded") else None))
            out.line(f"      {safe(h.why)}")
            for f in h.files[:FILES_SHOWN]:
                mark = "ok " if f.passed else "NOT"
                out.line(f"      {mark} {safe(f.server)} {safe(f.path)}: listed {safe(f.listed)}; found {safe(f.found)}"
                         + ("  [row flagged for review]" if f.flagged else ""))
            if len(h.files) > FILES_SHOWN:
                out.line(f"      ... and {len(h.files) - FILES_SHOWN} more files (-f json or -f html lists them)")
    if s.apply:
        out.line("  To apply, oldest first:")
        for i, a in enumerate(s.apply, 1):
            out.line(f"    {i}. {safe(a.kb)} ({a.released}, {a.status}): {_apply_command(a, s.site)}")
    for k in s.skipped:
        out.line(f"    skip {safe(k.kb)}: {safe(k.because)}")


def render(result: ScanResult, out: Out) -> None:
    n = len(result.kbs)
    out.line(f"Scan against {n} hotfixes of {safe(result.catalog)}"
             + (f" ({len(result.problems)} unreadable: cannot tell)" if result.problems else "") + ".")
    if len(result.sites) > 1:
        render_matrix(result, out)
    for s in result.sites:
        out.line()
        render_site(s, out, matrix=len(result.sites) > 1)
    failing = [s.site for s in result.sites if s.failing]
    unread = [s.site for s in result.sites if s.error]
    scanned = len(result.sites) - len(unread)
    out.line()
    out.line(f"Missing or partial on {len(failing)} of {len(result.sites)} sites: {', '.join(map(safe, failing))}"
             if failing else f"Nothing missing or partial on {scanned} site(s) scanned.",
             "bad" if failing else "good")
    if unread:
        out.line(f"Not scanned (could not be reached): {', '.join(map(safe, unread))}", "bad")


def render_matrix(result: ScanResult, out: Out) -> None:
    """Hotfixes down, sites across; hotfixes not applicable anywhere are counted, not drawn."""
    sites = result.sites
    shown = [kb for kb in result.kbs if any((s.status_of(kb) or NOT_APPLICABLE) != NOT_APPLICABLE for s in sites)]
    # the worst status of a row first (partial, then missing, ...), oldest first within it
    shown.sort(key=lambda kb: min(STATUSES.index(s.status_of(kb) or NOT_APPLICABLE) for s in sites))
    rows = [[safe(kb), *[SHORT.get(s.status_of(kb) or "", "not scanned") if not s.error else "not scanned"
                         for s in sites]] for kb in shown]
    styles = ["bad" if any(s.status_of(kb) in FAILING for s in sites) else None for kb in shown]
    out.table(["hotfix", *[safe(s.site) for s in sites]], rows, styles)
    rest = len(result.kbs) - len(shown)
    if rest:
        out.line(f"  ({rest} more hotfixes not applicable on any site.)")
    out.line("  ok installed, superseded, PARTIAL, MISSING, ? cannot tell, - not applicable")
