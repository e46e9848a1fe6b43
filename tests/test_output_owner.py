"""A writer never overwrites a file it did not write without --force: every command that
writes a file the operator names (-o, --out, --report) refuses a file someone else wrote
there (exit 2, its bytes unchanged, no temporary file left), replaces its own earlier output,
replaces anything with --force, and writes to /dev/null."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ROOT, Workspace, copy_workspace, lab_project, run_cli
from deployer.model.owned import replaceable

HAND = b"my notes: keep these\n"
SEED = ROOT.parent / "shared" / "seeds" / "Q123499-pcmdump-instruction-files.txt"


def _pcm_sample(ws: Workspace) -> Path:
    text = SEED.read_text(encoding="utf-8")
    start = text.index("D:\\SMS\\LOGON.SRV\\PCMINS.BOX>PCMDUMP MDM00005.INS")
    p = ws.path / "mdm00005.txt"
    p.write_text(text[start:text.index("\n\nAdditional query words") + 1], encoding="utf-8")
    return p


# id, file name, the command line given the output path, the exit codes a written report may have
CASES = [
    ("verify-text", "v.txt", lambda ws, o: ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-o", o], {3}),
    ("verify-json", "v.json", lambda ws, o: ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-f", "json",
                                             "-o", o], {3}),
    ("verify-junit", "v.xml", lambda ws, o: ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-f", "junit",
                                             "-o", o], {3}),
    ("verify-html", "v.html", lambda ws, o: ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-f", "html",
                                             "-o", o], {3}),
    ("plan-out", "p.json", lambda ws, o: ["plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--out", o], {0}),
    ("plan-o", "p.json", lambda ws, o: ["plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-o", o], {0}),
    ("apply-dry-run", "p.json", lambda ws, o: ["apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--dry-run",
                                               "-o", o], {0}),
    ("schema", "s.json", lambda ws, o: ["schema", "sites", "-o", o], {0}),
    ("scan-text", "s.txt", lambda ws, o: ["scan", "-s", "DEMO", "-i", ws.inventory, "-o", o], {3}),
    ("scan-json", "s.json", lambda ws, o: ["scan", "-s", "DEMO", "-i", ws.inventory, "-f", "json", "-o", o], {3}),
    ("scan-junit", "s.xml", lambda ws, o: ["scan", "-s", "DEMO", "-i", ws.inventory, "-f", "junit", "-o", o], {3}),
    ("scan-html", "s.html", lambda ws, o: ["scan", "-s", "DEMO", "-i", ws.inventory, "-f", "html", "-o", o], {3}),
    ("from-rservice", "h.yaml", lambda ws, o: ["inventory", "from-rservice", ROOT / "tests/data/rservice/pcm.ini",
                                               "-o", o], {0}),
    ("pcm-yaml", "r.yaml", lambda ws, o: ["pcm", "convert", _pcm_sample(ws), "-o", o], {0}),
    # every other file a command writes for the operator, through the one writer (commands/common.emit)
    ("plan-report", "p.txt", lambda ws, o: ["plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--report", o], {0}),
    ("recover-report", "r.json", lambda ws, o: ["recover", "-s", "DEMO", "-i", ws.inventory, "--yes", "--report", o],
     {0}),
    ("rollback-report", "r.html", lambda ws, o: ["rollback", "-s", "DEMO", "-i", ws.inventory, "--yes", "--report",
                                                 o], {0}),
    ("apply-report", "a.xml", lambda ws, o: ["apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--yes",
                                             "--report", o], {0}),
    ("plan-report-noted", "p.txt", lambda ws, o: ["plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--note",
                                                  "CHG-1", "--report", o], {0}),
    ("verify-report-noted", "v.txt", lambda ws, o: ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--note",
                                                    "CHG-1", "--report", o], {3}),
]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("name,args,codes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_file_deployer_did_not_write_is_refused_and_its_own_is_replaced(ws: Workspace, name, args, codes):
    out = ws.path / name
    out.write_bytes(HAND)
    before = ws.state()
    r = ws.cli(*args(ws, out))
    assert r.code == 2 and "exists and was not written by deployer; give --force to replace it" in r.err, r.text
    assert out.read_bytes() == HAND and not _leftovers(ws.path) and ws.state() == before

    r = ws.cli(*args(ws, out), "--force")
    assert r.code in codes, r.text
    written = out.read_bytes()
    assert written != HAND and written

    r = ws.cli(*args(ws, out))  # deployer's own earlier output: replaced without --force
    assert r.code in codes, r.text
    assert out.read_bytes() and out.read_bytes() != HAND and not _leftovers(ws.path)

    r = ws.cli(*args(ws, Path(os.devnull)))
    assert r.code in codes, r.text


def test_a_deployer_report_edited_into_something_else_is_refused(ws: Workspace):
    out = ws.path / "v.json"
    args = ["verify", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-f", "json", "-o", out]
    assert ws.cli(*args).code == 3
    out.write_text('{"mine": true}\n')
    assert ws.cli(*args).code == 2 and out.read_text() == '{"mine": true}\n'


def test_apply_report_refused_before_the_run(ws: Workspace):
    out = ws.path / "run.json"
    out.write_bytes(HAND)
    before = ws.state()
    r = ws.cli("apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--yes", "-f", "json", "-o", out)
    assert r.code == 2 and "not written by deployer" in r.err, r.text
    assert out.read_bytes() == HAND and ws.state() == before
    r = ws.cli("apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--yes", "-f", "html", "-o", out, "--force")
    assert r.code == 0, r.text
    assert b'<meta name="generator" content="deployer' in out.read_bytes()
    r = ws.cli("apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--yes", "-f", "json", "-o", out)
    assert r.code == 0 and out.read_text().startswith('{\n "generator": "deployer '), r.text


def test_a_saved_plan_still_applies_after_it_was_written(ws: Workspace):
    out = ws.path / "p.json"
    assert ws.cli("plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-o", out).code == 0
    assert ws.cli("plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-o", out).code == 0
    r = ws.cli("apply", out, "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text


@pytest.fixture(scope="module")
def fleet_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab_project(tmp_path_factory.mktemp("fleet-template"), 2)


@pytest.fixture
def fleet(fleet_template: Path, tmp_path: Path) -> Path:
    """A two-site fleet of its own (its stand-in payloads shared: a run only reads them)."""
    return copy_workspace(fleet_template, tmp_path / "fleet")


@pytest.mark.parametrize("name", ["f.txt", "f.json", "f.xml", "f.html"])
def test_a_fleet_report_does_not_replace_a_file_deployer_did_not_write(fleet: Path, name: str):
    out = fleet / name
    out.write_bytes(HAND)

    def recover(*extra):
        return run_cli("recover", "--all", "-i", fleet / "sites.yaml", "--fleet-dir", fleet / "fleets", "--yes",
                       "--report", out, *extra, cwd=fleet)

    r = recover()
    assert r.code == 2 and "not written by deployer" in r.err and out.read_bytes() == HAND, r.text
    assert recover("--force").code == 0 and out.read_bytes() != HAND
    assert recover().code == 0 and out.read_bytes() != HAND
    pb = fleet / "playbooks" / "q241656.yaml"
    v = fleet / ("v" + name)
    v.write_bytes(HAND)
    r = run_cli("verify", pb, "--all", "-i", fleet / "sites.yaml", "-f", {"f.txt": "text", "f.json": "json",
                "f.xml": "junit", "f.html": "html"}[name], "-o", v, cwd=fleet)
    assert r.code == 2 and v.read_bytes() == HAND, r.text


def test_empty_files_and_fifos_are_written(tmp_path: Path):
    empty = tmp_path / "empty.json"
    empty.touch()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    hand = tmp_path / "hand.json"
    hand.write_bytes(HAND)
    assert replaceable(empty) and replaceable(fifo) and replaceable(tmp_path / "none") and not replaceable(hand)
    r = run_cli("schema", "sites", "-o", empty)
    assert r.code == 0 and empty.read_text() == run_cli("schema", "sites").out  # the schema as printed


def test_apply_dry_run_detailed_exitcode(ws: Workspace):
    r = ws.cli("apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--dry-run", "--detailed-exitcode")
    assert r.code == 5, r.text
    r = ws.cli("apply", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "--yes", "--detailed-exitcode")
    assert r.code == 2 and "--dry-run" in r.err, r.text


def test_validate_checks_a_saved_plan_as_apply_would_offline(ws: Workspace):
    plan = ws.path / "p.json"
    assert ws.cli("plan", ws.playbook, "-s", "DEMO", "-i", ws.inventory, "-o", plan).code == 0
    r = ws.cli("validate", plan, "-i", ws.inventory)
    assert r.code == 0 and "valid plan Q241656 for site DEMO" in r.out, r.text
    edited = ws.path / "edited.json"
    edited.write_text(plan.read_text().replace('"DEMO"', '"DEMO2"', 1))
    r = ws.cli("validate", edited, "-i", ws.inventory)
    assert r.code == 2 and "digest does not match" in r.err, r.text
    manifest = ws.path / "manifests" / "q241656.yaml"
    manifest.write_text(manifest.read_text() + "\n# changed\n")
    r = ws.cli("validate", plan, "-i", ws.inventory)
    assert r.code == 2 and "changed since the plan was made" in r.err, r.text


def _a_payload(ws: Workspace) -> Path:
    return next(p for p in sorted((ws.path / "payloads" / "q241656").rglob("*")) if p.is_file() and not p.name.startswith("."))  # not lab's record


def test_lab_init_never_replaces_a_real_payload_with_a_stand_in(ws: Workspace):
    """The one rule of issue 19 item 2 (tests/test_standins.py has the rest): a payload lab did not
    write stays, with or without --force, and lab says so."""
    real = _a_payload(ws)
    real.write_bytes(b"MZ the real hotfix file, as Microsoft shipped it\n")
    args = ("lab", "init", "DEMO", "-i", ws.inventory, "-p", ws.playbook)
    for extra in ((), ("--force",)):
        r = ws.cli(*args, *extra)
        assert r.code == 0 and (not extra or "not a stand-in lab wrote" in r.text), r.text
        assert real.read_bytes() == b"MZ the real hotfix file, as Microsoft shipped it\n"


def test_lab_init_never_deletes_or_fills_a_folder_it_did_not_make(ws: Workspace):
    inv = ws.inventory.read_text().replace("mock: {path: lab/DEMO}", "mock: {path: notes}")
    assert inv != ws.inventory.read_text()
    ws.inventory.write_text(inv)
    notes = ws.path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine\n")
    for extra in ((), ("--force",)):
        r = ws.cli("lab", "init", "DEMO", "-i", ws.inventory, *extra)
        assert r.code == 2 and "is not a mock site `deployer lab init` made" in r.err, r.text
        assert [p.name for p in notes.iterdir()] == ["todo.txt"] and (notes / "todo.txt").read_text() == "mine\n"


def test_dev_stdout_onto_a_file_the_shell_opened_appends_and_replaces_nothing(tmp_path: Path):
    import subprocess
    import sys

    log = tmp_path / "log.txt"
    log.write_text("earlier lines\n")
    with open(log, "ab") as fh:  # `deployer schema sites -o /dev/stdout >> log.txt`
        p = subprocess.run([sys.executable, "-m", "deployer", "schema", "sites", "-o", "/dev/stdout"], stdout=fh,
                           stderr=subprocess.PIPE, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert log.read_text() == "earlier lines\n" + run_cli("schema", "sites").out
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")
