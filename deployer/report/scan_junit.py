"""A scan as JUnit XML: one test suite per site, one test case per hotfix; a missing or partial
hotfix is a failure, `cannot tell` is skipped with its reason, the rest pass."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..scan.model import CANNOT_TELL, FAILING, ScanResult
from .escape import visible
from .scan_text import safe


def to_junit(result: ScanResult) -> str:
    cases = sum(len(s.hotfixes) for s in result.sites)
    failures = sum(1 for s in result.sites for h in s.hotfixes if h.status in FAILING)
    errors = sum(1 for s in result.sites if s.error)
    suites = ET.Element("testsuites", name=f"hotfix scan against {safe(result.catalog)}", tests=str(cases),
                        failures=str(failures), errors=str(errors))
    for s in result.sites:
        fails = sum(1 for h in s.hotfixes if h.status in FAILING)
        skipped = sum(1 for h in s.hotfixes if h.status == CANNOT_TELL)
        suite = ET.SubElement(suites, "testsuite", name=f"scan.{safe(s.site)}", tests=str(len(s.hotfixes)),
                              failures=str(fails), errors="1" if s.error else "0", skipped=str(skipped))
        if s.error:
            ET.SubElement(suite, "error", message=safe(s.error), type="unreachable")
        for h in s.hotfixes:
            case = ET.SubElement(suite, "testcase", classname=f"scan.{safe(s.site)}", name=safe(h.kb))
            files = "\n".join(f"{'ok ' if f.passed else 'NOT'} {safe(f.server)} {safe(f.path)}: listed "
                              f"{safe(f.listed)}; found {safe(f.found)}" for f in h.files)
            ET.SubElement(case, "system-out").text = f"{h.status}: {safe(h.why)}\n{files}".rstrip()
            if h.status in FAILING:
                fail = ET.SubElement(case, "failure", message=f"{h.status}: {safe(h.why)}", type=h.status)
                fail.text = (f"{safe(h.kb)} ({safe(h.title)}) is {h.status} on {safe(s.site)}"
                             + (f"; apply {safe(h.playbook)}" if h.playbook else "; the catalogue has no playbook"))
            elif h.status == CANNOT_TELL:
                ET.SubElement(case, "skipped", message=safe(h.why))
    ET.indent(suites)
    # every value's control characters shown (a bidi override, ESC), as the run's JUnit does (junit.py)
    return visible('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n")
