"""Fleet reports for a change ticket (issue 22, items 1 and 2): the site reports plus a roll-up
in every format, an unreachable site as its own outcome, one flag spelling, --note.

The fleet: 30 one-server mock sites (deployer/simulator/fleet_lab.py); SITE007 fails mid-run (a folder
the playbook writes into is a file, so it rolls back) and SITE013's server is off (the mock's
`offline` marker), so nothing is touched there.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser import SHOTS, dump_dom, parse, screenshot
from conftest import Project, copy_workspace, lab_project, run_cli

N = 30
FAILING, UNREACHABLE = "SITE007", "SITE013"
NOTE = "CHG0042 <b>weekend</b>"


@pytest.fixture(scope="session")
def fleet30_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab_project(tmp_path_factory.mktemp("fleet30"), N)


@dataclass
class Fleet30(Project):
    def cli(self, *args: str):
        return run_cli(*args, "-i", self.path / "sites.yaml", cwd=self.path)

    @property
    def playbook(self) -> Path:
        return self.path / "playbooks" / "q241656.yaml"

    def apply(self, *args: str):
        return self.cli("apply", self.playbook, "--all", "--yes", "--fleet-dir", self.path / "fleets", *args)

    def server(self, name: str) -> Path:
        return self.path / "lab" / name / f"SRV{name[-3:]}"

    def break_site(self, name: str) -> None:
        folder = self.server(name) / "C" / "SMS" / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "ALPHA.BIN"
        shutil.rmtree(folder)
        folder.write_bytes(b"not a folder")

    def switch_off(self, name: str) -> None:
        (self.server(name) / "offline").write_text("")

    def snapshot(self, name: str) -> dict[str, tuple[int, int]]:
        root = self.server(name)
        return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
                if p.is_file() and p.name != "offline"}


@pytest.fixture
def f30(fleet30_template: Path, tmp_path: Path) -> Fleet30:
    fw = Fleet30(copy_workspace(fleet30_template, tmp_path / "f30"))  # payloads shared: runs only read them
    fw.break_site(FAILING)
    fw.switch_off(UNREACHABLE)
    return fw


def _fleet_id(text: str) -> str:
    return re.search(r"Fleet (\d{8}T\d{6}Z-\w+):", text).group(1)


@pytest.mark.slow  # started first (tests/conftest.py)
def test_a_30_site_fleet_page_for_the_change_ticket(f30: Fleet30, tmp_path: Path):
    """The page an operator attaches: a real heading, counts by outcome at the top, the failed
    and unreachable sites first, each site's section as its one-site page has it."""
    before = f30.snapshot(UNREACHABLE)
    r = f30.apply("-f", "html", "-o", f30.path / "fleet.html", "--note", NOTE)
    assert r.code == 1, r.text  # documented: 1 when a site failed and was restored or could not be reached
    fid = _fleet_id(r.out)
    assert f30.snapshot(UNREACHABLE) == before  # nothing touched there
    assert f"Unreachable (nothing changed there): {UNREACHABLE}" in r.out
    assert f"Failed and restored: {FAILING}" in r.out  # and only that one

    page = f30.path / "fleet.html"
    raw = page.read_text()
    assert "&lt;b&gt;weekend&lt;/b&gt;" in raw and "<b>weekend" not in raw  # the note, escaped
    dom = parse(dump_dom(page, tmp_path / "profile"))
    text = dom.text
    assert text.startswith(f"Q241656: SMS: Memory Leak in Pcmsvc32 — fleet apply {fid}")
    assert f"28 done 0 nothing to do 1 failed and restored 1 unreachable of {N} sites" in text
    assert ", Q241656" not in text and "(fleet )" not in text
    assert f"Command deployer apply (fleet {fid})" in text and f"Note {NOTE}" in text
    # the site table: the failed site, then the unreachable one, then the others
    sites = [cells for _, cells in dom.rows if len(cells) == 7 and cells[0] != "Site"]
    assert [c[0] for c in sites[:2]] == [FAILING, UNREACHABLE]
    assert sites[0][2] == "ROLLED BACK" and sites[1][2] == "UNREACHABLE" and "Windows error 53" in sites[1][6]
    assert all(c[2] == "PASSED" and c[3] == "16 of 16 ok" for c in sites[2:]) and len(sites) == N
    # the failed site's section has its actions and its rollback record; the unreachable one says nothing changed
    failed = text[text.index(f"Site {FAILING} (F07) ROLLED BACK"):text.index(f"Site {UNREACHABLE} (F13)")]
    assert "Actions" in failed and "prepare:" in failed and "Rollback restored" in failed
    unreachable = text[text.index(f"Site {UNREACHABLE} (F13) UNREACHABLE"):text.index("Site SITE001 (F01)")]
    assert "Nothing was changed on this site" in unreachable
    assert "ROLLED BACK" not in unreachable and "Rollback" not in unreachable
    # every site that ran has its file table, as the one-site page draws it
    assert len(re.findall(r"<th>File name</th>", raw)) == N - 2
    width, _ = screenshot(page, SHOTS / "fleet-30-sites.png", tmp_path / "profile2", height=3000)
    assert width == 1280


