"""Unchecked is never PASSED (issue 19, item 15): a machine that could not be reached, or a file
that could not be read, is listed as NOT VERIFIED with an INCOMPLETE outcome and exit 3, in
every format, for a site and a fleet, and in apply's own final report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from browser import dump_dom, parse
from conftest import Workspace
from deployer.errors import ConnectionLost
from deployer.simulator.fs import MockFiles


def _off(ws: Workspace) -> None:
    (ws.site / "DEMOWKS1" / "offline").touch()


def _verify(ws: Workspace, *args: str):
    return ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, *args)


def test_verify_names_the_machine_it_could_not_check_in_text_and_json(ws: Workspace):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    _off(ws)
    r = _verify(ws)
    assert r.code == 3, r.text
    assert "PASSED" not in r.out
    assert "NOT VERIFIED: DEMOWKS1: unreachable: cannot be reached" in r.out
    assert r"C:\PCMSVC\Pcmsvc32.exe" in r.out
    assert "31 files: 30 ok, 0 newer, 0 older, 0 missing, 0 mismatch, 1 not verified. INCOMPLETE" in r.out

    j = _verify(ws, "-f", "json")
    assert j.code == 3
    doc = json.loads(j.out)
    assert doc["passed"] is False and doc["outcome"] == "INCOMPLETE"
    assert doc["summary"]["unchecked"] == 1 and doc["summary"]["ok"] == 30
    assert [n["server"] for n in doc["not_verified"]] == ["DEMOWKS1"]
    (wks,) = [f for f in doc["files"] if f["server"] == "DEMOWKS1"]
    assert wks["status"] == "unchecked" and wks["passed"] is False


def test_junit_has_an_error_not_a_pass_and_html_says_incomplete(ws: Workspace, tmp_path: Path):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    _off(ws)
    xml_path = ws.path / "report.xml"
    r = _verify(ws, "-f", "junit", "-o", xml_path)
    assert r.code == 3 and "INCOMPLETE" in r.err and "NOT VERIFIED: DEMOWKS1" in r.err, r.text
    root = ET.parse(xml_path).getroot()
    assert root.get("errors") == "1" and root.get("failures") == "0"
    (case,) = [c for c in root.iter("testcase") if c.get("classname", "").endswith("DEMOWKS1")]
    assert case.find("error") is not None and case.find("failure") is None
    assert "unreachable" in case.find("error").get("message")

    page = ws.path / "report.html"
    r = _verify(ws, "-f", "html", "-o", page)
    assert r.code == 3
    text = parse(dump_dom(page, tmp_path / "profile")).text
    assert "Overall status INCOMPLETE" in text and "PASSED" not in text
    assert "NOT VERIFIED: DEMOWKS1" in text and "NOT VERIFIED" in text.split("DEMOWKS1", 2)[-1]


def test_applys_own_report_and_the_fleet_say_incomplete_with_the_way_forward(ws: Workspace):
    _off(ws)
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text  # the documented skip: the rest of the site is patched
    assert "INCOMPLETE" in r.out and "NOT VERIFIED: DEMOWKS1" in r.out and "PASSED" not in r.out
    text = ws.inventory.read_text()
    ws.inventory.write_text(text + "groups:\n  all_demo: [DEMO, DEMO]\n")
    f = ws.cli("verify", ws.playbook, "--group", "all_demo", "--site", "DEMO", "-i", ws.inventory)
    assert f.code == 3, f.text
    assert "NOT VERIFIED: DEMOWKS1" in f.text and "INCOMPLETE" in f.text and "PASSED" not in f.out


def test_a_server_that_goes_away_during_verify_is_not_verified_and_not_retried(ws: Workspace,
                                                                               monkeypatch: pytest.MonkeyPatch):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    import deployer.fleet.workflow as workflow

    calls: list[str] = []
    verifying: list[bool] = []
    real, real_verify = MockFiles.stat, workflow.verify

    def verify(*a, **k):  # the server goes away after the plan, while the files are checked
        verifying.append(True)
        return real_verify(*a, **k)

    def stat(self, path):
        if self.server == "DEMOLOG1" and verifying:
            calls.append(path)
            raise ConnectionLost("the connection was lost", server="DEMOLOG1")
        return real(self, path)

    monkeypatch.setattr(MockFiles, "stat", stat)
    monkeypatch.setattr(workflow, "verify", verify)
    r = _verify(ws, "-f", "json")
    assert r.code == 3, r.text
    doc = json.loads(r.out)
    lost = [f for f in doc["files"] if f["server"] == "DEMOLOG1"]
    assert lost and all(f["status"] == "unchecked" for f in lost)
    assert doc["outcome"] == "INCOMPLETE" and len(calls) == 1  # one timeout, not one per file


def test_nothing_to_do_is_not_done_while_a_machine_was_not_looked_at(ws: Workspace):
    _off(ws)
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    again = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert again.code == 0 and "Nothing to do" in again.out
    assert "INCOMPLETE: not reachable, so neither updated nor verified: DEMOWKS1" in again.out
    p = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert "Not reachable, so neither updated nor verified: DEMOWKS1" in p.out
