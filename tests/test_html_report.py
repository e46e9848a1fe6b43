"""The HTML report (`--format html -o FILE`) as a person sees it: rendered by headless
Chromium, its text checked, and a screenshot kept under test-output/screenshots/."""

from __future__ import annotations

import os
from pathlib import Path

from browser import SHOTS, dump_dom, parse, screenshot
from conftest import Workspace
from deployer import failpoints
from deployer.report import html
from deployer.sms.verify import FileResult, Report


def _apply(ws: Workspace, *extra: str):
    return ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, *extra)


def _age_a_file(ws: Workspace) -> None:
    """DEMOLOG1's Helper.srv Base.dll written a day earlier than the article lists."""
    f = next(p for p in ws.server("DEMOLOG1").rglob("*") if p.name.casefold() == "base.dll"
             and "helper.srv" in str(p).casefold())
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns - 86_400 * 10**9))


def test_verify_report_renders_in_chromium_with_the_mismatch_first(ws: Workspace, tmp_path: Path):
    assert _apply(ws).code == 0
    _age_a_file(ws)
    page = ws.path / "report.html"
    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--format", "html", "-o", page)
    assert r.code == 3, r.text
    assert "Report written to" in r.err

    dom = parse(dump_dom(page, tmp_path / "profile"))
    assert "script" not in dom.tags and "img" not in dom.tags and "link" not in dom.tags
    text = dom.text
    # the summary at the top: site, KB, when, by whom, overall status
    head = text[:text.index("Site DEMO (DMO) FAILED")]
    for expected in ("Q241656: SMS: Memory Leak in Pcmsvc32", "Site DEMO (DMO)", "KB Q241656",
                     "Command deployer verify", "When 20", "By ", "Overall status FAILED"):
        assert expected in head, expected
    assert "DEMOLOG1 1 not matching" in text and "DEMOSRV all match" in text and "DEMOAXP1 all match" in text
    # per server, the article's columns, the failing file first and marked
    headers = [cells for cls, cells in dom.rows if cells[:6] == ["Date", "Time", "Size", "File name", "Platform",
                                                                  "Version"]]
    assert len(headers) == 4  # DEMOSRV, DEMOLOG1, DEMOAXP1 and the workstation DEMOWKS1
    assert headers[0] == ["Date", "Time", "Size", "File name", "Platform", "Version", "Found", "Status"]
    files = [(cls, cells) for cls, cells in dom.rows if len(cells) == 8 and cells[0] != "Date"]
    assert len(files) == 31  # the whole article: site server, Helper.srv and Logon.srv copies, the workstation
    log1 = [(cls, cells) for cls, cells in files if "D:\\SMS\\HELPER.SRV" in cells[3]]
    assert [c[3].split()[0] for _, c in log1] == ["Base.dll", "Pcmsvc32.exe"]  # listed Pcmsvc32 first: Base failed
    cls, cells = log1[0]
    assert cls == "fail" and cells[:3] == ["9/10/99", "7:00PM", "524KB"] and cells[4] == "I386"
    assert cells[7] == "✗ OLDER" and cells[6].startswith("9/9/99 7:00PM 535,801")
    assert "earlier than listed" in cells[6]
    assert [cls for cls, _ in files].count("fail") == 1
    assert all(c[7] == "✓ OK" for cls, c in files if cls == "pass")

    width, height = screenshot(page, SHOTS / "verify-report.png", tmp_path / "profile2")
    assert (width, height) == (1280, 2400)


