"""Reports as JUnit XML, for CI dashboards; ONE writer for a site and for a fleet.

A site's suites: one test suite per server with one test case per file (a file that does
not pass is a failure carrying expected vs actual), and for a run (apply, rollback) one
suite with the run itself as a case: a failure when it was rolled back or not restored, an
error when the site could not be reached (nothing was run there), skipped when the rollout
never started it. A fleet's document is every site's suites exactly as a site's document
has them, after a first suite that carries the roll-up (fleet id, counts by outcome) as
properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Sequence

from ..sms.verify import UNCHECKED, Report
from .html import SiteSection, verify_section

from .escape import visible

FAILED_RUN = ("ROLLED BACK", "NOT RESTORED", "FAILED")


def _properties(suite: ET.Element, props: dict[str, str]) -> None:
    if props:
        el = ET.SubElement(suite, "properties")
        for k, v in props.items():
            ET.SubElement(el, "property", name=k, value=v)


def _file_suites(parent: ET.Element, report: Report, props: dict[str, str]) -> None:
    by_server: dict[str, list] = {}
    for f in report.files:
        by_server.setdefault(f.server, []).append(f)
    for server, files in by_server.items():
        suite = ET.SubElement(parent, "testsuite", name=f"{report.kb}.{report.site}.{server}", tests=str(len(files)),
                              failures=str(sum(1 for f in files if not f.passed and f.status != UNCHECKED)),
                              errors=str(sum(1 for f in files if f.status == UNCHECKED)), skipped="0")
        _properties(suite, props)
        for f in files:
            case = ET.SubElement(suite, "testcase", classname=f"{report.kb}.{server}", name=f.path)
            expected = f"{f.expected_date} {f.expected_time} {f.expected_size}"
            if f.expected_version:
                expected += f" version {f.expected_version}"
            actual = "missing" if f.actual_size is None else f"{f.actual_date} {f.actual_time} {f.actual_size:,} bytes"
            loose = f"; checked loosely: {'; '.join(f.loose)}" if f.loose else ""
            ET.SubElement(case, "system-out").text = f"status: {f.status}; expected {expected}; found {actual}{loose}"
            if f.status == UNCHECKED:  # not verified is an error of the check, never a pass
                err = ET.SubElement(case, "error", message=f"not verified: {f.detail}", type=UNCHECKED)
                err.text = f"{f.name} ({f.platform}) on {server} could not be checked: {f.detail}"
            elif not f.passed:
                fail = ET.SubElement(case, "failure", message=f"{f.status}: {f.detail}".rstrip(": "), type=f.status)
                fail.text = f"{f.name} ({f.platform}) on {server}: expected {expected} ({report.rule}); found {actual}"


def _run_suite(parent: ET.Element, s: SiteSection, command: str, props: dict[str, str]) -> None:
    kb = s.kb or "-"
    suite = ET.SubElement(parent, "testsuite", name=f"{kb}.{s.site}", tests="1",
                          failures="1" if s.status in FAILED_RUN else "0", errors="1" if s.unreachable else "0",
                          skipped="1" if s.status == "NOT STARTED" else "0")
    if s.seconds is not None:
        suite.set("time", f"{s.seconds:.3f}")
    _properties(suite, props)
    case = ET.SubElement(suite, "testcase", classname=f"{kb}.{s.site}", name=command)
    lines = [f"status: {s.status}" + (f"; run {s.run}" if s.run else "")]
    lines += [f"{a.number or '-'}. {a.what}: {a.outcome}" for a in s.actions]
    if s.rollback:
        lines += [f"undo {a.number}. {a.what}: {'undone' if a.outcome == 'done' else a.outcome}"
                  for a in s.rollback.undone]
        lines += [f"left to fix by hand: {x}" for x in s.rollback.remaining]
    ET.SubElement(case, "system-out").text = "\n".join(lines)
    message = s.error or s.status
    if s.unreachable:  # an error, not a failure: nothing ran there (JUnit's "could not run")
        ET.SubElement(case, "error", message=f"unreachable: {message}", type="unreachable").text = (
            "Nothing was changed on this site.")
    elif s.status == "NOT STARTED":
        ET.SubElement(case, "skipped", message=message)
    elif s.status in FAILED_RUN:
        ET.SubElement(case, "failure", message=message, type=s.status.lower().replace(" ", "_")).text = "\n".join(lines)


def site_suites(parent: ET.Element, s: SiteSection, command: str, note: str | None = None) -> None:
    """One site's suites, the same for a one-site document and inside a fleet's."""
    props = {"site": s.site, "status": s.status, **({"note": note} if note else {})}
    if s.report is not None:
        _file_suites(parent, s.report, props if note else {})
    if s.run or s.actions or s.error or s.report is None:  # a run, or a site with no file evidence
        _run_suite(parent, s, command, props)


def _finish(root: ET.Element) -> str:
    suites = root.findall("testsuite")
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(x.get(attr, "0")) for x in suites)))
    ET.indent(root)
    # ElementTree escapes markup but writes control characters raw, which XML 1.0 forbids
    return visible('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n")


def document(sections: Sequence[SiteSection], *, name: str, command: str, note: str | None = None,
             rollup: dict[str, str] | None = None, seconds: float | None = None) -> str:
    root = ET.Element("testsuites", name=name)
    if seconds is not None:
        root.set("time", f"{seconds:.3f}")
    if rollup is not None:
        head = ET.SubElement(root, "testsuite", name="fleet", tests="0", failures="0", errors="0", skipped="0")
        _properties(head, {**({"note": note} if note else {}), **rollup})
    for s in sections:
        site_suites(root, s, command, note)
    return _finish(root)


def to_junit(report: Report, note: str | None = None) -> str:
    """`deployer verify -f junit`: one site's verification."""
    return document([verify_section(report)], name=f"{report.kb} on {report.site}", command="verify", note=note)
