"""Issue 19 item 19: control characters and terminal escapes from outside text (a playbook or
KB title, a server's file names) never reach an output raw: the console and text show them as
`\\x1b`, JUnit stays well-formed XML, the HTML page and JSON carry no raw control character,
and neither does the command's log."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from conftest import Workspace
from deployer import failpoints
from deployer.failpoints import InjectedFault

# ESC[2J clears the screen, OSC 52 sets the clipboard, BEL, NUL, CSI as one C1 byte, a bidi override
HOSTILE = r"\e[2J\e]52;c;aGk=\a\0\x9b31m\u202e"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]")


def _retitle(path: Path, title: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^title: .*$", lambda _: f'title: "{title}"', text, count=1), encoding="utf-8")


def _clean(text: str, what: str) -> None:
    assert not RAW.search(text), f"{what}: raw control character {RAW.search(text).group()!r}"


def test_hostile_titles_are_escaped_in_every_output(ws: Workspace, tmp_path: Path):
    _retitle(ws.playbook, f"Playbook {HOSTILE}")
    _retitle(ws.path / "manifests" / "q241656.yaml", f"KB {HOSTILE}")
    log = tmp_path / "plan.log"
    r = ws.cli("--log", log, "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    _clean(r.out + r.err, "plan")
    assert "Playbook \\x1b[2J\\x1b]52;c;aGk=\\x07\\x00\\x9b31m\\u202e" in r.out  # visible, not dropped
    _clean(log.read_text(encoding="utf-8"), "the log")
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    _clean(r.out, "plan json")
    assert "\x1b" in json.loads(r.out)["title"]  # JSON escapes it and gives it back whole
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--yes", "-f", "html", "-o",
               tmp_path / "apply.html")
    assert r.code == 0, r.text
    _clean(r.out + r.err, "apply")
    _clean((tmp_path / "apply.html").read_text(encoding="utf-8"), "apply html")
    for fmt in ("text", "json", "junit", "html"):
        r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", fmt)
        assert r.code == 0, r.text
        _clean(r.out + r.err, f"verify -f {fmt}")
        if fmt == "junit":
            ET.fromstring(r.out)
    r = ws.cli("verify", ws.path / "manifests" / "q241656.yaml", "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0 and "KB \\x1b[2J" in r.out, r.text


def test_a_junit_report_of_hostile_file_names_is_well_formed_xml(ws: Workspace):
    from deployer.fleet import workflow
    from deployer.report.junit import to_junit
    from deployer.run.context import RunContext

    site = workflow.inventory(ws.inventory).site("DEMO")
    report = workflow.verify_target(workflow.load_target(ws.playbook), site, RunContext("DEMO"))
    names = ["A\x00B.DLL", "C\x1b]52;c;aGk=\x07.DLL", "D\x0b\x1f\x7f\ufffe.DLL", "E<&>\".DLL"]
    report.files[:4] = [replace(f, path=n, name=n) for f, n in zip(report.files, names)]
    xml = to_junit(report)
    _clean(xml, "junit")
    root = ET.fromstring(xml)
    paths = [c.get("name") for c in root.iter("testcase")][:4]
    assert paths == ["A\\x00B.DLL", "C\\x1b]52;c;aGk=\\x07.DLL", "D\\x0b\\x1f\\x7f\\ufffe.DLL", "E<&>\".DLL"]


def test_a_hostile_file_name_on_the_site_is_shown_escaped(ws: Workspace, tmp_path: Path):
    folder = ws.server("DEMOSRV") / "SITE.SRV" / "X86.BIN"
    name = "NOTES\x1b]52;c;aGk=\x07\x1b[2J.TXT"

    def drop_and_fail(point: str) -> None:
        (folder / name).write_text("someone copied this here during the run")
        raise InjectedFault(f"injected fault at {point}")

    failpoints.arm("apply.action.6.after", "call", drop_and_fail)
    log = tmp_path / "apply.log"
    r = ws.cli("--log", log, "apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    failpoints.reset()
    assert r.code == 4, r.text
    assert "NOTES\\x1b]52;c;aGk=\\x07\\x1b[2J.TXT was not in its folder" in r.err
    _clean(r.out + r.err, "apply")
    _clean(log.read_text(encoding="utf-8"), "the log")


def test_a_hostile_ini_file_name_is_escaped_in_the_yaml_written(tmp_path: Path):
    from conftest import ROOT, run_cli

    ini = tmp_path / "pcm\x1b[2J\x07.ini"
    ini.write_bytes((ROOT / "tests" / "data" / "rservice" / "pcm.ini").read_bytes())
    r = run_cli("inventory", "from-rservice", ini)
    assert r.code == 0, r.text
    _clean(r.out + r.err, "from-rservice")
    assert "pcm\\x1b[2J\\x07.ini" in r.out


def test_a_table_cell_of_outside_text_stays_on_its_row():
    """A cell kept its newlines (only control characters were escaped): an error quoting a file,
    a server's name, could start a false row in a table (runs, a fleet's report, the scan's matrix)."""
    import io

    from deployer.report.out import Out

    buf = io.StringIO()
    Out(buf, False).table(["Site", "Detail"], [["S1", "failed\nS2  PASSED  \u202eok\tx"]])
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3, lines  # the headers, the rule, one row
    assert lines[2].split() == ["S1", "failed\\nS2", "PASSED", "\\u202eok\\tx"], lines


def test_a_fleet_live_panel_row_stays_one_row_whatever_a_site_is_doing():
    """The live panel's rows escaped control characters but kept newlines: a step quoting a file
    named with one drew a false row under the site's."""
    import io

    from deployer.fleet.view import FleetConsole
    from deployer.report.out import Out

    view = FleetConsole(Out(io.StringIO(), False), Out(io.StringIO(), False), title="t", total=1)
    view.running["S1"] = "replace C:\\SMS\\A\nS2: DONE \u202e\x1b[2J"
    rows = [t.plain for t in view._panel().renderables[1:]]
    assert rows == ["  S1: replace C:\\SMS\\A\\nS2: DONE \\u202e\\x1b[2J"], rows


def test_inventory_show_writes_bidi_controls_as_yaml_escapes_that_load_back_the_same(tmp_path: Path):
    """`inventory show` (YAML) let PyYAML write a bidi override and a line separator raw, on the
    terminal; they are written as YAML escapes now, and the output still loads back the same."""
    import yaml

    from conftest import run_cli

    inv = tmp_path / "sites.yaml"
    inv.write_text('sites:\n  S01:\n    code: S01\n    platforms: [x86]\n    mock: {path: lab/S01}\n'
                   '    vars: {note: "caf\\u00e9 \\u202eevil\\u2028x \\e[2J"}\n'
                   "    servers:\n      SRV: {role: site_server, platform: x86, sms_root: 'C:\\SMS'}\n", encoding="utf-8")
    r = run_cli("inventory", "show", "-i", inv)
    assert r.code == 0, r.text
    _clean(r.out, "inventory show")
    assert not re.search("[\u2028\u202e]", r.out), r.out
    assert yaml.safe_load(r.out)["sites"]["S01"]["vars"]["note"] == "caf\u00e9 \u202eevil\u2028x \x1b[2J"
