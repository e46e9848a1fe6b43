"""Reports as one self-contained HTML page (report/html.py's template), for a site and a fleet."""

from __future__ import annotations

from . import FleetDoc, SiteReport


def site(kind: str, r: SiteReport) -> str:
    from .. import html

    if kind == "verify":
        return html.verify_page(r.report, note=r.note)
    if kind == "scan":
        from ..scan_html import render

        return render(r.scan, r.chains())
    if r.section is not None:  # rollback, recover
        return html.render([r.section], command=kind, note=r.note)
    return html.apply_page(r.plan, r.result, note=r.note)


def fleet(doc: FleetDoc) -> str:
    from .. import html

    rollup = html.Rollup(doc.fleet_id, doc.command, doc.counts, doc.seconds, doc.journal, doc.stopped)
    return html.render(doc.sections, command=doc.command_line, note=doc.note, rollup=rollup)
