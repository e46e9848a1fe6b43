"""Reports as JSON, for scripts: a site's document, and a fleet's (the roll-up with every site's data)."""

from __future__ import annotations

import json

from . import FleetDoc, SiteReport


def dumps(data: object) -> str:
    return json.dumps(data, indent=1, sort_keys=True, default=str) + "\n"


def site(kind: str, r: SiteReport) -> str:
    noted = {"note": r.note} if r.note else {}
    if kind == "plan":
        return dumps({**r.plan.to_json(), **noted})
    if kind == "verify":
        # kept as verify always wrote it (no default=str: a report is plain data)
        return json.dumps({**r.report.to_json(), "traffic": r.traffic, **noted}, indent=1, sort_keys=True) + "\n"
    if kind == "runs":
        return dumps(r.data)
    if kind == "scan":  # as the scan always wrote it: in the scan's own key order
        return json.dumps(r.scan.to_json(), indent=1) + "\n"
    if r.section is not None:  # rollback, recover: the site's entry of a fleet's document
        return dumps({**r.data, **({"section": r.section.to_json()} if hasattr(r.section, "to_json") else {}),
                      **noted})
    result = r.result
    if result is None:
        return dumps({"run": None, "status": "declined", "plan": r.plan.to_json(), **noted})
    return dumps({"run": result.run, "status": str(result.status), "error": result.error, "journal": result.journal,
                  "remaining": result.remaining, "warnings": result.warnings, "seconds": round(result.seconds, 3),
                  "plan": r.plan.to_json(), "report": result.report.to_json() if result.report else None,
                  "traffic": r.traffic, **noted})


def fleet(doc: FleetDoc) -> str:
    return dumps(doc.data)