def test_apply_report_has_the_actions_with_timings(ws: Workspace, tmp_path: Path):
    page = ws.path / "apply.html"
    r = _apply(ws, "--format", "html", "-o", page)
    assert r.code == 0, r.text
    assert "Applied Q241656" in r.out  # the terminal still shows the run
    dom = parse(dump_dom(page, tmp_path / "profile"))
    assert "Overall status PASSED" in dom.text and "Command deployer apply" in dom.text
    actions = [cells for _, cells in dom.rows if len(cells) == 5 and cells[0] != "#"]
    assert len(actions) == 20  # preparation, then the whole article's 19 actions
    assert actions[0][1].startswith("prepare: 56 backups, 10 uploads")  # the site server's LOGON.SRV too
    assert [a[0] for a in actions[1:]] == [str(n) for n in range(1, 20)]
    assert actions[1][1] == "stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV (running -> stopped)"
    assert all(a[4] == "done" and a[3].endswith(("ms", " s")) for a in actions)
    assert "Rollback" not in dom.text
    screenshot(page, SHOTS / "apply-report.png", tmp_path / "profile2")


def test_apply_report_of_a_failed_run_has_the_rollback_record(ws: Workspace, tmp_path: Path):
    failpoints.arm("apply.action.8.after")
    page = ws.path / "failed.html"
    r = _apply(ws, "--format", "html", "-o", page)
    assert r.code == 1, r.text
    dom = parse(dump_dom(page, tmp_path / "profile"))
    text = dom.text
    assert "Overall status ROLLED BACK" in text
    assert "Failure: InjectedFault: injected fault at apply.action.8.after" in text
    assert "Rollback restored" in text
    rows = [cells for _, cells in dom.rows if len(cells) == 5 and cells[0] not in ("#",)]
    run_rows, undo_rows = rows[:20], rows[20:]
    assert [r[4] for r in run_rows[1:]] == ["done"] * 7 + ["failed"] + ["not run"] * 11
    assert [r[0] for r in undo_rows] == [str(n) for n in range(8, 0, -1)]
    assert all(r[4] == "undone" for r in undo_rows)
    screenshot(page, SHOTS / "apply-rolled-back.png", tmp_path / "profile2")


def _report(title: str, site: str = "DEMO") -> Report:
    f = FileResult(server="SRV", path="C:\\SMS\\Site.srv\\X86.BIN\\<b>.dll", name="<b>.dll", platform="I386",
                   expected_date="9/10/99", expected_time="7:00PM", expected_size="524KB", expected_version=None,
                   expected_sha256=None, status="missing", detail="not found", passed=False)
    return Report("Q241656", title, site, "DMO", "or-later", "UTC", [f])


def test_values_are_escaped_and_nothing_is_fetched():
    page = html.verify_page(_report("<script>alert(1)</script>"))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;.dll" in page
    assert "http://" not in page and "https://" not in page and " src=" not in page
    assert "default-src 'none'" in page  # the page may not load anything, even if a value tried


def test_a_fleet_report_is_one_row_per_site_linking_to_its_section():
    sections = [html.verify_section(_report("t", "EAST")), html.verify_section(_report("t", "WEST-2"))]
    page = html.render(sections, command="verify", who="op@host")
    assert page.count('href="#site-EAST"') == 1 and 'id="site-EAST"' in page
    assert 'href="#site-WEST-2"' in page and 'id="site-WEST-2"' in page
    assert "2 sites" in page and "Overall status" in page


def test_a_report_file_that_cannot_be_written_is_refused_before_the_run(ws: Workspace):
    before = ws.state()
    r = _apply(ws, "--format", "html", "-o", ws.path / "no-such-folder" / "r.html")
    assert r.code == 2 and "the folder" in r.err and "does not exist" in r.err, r.text
    # --report FILE is -o FILE with the format by its suffix: the two disagreeing, or both given, is refused
    r = _apply(ws, "-f", "json", "--report", ws.path / "r.html")
    assert r.code == 2 and "makes a html report by its suffix, but -f says json" in r.err, r.text
    r = _apply(ws, "-o", ws.path / "a.html", "--report", ws.path / "r.html")
    assert r.code == 2 and "both name the report file" in r.err, r.text
    assert ws.state() == before and not _runs_dir(ws)


def _runs_dir(ws: Workspace) -> list[Path]:
    return [p for p in ws.site.rglob("*") if p.name.casefold() == "runs"]