def test_sites_with_nothing_to_do_show_their_files_in_every_format(f30: Fleet30):
    assert f30.apply().code == 1
    r = f30.apply("--report", f30.path / "again.txt", "--note", NOTE)  # --report: the format by the suffix
    assert r.code == 1, r.text
    text = (f30.path / "again.txt").read_text()
    lines = text.splitlines()
    assert lines[0] == "Q241656: SMS: Memory Leak in Pcmsvc32" and lines[2] == f"Note: {NOTE}"
    assert lines[3].startswith(f"Outcome: {N} sites in ") and "0 done, 28 nothing to do, 1 failed and restored, " \
        "1 unreachable." in lines[3]
    # evidence, not a sentence: each site with nothing to do has its file table
    assert text.count(": NOTHING TO DO") == 28
    assert text.count("Summary: 16 files: ") == 28
    assert text.index(f"=== Site {FAILING}") < text.index(f"=== Site {UNREACHABLE}") < text.index("=== Site SITE001")
    r = f30.apply("-f", "html", "-o", f30.path / "again.html")
    raw = (f30.path / "again.html").read_text()
    assert len(re.findall(r"<th>File name</th>", raw)) == 28 and raw.count(">NOTHING TO DO<") >= 28


def test_fleet_junit_is_the_site_junit_plus_a_roll_up(f30: Fleet30):
    r = f30.apply("-f", "junit", "-o", f30.path / "fleet.xml", "--note", NOTE)
    assert r.code == 1, r.text
    root = ET.parse(f30.path / "fleet.xml").getroot()
    suites = {s.get("name"): s for s in root}
    head = suites["fleet"]
    props = {p.get("name"): p.get("value") for p in head.iter("property")}
    assert props["note"] == NOTE and props["sites.unreachable"] == "1" and props["sites.failed"] == "1"
    unreachable = suites[f"Q241656.{UNREACHABLE}"]
    assert unreachable.get("errors") == "1" and unreachable.get("failures") == "0"
    assert unreachable.find("testcase/error").get("type") == "unreachable"
    assert suites[f"Q241656.{FAILING}"].find("testcase/failure").get("type") == "rolled_back"
    # a verified site's suites in the fleet document are the ones the one-site document has
    v = f30.cli("verify", f30.playbook, "--site", "SITE001", "-f", "junit", "-o", f30.path / "one.xml")
    assert v.code == 0, v.text
    one = ET.parse(f30.path / "one.xml").getroot()
    fleet = f30.cli("verify", f30.playbook, "--site", "SITE00[1-2]", "--report", f30.path / "two.xml")
    assert fleet.code == 0, fleet.text
    two = {s.get("name"): s for s in ET.parse(f30.path / "two.xml").getroot()}
    for suite in one:
        other = two[suite.get("name")]
        assert [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")] == \
            [(c.get("classname"), c.get("name")) for c in other.iter("testcase")]
        assert suite.get("tests") == other.get("tests") and suite.get("failures") == other.get("failures")


def test_fleet_json_and_plan_keep_unreachable_apart(f30: Fleet30):
    r = f30.cli("plan", f30.playbook, "--all")
    assert r.code == 1, r.text
    assert "1 unreachable" in r.out and "failed and restored" not in r.out
    # plan --all -o FILE writes the fleet's report (it was refused)
    r = f30.cli("plan", f30.playbook, "--all", "-f", "json", "-o", f30.path / "plan.json", "--note", NOTE)
    assert r.code == 1, r.text
    data = json.loads((f30.path / "plan.json").read_text())
    assert data["note"] == NOTE and data["counts"]["unreachable"] == 1 and data["counts"]["failed"] == 0
    r = f30.apply("-f", "json", "--note", NOTE)
    data = json.loads(r.out)
    by_site = {s["site"]: s for s in data["sites"]}
    assert by_site[UNREACHABLE]["state"] == "unreachable" and by_site[FAILING]["state"] == "failed"
    assert data["note"] == NOTE and data["command_line"] == f"deployer apply (fleet {data['fleet']})"
    assert data["counts"]["unreachable"] == 1 and data["exit_code"] == 1
    # and the journal keeps it apart, so --resume picks the site up once it is back
    journal = json.loads(Path(data["journal"]).read_text())
    assert journal["sites"][UNREACHABLE]["state"] == "unreachable"


def test_verify_all_takes_report_and_a_fleet_without_journal_has_a_real_command_line(f30: Fleet30, tmp_path: Path):
    r = f30.cli("verify", f30.playbook, "--all", "--report", f30.path / "v.html", "--note", NOTE)
    assert r.code == 3, r.text  # nothing applied yet: every reachable site mismatches, one is unreachable
    dom = parse(dump_dom(f30.path / "v.html", tmp_path / "profile"))
    assert f"Command deployer verify (fleet of {N} sites)" in dom.text and f"Note {NOTE}" in dom.text
    assert "1 unreachable" in dom.text and "(fleet )" not in dom.text


def test_note_is_in_every_one_site_report(f30: Fleet30):
    site = ["--site", "SITE001"]
    for fmt, path in (("json", "n.json"), ("junit", "n.xml"), ("html", "n.html"), ("text", "n.txt")):
        r = f30.cli("verify", f30.playbook, *site, "-f", fmt, "-o", f30.path / path, "--note", NOTE)
        assert r.code == 3, r.text
        body = (f30.path / path).read_text()
        assert (NOTE if fmt in ("json", "text") else "CHG0042 &lt;b&gt;weekend&lt;/b&gt;") in body, fmt
    r = f30.cli("apply", f30.playbook, *site, "--yes", "--report", f30.path / "a.html", "--note", NOTE)
    assert r.code == 0, r.text
    assert "CHG0042 &lt;b&gt;" in (f30.path / "a.html").read_text()
    r = f30.cli("apply", f30.playbook, "--site", "SITE002", "--yes", "-o", f30.path / "a.txt", "--note", NOTE)
    assert r.code == 0, r.text
    assert f"Note: {NOTE}" in (f30.path / "a.txt").read_text()

