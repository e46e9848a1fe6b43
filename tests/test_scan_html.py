"""`deployer scan --group G -f html`: the hotfix x site matrix of a fleet at three patch levels,
rendered by headless Chromium; its text checked and a screenshot kept under
test-output/screenshots/. And the JUnit and text reports of the same fleet."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from browser import SHOTS, dump_dom, parse, screenshot
from conftest import Workspace

LEVELS = {"DEMO": None, "PATCHED": "Q241656,Q255284,Q226891,Q168130", "HALF": "Q241656:Base.dll+Pcmsvc32.exe"}


def fleet(ws: Workspace) -> Path:
    """Three lab sites of DEMO's layout: fresh, fully patched, half patched by hand (group LAB)."""
    text = ws.inventory.read_text()
    block = text[text.index("  DEMO:"):]
    inv = ws.path / "fleet.yaml"
    extra = "".join(block.replace("  DEMO:", f"  {name}:", 1).replace("lab/DEMO", f"lab/{name}")
                    for name in LEVELS if name != "DEMO")
    inv.write_text(text.rstrip("\n") + "\n" + extra + "groups:\n  LAB: [DEMO, PATCHED, HALF]\n")
    for name, spec in LEVELS.items():
        if spec:
            r = ws.cli("lab", "init", name, "-i", inv, "--patched-with", spec)
            assert r.code == 0, r.text
    return inv


def test_fleet_matrix_in_chromium_with_partial_and_missing_first(ws: Workspace, tmp_path: Path):
    inv = fleet(ws)
    page = ws.path / "scan.html"
    r = ws.cli("scan", "--group", "LAB", "-i", inv, "-f", "html", "-o", page)
    assert r.code == 3, r.text
    assert "Report written to" in r.err and "MISSING HOTFIXES" in r.err

    dom = parse(dump_dom(page, tmp_path / "profile"))
    assert "script" not in dom.tags and "img" not in dom.tags and "link" not in dom.tags
    text = dom.text
    assert "Which hotfixes does each site need?" in text and "Overall status MISSING HOTFIXES" in text
    head = [cells for _, cells in dom.rows if cells[:2] == ["Hotfix", "Title"]]
    assert head == [["Hotfix", "Title", "DEMO", "PATCHED", "HALF"]]
    matrix = [(cls, cells) for cls, cells in dom.rows if len(cells) == 5 and cells[0].startswith("Q")]
    assert [c[0] for _, c in matrix][:2] == ["Q241656", "Q168130"]  # a partial row first, then missing
    rows = {c[0]: (cls, c[2:]) for cls, c in matrix}
    assert rows["Q241656"] == ("fail", ["MISSING", "installed", "PARTIAL"])
    assert rows["Q225056"] == ("", ["installed", "installed", "installed"])
    assert rows["Q255284"][1] == ["MISSING", "installed", "MISSING"]  # Q241656's Pcmsvc32 is older than Q255284's
    # per site: the order to apply, the files that decide a partial hotfix
    assert "deployer apply playbooks/q241656.yaml --site DEMO" in text
    half = text[text.index("Site HALF (DMO)"):]
    assert "Q241656: SMS: Memory Leak in Pcmsvc32 PARTIAL" in half
    assert "C:\\SMS\\SITE.SRV\\MAINCFG.BOX\\CLIENT.SRC\\X86.BIN\\PCMDOS_2.EXE" in half
    assert "Q241656 (9/10/99) SMS: Memory Leak in Pcmsvc32 +- supersedes Q225056" in text  # the chains

    width, height = screenshot(page, SHOTS / "scan-matrix.png", tmp_path / "profile2", 1280, 1600)
    assert (width, height) == (1280, 1600)


def test_fleet_text_matrix_and_junit(ws: Workspace):
    inv = fleet(ws)
    r = ws.cli("scan", "--group", "LAB", "-i", inv)
    assert r.code == 3
    lines = r.out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:4] == ["hotfix", "DEMO", "PATCHED", "HALF"])
    assert lines[header + 2].split() == ["Q241656", "MISSING", "ok", "PARTIAL"]
    assert "Missing or partial on 2 of 3 sites: DEMO, HALF" in r.out
    xml = ET.fromstring(ws.cli("scan", "--group", "LAB", "-i", inv, "-f", "junit").out)
    suites = {s.get("name"): s for s in xml.iter("testsuite")}
    assert set(suites) == {"scan.DEMO", "scan.PATCHED", "scan.HALF"}
    assert suites["scan.PATCHED"].get("failures") == "0" and suites["scan.DEMO"].get("failures") == "4"
    case = next(c for c in suites["scan.HALF"].iter("testcase") if c.get("name") == "Q241656")
    assert case.find("failure").get("type") == "partial"
    data = json.loads(ws.cli("scan", "--all", "-i", inv, "-f", "json").out)
    assert [s["site"] for s in data["sites"]] == ["DEMO", "PATCHED", "HALF"] and data["passed"] is False
    r = ws.cli("scan", "--site", "PATCHED", "-i", inv, "-f", "junit")
    assert r.code == 0 and 'failures="0"' in r.out
