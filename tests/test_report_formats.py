"""The report-format registry (report/formats, issue 20 item 1): a format is one module plus its
registry entry, and every command offers it for a site and a fleet, by `-f` and by the suffix
of `--report FILE`, without another change anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Result, lab_project

# a throwaway format: what a third party would write (only report/formats' public types)
CSV_MODULE = '''
def site(kind, r):
    report = r.report if kind == "verify" else r.result.report
    return "site,verdict,note\\n" + f"{report.site},{report.verdict},{r.note}\\n"


def fleet(doc):
    return ("site,status,note\\n" + "".join(f"{s.site},{s.status},{doc.note}\\n" for s in doc.sections)
            + f"# {doc.command_line}\\n")
'''

BOOT = '''
import sys
sys.path.insert(0, {folder!r})
if {register!r}:
    from deployer.report import formats
    formats.register(formats.Format("csv", "csvfmt", "CSV", (".csv",), terminal=False,
                                    kinds=frozenset({kinds!r})))
from deployer.cli import main
sys.argv = ["deployer", *sys.argv[1:]]
main()
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = lab_project(tmp_path_factory.mktemp("formats"), 2)
    (base / "csvfmt.py").write_text(CSV_MODULE)
    return base


def cli(project: Path, *args: str, register: bool = True, kinds: tuple[str, ...] = ("verify", "apply")) -> Result:
    boot = BOOT.format(folder=str(project), register=register, kinds=set(kinds))
    proc = subprocess.run([sys.executable, "-c", boot, *map(str, args), "--inventory", str(project / "sites.yaml")],
                          cwd=project, capture_output=True, text=True, timeout=180, env={**os.environ})
    return Result(proc.returncode, proc.stdout, proc.stderr)


def playbook(project: Path) -> Path:
    return project / "playbooks" / "q241656.yaml"


@pytest.mark.parametrize("sites", ["SITE001", "SITE001,SITE002"], ids=["site", "fleet"])
def test_a_registered_format_is_offered_by_f_and_by_report_suffix(project: Path, sites: str):
    fleet = "," in sites
    by_f = project / f"by-f-{len(sites)}.csv"
    r = cli(project, "verify", playbook(project), "--site", sites, "-f", "csv", "-o", by_f, "--note", "CHG-7")
    assert r.code == 3, r.err  # the lab is not patched yet: a mismatch, reported in the new format
    by_suffix = project / f"by-suffix-{len(sites)}.csv"
    r = cli(project, "verify", playbook(project), "--site", sites, "--report", by_suffix, "--note", "CHG-7")
    assert r.code == 3, r.err
    for path in (by_f, by_suffix):
        lines = path.read_text().splitlines()
        if fleet:  # the fleet's writer: a row per site (each site's section), then the roll-up's line
            assert lines[0] == "site,status,note"
            assert sorted(lines[1:3]) == ["SITE001,FAILED,CHG-7", "SITE002,FAILED,CHG-7"]
            assert lines[3].startswith("# verify (fleet")
        else:
            assert lines == ["site,verdict,note", "SITE001,FAILED,CHG-7"]
    assert "csv" in cli(project, "verify", "--help").out


def test_a_registered_format_writes_a_run_for_a_site_and_a_fleet(project: Path):
    one = project / "apply-one.csv"
    r = cli(project, "apply", playbook(project), "--site", "SITE001", "--yes", "--report", one)
    assert r.code == 0, r.err
    assert one.read_text().splitlines() == ["site,verdict,note", "SITE001,PASSED,None"]
    both = project / "apply-two.csv"
    # a document format (terminal=False) needs a file for a fleet, as html and junit do
    r = cli(project, "apply", playbook(project), "--site", "SITE001,SITE002", "--yes", "-f", "csv")
    assert r.code == 2 and "-f csv writes a report file: add -o FILE" in r.err, r.err
    r = cli(project, "apply", playbook(project), "--site", "SITE001,SITE002", "--yes", "-f", "csv", "-o", both)
    assert r.code == 0, r.err
    rows = both.read_text().splitlines()
    assert rows[0] == "site,status,note" and sorted(rows[1:3]) == ["SITE001,NOTHING TO DO,None",
                                                                  "SITE002,PASSED,None"]


def test_a_format_offers_only_the_reports_it_writes(project: Path):
    r = cli(project, "plan", playbook(project), "--site", "SITE001", "--report", project / "plan.csv")
    assert r.code == 2
    assert ("this command's reports are text, json (.json: JSON, .xml: JUnit, .html: HTML, .csv: CSV, "
            "anything else: text)") in r.err
    assert not (project / "plan.csv").exists()


def test_without_its_registry_entry_a_format_is_not_offered(project: Path):
    r = cli(project, "verify", playbook(project), "--site", "SITE001", "-f", "csv", register=False)
    assert r.code == 2 and "csv" in r.err
    text = project / "unregistered.csv"
    r = cli(project, "verify", playbook(project), "--site", "SITE001", "--report", text, register=False)
    assert r.code in (0, 3), r.err  # passed or mismatched: an earlier test may have applied the fix here
    assert text.read_text().startswith("Q241656")  # no format claims .csv: a text report


@pytest.mark.parametrize("suffix,marker", [(".txt", "=== Site SITE002"), (".json", '"site": "SITE002"'),
                                           (".xml", 'name="rollback"'), (".html", "SITE002")])
def test_one_site_rollback_and_recover_write_their_report_as_a_fleet_does(project: Path, suffix: str, marker: str):
    # --report was offered for one site and dropped: no file, while a fleet wrote one
    assert cli(project, "apply", playbook(project), "--site", "SITE002", "--yes", register=False).code == 0
    rolled = project / f"rollback{suffix}"
    r = cli(project, "rollback", "--site", "SITE002", "--yes", "--report", rolled, "--note", "CHG-9 <x>",
            register=False)
    assert r.code == 0, r.err
    assert f"Report written to {rolled}." in r.err
    text = rolled.read_text()
    assert marker in text and ("CHG-9 &lt;x&gt;" if suffix in (".xml", ".html") else "CHG-9 <x>") in text
    recovered = project / f"recover{suffix}"
    r = cli(project, "recover", "--site", "SITE002", "--yes", "--report", recovered, register=False)
    assert r.code == 0, r.err
    assert "SITE002" in recovered.read_text()


def test_one_site_rollback_refuses_a_report_file_it_did_not_write_before_the_run(project: Path):
    theirs = project / "theirs.txt"
    theirs.write_text("not deployer's\n")
    assert cli(project, "apply", playbook(project), "--site", "SITE002", "--yes", register=False).code == 0
    r = cli(project, "rollback", "--site", "SITE002", "--yes", "--report", theirs, register=False)
    assert r.code == 2 and theirs.read_text() == "not deployer's\n", r.err
    r = cli(project, "runs", "--site", "SITE002", "-f", "json", register=False)
    assert json.loads(r.out)[-1]["state"] == "committed"  # nothing was rolled back


@pytest.mark.parametrize("sites", [["SITE001"], ["SITE001", "SITE002"]], ids=["site", "fleet"])
def test_a_rollback_report_names_the_hotfix_and_each_action_it_restored(tmp_path: Path, sites: list[str]):
    """The change ticket's record of a rollback: which hotfix the run had applied and what the undo
    put back, action by action, for a site alone and for each site of a fleet (it said only the run)."""
    project = lab_project(tmp_path / "fleet", 2)  # its own: the module's project is other tests' to change
    selected = [a for s in sites for a in ("--site", s)]
    assert cli(project, "apply", playbook(project), *selected, "--yes", register=False).code == 0
    page = project / f"rollback-{len(sites)}.html"
    r = cli(project, "rollback", *selected, "--yes", "--report", page, register=False)
    assert r.code == 0, r.err
    html = page.read_text()
    assert "Q241656" in html and "Undone action" in html
    for s in sites:
        assert f"replace SRV{s[-3:]} C:\\SMS\\SITE.SRV\\X86.BIN\\PCMSVC32.EXE" in html, html
    assert html.count("<td>undone</td>") >= 5 * len(sites)
    text = project / f"rollback-{len(sites)}.txt"
    r = cli(project, "rollback", *selected, "--yes", "--report", text, register=False)
    assert r.code == 0  # nothing left to roll back now: said, and the report still written


def _killed(project: Path, site: str) -> str:
    """A run of `site` killed half-way (after three files were replaced): its run id."""
    proc = subprocess.run([sys.executable, "-m", "deployer", "--no-log", "apply", str(playbook(project)), "--site",
                           site, "--yes", "--inventory", str(project / "sites.yaml")], cwd=project,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "DEPLOYER_FAILPOINTS": "apply.action.6.before=kill"})
    assert proc.returncode == -9, proc.stderr
    runs = cli(project, "runs", "--site", site, "-f", "json", register=False)
    return json.loads(runs.out)[-1]["run"]


@pytest.mark.parametrize("sites", [["SITE001"], ["SITE001", "SITE002"]], ids=["site", "fleet"])
def test_a_recover_report_names_the_hotfix_the_run_and_each_action_it_undid(tmp_path: Path, sites: list[str]):
    """`recover --report FILE` wrote only its outcome lines: it has the section a rollback's report
    has (the hotfix, the run, each action undone), in every format of the registry, alone and in a fleet."""
    project = lab_project(tmp_path / "recover", 2)
    for fmt in ("text", "json", "junit", "html"):
        runs = {s: _killed(project, s) for s in sites}
        path = project / f"recover-{fmt}-{len(sites)}{'.txt' if fmt == 'text' else '.xml' if fmt == 'junit' else '.' + fmt}"
        r = cli(project, "recover", "--site", ",".join(sites), "--yes", "--break-lock", "--report", path,
                register=False)
        assert r.code == 1, r.err  # rolled back: every file as before
        text = path.read_text()
        if fmt == "json":
            data = json.loads(text)
            entries = {s["site"]: s["section"] for s in data["sites"]} if len(sites) > 1 else {sites[0]: data["section"]}
            for s in sites:
                section = entries[s]
                assert section["kb"] == "Q241656" and section["run"] == runs[s], section
                undone = [a["what"] for a in section["rollback"]["undone"] if a["outcome"] == "done"]
                assert f"replace SRV{s[-3:]} C:\\SMS\\SITE.SRV\\X86.BIN\\PCMSVC32.EXE" in undone, undone
                assert len(undone) >= 5, undone
            continue
        assert "Q241656" in text, text
        for s in sites:
            assert runs[s] in text, (fmt, text)
            assert f"SRV{s[-3:]} C:\\SMS\\SITE.SRV\\X86.BIN\\PCMSVC32.EXE" in text, (fmt, text)
        if fmt == "text":
            assert text.count(": undone") >= 5 * len(sites), text
        if fmt == "html":
            assert text.count("<td>undone</td>") >= 5 * len(sites), text


@pytest.mark.parametrize("kinds", [("verify", "apply"), ("rollback", "recover", "plan"), ("runs",)])
def test_report_and_format_help_list_the_registrys_formats(project: Path, kinds: tuple[str, ...]):
    """--report's help listed its suffixes as fixed text, and runs' -f two fixed names: both come
    from the registry, per command (a format is offered where it writes the command's report)."""
    takes_report = ("verify", "apply", "plan", "rollback", "recover")
    for command in takes_report:
        shown = " ".join(cli(project, command, "--help", kinds=kinds).out.split())
        assert ".json: JSON" in shown and "anything else: text" in shown, (command, shown)
        assert (".csv: CSV" in shown) == (command in kinds), (command, kinds, shown)
        assert (".xml: JUnit" in shown) == (command != "plan"), (command, shown)  # JUnit writes no plan
        plain = " ".join(cli(project, command, "--help", register=False).out.split())
        assert ".csv" not in plain, (command, plain)
    for command in ("verify", "apply", "runs", "plan"):
        choices = cli(project, command, "--help", kinds=kinds).out
        line = next(ln for ln in choices.splitlines() if "--format" in ln)
        assert ("csv" in line) == (command in kinds), (command, line)


def test_a_recover_report_of_a_run_found_complete_lists_the_actions_it_finished(tmp_path: Path):
    project = lab_project(tmp_path / "finished", 1)
    proc = subprocess.run([sys.executable, "-m", "deployer", "--no-log", "apply", str(playbook(project)), "--site",
                           "SITE001", "--yes", "--inventory", str(project / "sites.yaml")], cwd=project,
                          capture_output=True, text=True, timeout=180, env={**os.environ, "DEPLOYER_FAILPOINTS":
                                                                          "apply.commit=kill"})
    assert proc.returncode == -9, proc.stderr
    run = json.loads(cli(project, "runs", "--site", "SITE001", "-f", "json", register=False).out)[-1]["run"]
    path = project / "finished.json"
    r = cli(project, "recover", "--site", "SITE001", "--yes", "--break-lock", "--report", path, register=False)
    assert r.code == 0, r.err
    section = json.loads(path.read_text())["section"]
    assert section["status"] == "FINISHED" and section["run"] == run and section["kb"] == "Q241656", section
    done = [a["what"] for a in section["actions"] if a["outcome"] == "done"]
    assert "replace SRV001 C:\\SMS\\SITE.SRV\\X86.BIN\\PCMSVC32.EXE" in done and len(done) >= 16, done
