"""A fleet's report: text (a table and the totals), JSON, and JUnit XML with one test suite
per site (one case per verified file where the site was verified, else one case for the
site's run), so a CI dashboard shows which sites of a rollout failed and why."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from .fleet import FleetResult, SiteState
from .prune import human
from .report.escape import visible
from .report.out import Out
from .verify import Report

STYLE = {SiteState.DONE: "ok", SiteState.NOTHING: "ok", SiteState.FAILED: "bad", SiteState.NOT_RESTORED: "bad",
         SiteState.MISMATCH: "bad", SiteState.NOT_STARTED: "warn"}
LABEL = {SiteState.DONE: "done", SiteState.NOTHING: "nothing to do", SiteState.FAILED: "failed, restored",
         SiteState.NOT_RESTORED: "NOT RESTORED", SiteState.MISMATCH: "mismatch", SiteState.NOT_STARTED: "not started"}


DONE_WORD = {"plan": "planned", "verify": "passed", "rollback": "rolled back", "recover": "recovered",
             "runs": "listed"}


def totals(result: FleetResult) -> str:
    c = result.counts()
    parts = [f"{c['done']} {DONE_WORD.get(result.command, 'done')}", f"{c['nothing']} nothing to do"]
    for key, words in (("mismatch", "mismatched"), ("failed", "failed and restored"),
                       ("not_restored", "NOT restored"), ("not_started", "not started")):
        if c[key]:
            parts.append(f"{c[key]} {words}")
    moved = f" {human(result.bytes)} uploaded." if result.bytes else ""
    return (f"{len(result.outcomes)} sites in {result.seconds:.1f} s: " + ", ".join(parts) + "." + moved)


def names(result: FleetResult, *states: SiteState) -> str:
    return ", ".join(o.site for o in result.by_state(*states))


def render_summary(result: FleetResult, out: Out, *, resume_hint: bool) -> None:
    """The closing lines of a fleet command: totals, the sites that need attention, the journal."""
    out.line()
    bad = result.by_state(SiteState.FAILED, SiteState.NOT_RESTORED, SiteState.MISMATCH)
    out.line(f"Fleet{' ' + result.fleet_id if result.fleet_id else ''}: {totals(result)}",
             "bad" if bad else ("warn" if result.by_state(SiteState.NOT_STARTED) else "good"))
    for state, what in ((SiteState.FAILED, "Failed and restored"), (SiteState.MISMATCH, "Files do not match"),
                        (SiteState.NOT_RESTORED, "NOT restored (run `deployer recover --site NAME`)")):
        if result.by_state(state):
            out.line(f"  {what}: {names(result, state)}", "bad")
    if result.journal:
        out.line(f"  Fleet journal: {result.journal}", "dim")
    if resume_hint and result.fleet_id and any(not o.state.finished_well for o in result.outcomes):
        out.line(f"  Continue with: deployer apply --resume {result.fleet_id}", "dim")


def to_text(result: FleetResult) -> str:
    import io

    buf = io.StringIO()
    out = Out(buf, False)
    out.table(["Site", "Result", "Run", "Actions", "Seconds", "Detail"],
              [[o.site, LABEL.get(o.state, str(o.state)), o.run or "-", str(o.actions), f"{o.seconds:.1f}", o.message]
               for o in result.outcomes], indent=0)
    render_summary(result, out, resume_hint=result.command == "apply")
    return buf.getvalue()


def to_json(result: FleetResult) -> str:
    return json.dumps(result.to_json(), indent=1, sort_keys=True, default=str) + "\n"


def to_junit(result: FleetResult) -> str:
    failures = sum(1 for o in result.outcomes if not o.state.finished_well and o.state != SiteState.NOT_STARTED)
    suites = ET.Element("testsuites", name=f"deployer {result.command}" + (f" {result.fleet_id}" if result.fleet_id
                                                                            else ""),
                        tests=str(len(result.outcomes)), failures=str(failures), time=f"{result.seconds:.3f}")
    for o in result.outcomes:
        report = o.detail if isinstance(o.detail, Report) else getattr(o.detail, "report", None)
        suite = ET.SubElement(suites, "testsuite", name=o.site, time=f"{o.seconds:.3f}")
        if isinstance(report, Report) and o.state in (SiteState.DONE, SiteState.MISMATCH):
            for f in report.files:
                case = ET.SubElement(suite, "testcase", classname=f"{o.site}.{f.server}", name=f.path)
                if f.status == "unchecked":  # not verified: an error of the check, never a pass
                    ET.SubElement(case, "error", message=f"not verified: {f.detail}", type=f.status)
                elif not f.passed:
                    ET.SubElement(case, "failure", message=f"{f.status}: {f.detail}".rstrip(": "), type=f.status)
            n, bad = len(report.files), len(report.mismatched)
            suite.set("errors", str(len(report.unchecked)))
        else:
            case = ET.SubElement(suite, "testcase", classname=o.site, name=result.command)
            ET.SubElement(case, "system-out").text = o.message
            bad = 0
            if o.state == SiteState.NOT_STARTED:
                ET.SubElement(case, "skipped", message=o.message)
            elif not o.state.finished_well:
                ET.SubElement(case, "failure", message=o.message, type=str(o.state))
                bad = 1
            n = 1
        suite.set("tests", str(n))
        suite.set("failures", str(bad))
        suite.set("errors", suite.get("errors", "0"))
        suite.set("skipped", "1" if o.state == SiteState.NOT_STARTED else "0")
    ET.indent(suites)
    return visible('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n")


def to_html(result: FleetResult) -> str:
    """One page for the change ticket: a row per site linking to its section, where each site's
    verification tables (the article's layout) stand."""
    from .report import html
    from .verify import Report

    sections = []
    for o in result.outcomes:
        detail = o.detail
        report = detail if isinstance(detail, Report) else getattr(detail, "report", None)
        if isinstance(detail, Report):
            sections.append(html.verify_section(detail))
            continue
        status = {SiteState.DONE: "PASSED", SiteState.NOTHING: "NOTHING TO DO", SiteState.FAILED: "ROLLED BACK",
                  SiteState.NOT_RESTORED: "NOT RESTORED", SiteState.MISMATCH: "FAILED"}.get(o.state, str(o.state).upper())
        if o.state == SiteState.DONE and report is not None:
            status = report.verdict  # an unreachable machine left unverified is never PASSED
        sections.append(html.SiteSection(
            o.site, report.site_code if report else "", report.kb if report else "", report.title if report else None,
            status, report=report, run=o.run, seconds=o.seconds,
            error=None if o.state in (SiteState.DONE, SiteState.NOTHING) else o.message))
    return html.render(sections, command=f"{result.command} (fleet {result.fleet_id or ''})".replace(" ()", ""))


def render_file(result: FleetResult, fmt: str) -> str:
    from .secrets import redact

    # a site's message may quote an error that echoed a secret (a URL with its password): never in a report
    return redact({"json": to_json, "junit": to_junit, "html": to_html}.get(fmt, to_text)(result))
