"""Reports as text: what the terminal shows, under the --note line, for a site and a fleet."""

from __future__ import annotations

import io
from typing import Any, Callable

from ..out import Out
from . import FleetDoc, SiteReport


def _text(draw: Callable[[Out], None]) -> str:
    """What `draw` draws, as plain text (no colours) for a file or a pipe."""
    buf = io.StringIO()
    draw(Out(buf, False))
    return buf.getvalue()


def site_lines(s: Any, out: Out) -> None:
    """One site's section: its status, failure, actions, rollback record and file tables; the
    same alone (`apply -o FILE`) and in a fleet's report."""
    from ..text import render_report

    out.line(f"=== Site {s.site}{f' ({s.site_code})' if s.site_code else ''}: {s.status}", "head")
    if s.run:  # the run a change ticket names (HTML and JUnit say it too)
        out.line(f"Run {s.run}" + (f", {s.seconds:.1f} s" if s.seconds is not None else ""))
    if s.error:
        out.line(("Unreachable (nothing was changed there): " if s.unreachable else "Failure: ") + s.error,
                 "bad" if not s.good else None)
    if s.actions:
        out.table(["#", "Action", "Outcome"], [[str(a.number or ""), a.what, a.outcome] for a in s.actions], indent=2)
    if s.rollback:
        out.line(f"Rollback ({'restored' if s.rollback.status == 'rolled_back' else 'NOT fully restored'}): "
                 f"{s.rollback.reason}", "warn")
        for a in s.rollback.undone:
            out.line(f"  undo {a.number}. {a.what}: {'undone' if a.outcome == 'done' else a.outcome}")
        for x in s.rollback.remaining:
            out.line(f"  left to fix by hand: {x}", "bad")
    if s.report is not None:
        render_report(s.report, out)


def section_lines(s: Any, out: Out, *, note: str | None, command: str) -> None:
    """A one-site report's section under the lines a fleet's text report has above it."""
    out.line(f"{s.kb or 'deployer'}{f': {s.title}' if s.title else ''}", "head")
    out.line(f"Command: deployer {command}")
    if note:
        out.line(f"Note: {note}")
    out.line()
    site_lines(s, out)


def render_runs(site: str, found: list, out: Out) -> None:
    """A site's runs with their backups' space, alone or as one site of a fleet."""
    from ...run.prune import describe
    from ..text import render_runs as table

    table(site, [r for r, _ in found], out, {r.run: describe(s) for r, s in found})


def draw(kind: str, r: SiteReport, out: Out) -> None:
    """One site's report of `kind` onto `out`: the terminal (in colour) or a file's buffer."""
    from .. import html
    from ..text import render_plan, render_report

    if kind == "runs":
        render_runs(r.site, r.runs, out)
        return
    if kind == "scan":
        from ..scan_text import render

        render(r.scan, out)
        return
    if kind in ("plan", "verify"):
        if r.note:
            out.line(f"Note: {r.note}")
        (render_plan(r.plan, out) if kind == "plan" else render_report(r.report, out))
        return
    s = r.section or html.apply_section(r.plan, r.result)
    section_lines(s, out, note=r.note, command=kind)


def site(kind: str, r: SiteReport) -> str:
    return _text(lambda out: draw(kind, r, out))


def fleet(doc: FleetDoc) -> str:
    """The roll-up, a row per site, then each site as `deployer verify`/`apply` show it alone."""
    def draw(out: Out) -> None:
        for text, style in doc.heading:
            out.line(text, style)
        out.line()
        out.table(["Site", "Result", "Run", "Actions", "Seconds", "Detail"], doc.table, indent=0)
        for s in doc.sections:
            out.line()
            site_lines(s, out)
        for text, style in doc.summary:
            out.line(text, style)
    return _text(draw)
