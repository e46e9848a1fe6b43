"""A verification report as JUnit XML, for CI dashboards: one test suite per server, one
test case per file; a file that does not pass is a failure carrying expected vs actual."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..verify import UNCHECKED, Report
from .escape import visible


def to_junit(report: Report) -> str:
    suites = ET.Element("testsuites", name=f"{report.kb} on {report.site}",
                        tests=str(len(report.files)), failures=str(len(report.mismatched)),
                        errors=str(len(report.unchecked)))
    by_server: dict[str, list] = {}
    for f in report.files:
        by_server.setdefault(f.server, []).append(f)
    for server, files in by_server.items():
        suite = ET.SubElement(suites, "testsuite", name=f"{report.kb}.{report.site}.{server}", tests=str(len(files)),
                              failures=str(sum(1 for f in files if not f.passed and f.status != UNCHECKED)),
                              errors=str(sum(1 for f in files if f.status == UNCHECKED)), skipped="0")
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
    ET.indent(suites)
    # ElementTree escapes markup but writes control characters raw, which XML 1.0 forbids
    return visible('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n")
