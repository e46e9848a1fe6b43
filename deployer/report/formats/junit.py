"""Reports as JUnit XML (report/junit.py's one document writer), for a site and a fleet."""

from __future__ import annotations

from . import FleetDoc, SiteReport


def site(kind: str, r: SiteReport) -> str:
    from .. import html
    from ..junit import document, to_junit

    if kind == "verify":
        return to_junit(r.report, note=r.note)
    if kind == "scan":
        from ..scan_junit import to_junit as scan_junit

        return scan_junit(r.scan)
    if r.section is not None:  # rollback, recover
        return document([r.section], name=f"{r.section.kb or 'deployer ' + kind} on {r.section.site}",
                        command=kind, note=r.note)
    return document([html.apply_section(r.plan, r.result)],
                    name=f"{r.plan.kb} on {r.plan.site}", command=kind, note=r.note)


def fleet(doc: FleetDoc) -> str:
    from ..junit import document

    return document(doc.sections, name=doc.name, command=doc.command, note=doc.note, rollup=doc.rollup,
                    seconds=doc.seconds)
