"""`deployer scan` and `deployer catalog` on lab sites at several patch levels: statuses, the
order to apply, supersedence (derived and declared), agreement with verify, reads only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Workspace, snapshot

SHIPPED = ["Q168130", "Q225056", "Q226891", "Q241656", "Q255284"]


def scan(ws: Workspace, *args: str, site: str = "DEMO"):
    return ws.cli("scan", "--site", site, "-i", ws.inventory, *args)


def statuses(ws: Workspace, *args: str) -> tuple[int, dict]:
    r = scan(ws, "-f", "json", *args)
    assert r.code in (0, 3), r.text
    data = json.loads(r.out)
    (site,) = data["sites"]
    return r.code, {h["kb"]: h for h in site["hotfixes"]} | {"_site": site}


def apply(ws: Workspace, book: str) -> None:
    r = ws.cli("apply", ws.path / "playbooks" / book, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text


def put_back(ws: Workspace, template: Path, rel: str) -> None:
    """One file of DEMOSRV as the fresh lab has it (the bytes and write time before the hotfix)."""
    shutil.copy2(template / "lab" / "DEMO" / "DEMOSRV" / "C" / "SMS" / rel, ws.server("DEMOSRV") / rel)


def test_fresh_demo_needs_q241656_and_the_order_to_apply(ws: Workspace):
    code, st = statuses(ws)
    assert code == 3
    assert st["Q241656"]["status"] == "missing"
    # SMS 1.2 SP4 as the lab lays it out carries the Q225056 fix already
    assert st["Q225056"]["status"] == "installed"
    assert {k: v["status"] for k, v in st.items() if k != "_site"} == {
        "Q168130": "missing", "Q225056": "installed", "Q226891": "missing", "Q241656": "missing",
        "Q255284": "missing"}
    order = [(a["kb"], Path(a["playbook"]).name) for a in st["_site"]["apply"]]
    assert order == [("Q168130", "q168130.yaml"), ("Q241656", "q241656.yaml"), ("Q255284", "q255284.yaml"),
                     ("Q226891", "q226891.yaml")]
    # the files that decide: every Q241656 file, each older than listed
    files = st["Q241656"]["files"]
    assert len(files) == 15 and all(not f["passed"] and f["verdict"] == "older" for f in files)
    text = scan(ws)
    assert text.code == 3
    assert "MISSING        Q241656" in text.out and "deployer apply playbooks/q241656.yaml --site DEMO" in text.out


def test_after_apply_q241656_is_installed_and_after_every_playbook_nothing_is_missing(ws: Workspace):
    apply(ws, "q241656.yaml")
    code, st = statuses(ws)
    assert st["Q241656"]["status"] == "installed" and code == 3
    assert all(f["passed"] for f in st["Q241656"]["files"])
    for book in sorted((ws.path / "playbooks").glob("*.yaml")):
        apply(ws, book.name)
    code, st = statuses(ws)
    assert code == 0
    assert {st[k]["status"] for k in SHIPPED} == {"installed"} and st["_site"]["apply"] == []
    r = scan(ws)
    assert r.code == 0 and "Nothing missing or partial on 1 site(s) scanned." in r.out


def test_one_file_put_back_to_the_old_one_is_partial_and_shown_first(ws: Workspace, workspace_template: Path):
    apply(ws, "q241656.yaml")
    put_back(ws, workspace_template, "SITE.SRV/X86.BIN/PCMSVC32.EXE")
    code, st = statuses(ws)
    assert code == 3 and st["Q241656"]["status"] == "partial"
    bad = [f for f in st["Q241656"]["files"] if not f["passed"]]
    assert len(bad) == 1 and bad[0]["path"].endswith("X86.BIN\\PCMSVC32.EXE") and bad[0]["verdict"] == "older"
    assert st["_site"]["hotfixes"][0]["kb"] == "Q241656"  # the dangerous case first
    assert st["Q241656"]["why"] == "14 of 15 files at its level; not: Pcmsvc32.exe"
    text = scan(ws).out
    assert text.index("PARTIAL") < text.index("MISSING")


def test_scan_agrees_with_verify_on_every_manifest(ws: Workspace, workspace_template: Path):
    """installed exactly when `deployer verify MANIFEST` passes, on a half-patched site."""
    apply(ws, "q241656.yaml")
    apply(ws, "q168130.yaml")
    put_back(ws, workspace_template, "SITE.SRV/X86.BIN/BASE.DLL")
    _, st = statuses(ws)
    seen = set()
    for kb in SHIPPED:
        r = ws.cli("verify", ws.path / "manifests" / f"{kb.lower()}.yaml", "--site", "DEMO", "-i", ws.inventory)
        assert (st[kb]["status"] == "installed") == (r.code == 0), (kb, st[kb]["status"], r.text)
        seen.add(st[kb]["status"])
    assert {"installed", "partial", "missing"} <= seen


def test_scan_writes_nothing_and_takes_no_lock(ws: Workspace):
    before = snapshot(ws.site, include_state=True)
    assert scan(ws).code == 3
    assert scan(ws, "-f", "html", "-o", ws.path / "scan.html").code == 3
    assert snapshot(ws.site, include_state=True) == before  # no lock file, no journal, nothing


def test_the_read_once_transport_refuses_every_write(ws: Workspace):
    from deployer.scan.observe import ReadOnce, ReadOnlyViolation
    from deployer.targets.mock import MockSite

    files = ReadOnce(MockSite(ws.site).files("DEMOSRV"))
    for call in (lambda: files.write_file("x", [b""]), lambda: files.remove("SITE.SRV"),
                 lambda: files.set_mtime("SITE.SRV", 0), lambda: files.rename("a", "b"), lambda: files.makedirs("a")):
        with pytest.raises(ReadOnlyViolation):
            call()


def test_lab_sites_at_several_patch_levels(ws: Workspace):
    def level(*spec: str) -> dict:
        r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory, *spec)
        assert r.code == 0, r.text
        return statuses(ws)[1]

    # an older Pcmsvc32 hotfix: the fresh lab (Q225056's files)
    st = level()
    assert (st["Q225056"]["status"], st["Q241656"]["status"]) == ("installed", "missing")
    st = level("--patched-with", "Q241656")
    assert (st["Q225056"]["status"], st["Q241656"]["status"]) == ("installed", "installed")
    st = level("--patched-with", "Q241656:Base.dll+Pcmsvc32.exe")  # half-patched by hand
    assert st["Q241656"]["status"] == "partial"
    passed = {Path(f["path"].replace("\\", "/")).name for f in st["Q241656"]["files"] if f["passed"]}
    assert passed == set()  # the deciding files of a partial hotfix are those not at its level
    st = level("--patched-with", "Q241656,Q255284,Q226891,Q168130")
    assert {st[k]["status"] for k in SHIPPED} == {"installed"}


def test_lab_patched_with_bad_input_touches_nothing(ws: Workspace):
    before = snapshot(ws.site, include_state=True)
    for spec, words in [("Q999999", "not in the catalogue"), ("Q241656:Foo.dll", "Foo.dll not in its manifest"),
                        ("nonsense", "expected an article such as Q241656")]:
        r = ws.cli("lab", "init", "DEMO", "--force", "-i", ws.inventory, "--patched-with", spec)
        assert r.code == 2 and words.casefold() in r.err.casefold() and "Traceback" not in r.text, r.text
    r = ws.cli("lab", "init", "DEMO", "-i", ws.inventory, "--patched-with", "Q241656")
    assert r.code == 2 and "add --force" in r.err
    assert snapshot(ws.site, include_state=True) == before


# --- supersedence --------------------------------------------------------------------------------


def catalog_copy(ws: Workspace, name: str = "cat") -> Path:
    dest = ws.path / name
    shutil.copytree(ws.path / "manifests", dest)
    return dest


def test_derived_supersedence_and_the_graph(ws: Workspace):
    r = ws.cli("catalog", "graph", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "Q241656 (9/10/99) SMS: Memory Leak in Pcmsvc32" in r.out
    assert "+- supersedes Q225056 (1/28/99)" in r.out and "[derived]" in r.out
    # Q255284 lacks Base.dll, so it does not supersede Q241656; Q226891 lacks the PCM files
    dot = ws.cli("catalog", "graph", "-f", "dot", "-i", ws.inventory).out
    assert dot.startswith("digraph supersedence {")
    assert '"Q241656" -> "Q225056" [label="derived"];' in dot and '"Q255284" -> "Q225056"' in dot
    assert '"Q255284" -> "Q241656"' not in dot and '"Q226891" -> "Q241656"' not in dot


def test_a_superseded_hotfix_is_not_missing_and_not_in_the_order(ws: Workspace):
    cat = catalog_copy(ws)
    # exact: Q241656's later Pcmsvc32 no longer passes Q225056's table, but Q241656 replaces it
    q = cat / "q225056.yaml"
    q.write_text(q.read_text().replace("rule: or-later", "rule: exact"))
    # declared: Q226891 says it replaces Q168130 (files cannot show it: none in common)
    q = cat / "q226891.yaml"
    q.write_text(q.read_text() + "supersedes: [Q168130]\n")
    _, st = statuses(ws, "--catalog", str(cat))
    assert st["Q225056"]["status"] == "installed"  # the lab's files are Q225056's, exactly
    order = [a["kb"] for a in st["_site"]["apply"]]
    assert order == ["Q241656", "Q255284", "Q226891"]  # Q168130: Q226891, later in the list, replaces it
    skipped = {s["kb"]: s["because"] for s in st["_site"]["skipped"]}
    assert list(skipped) == ["Q168130"] and "Q226891" in skipped["Q168130"]
    apply(ws, "q241656.yaml")
    apply(ws, "q226891.yaml")
    # Q226891's procedure has no site reset: the helper servers keep Q241656's Base.dll
    _, st = statuses(ws, "--catalog", str(cat))
    assert st["Q226891"]["status"] == "partial" and "only Helper.srv copies: a site reset" in st["Q226891"]["why"]
    assert {Path(f["path"].replace("\\", "/")).parent.parent.name for f in st["Q226891"]["files"]} == {"HELPER.SRV"}
    assert st["Q168130"]["status"] == "missing"  # what replaces it is not installed yet
    r = ws.cli("sendcode", "--site", "DEMO", "-i", ws.inventory, "SMS_SITE_CONFIG_MANAGER", "194")
    assert r.code == 0, r.text
    code, st = statuses(ws, "--catalog", str(cat))
    assert st["Q226891"]["status"] == "installed"
    assert st["Q225056"]["status"] == "superseded" and st["Q225056"]["superseded_by"] == ["Q241656"]
    assert st["Q168130"]["status"] == "superseded" and st["Q168130"]["superseded_by"] == ["Q226891"]
    assert code == 3 and [a["kb"] for a in st["_site"]["apply"]] == ["Q255284"]
    graph = ws.cli("catalog", "graph", "--catalog", cat).out
    assert "+- supersedes Q168130 (2/24/99) SMS: Despooler Service Processes SNI Files Slowly [declared]" in graph


def test_declared_cycles_and_unknown_articles_do_not_hang(ws: Workspace):
    cat = catalog_copy(ws)
    for name, other in (("q168130.yaml", "Q226891"), ("q226891.yaml", "Q168130, Q000001")):
        q = cat / name
        q.write_text(q.read_text() + f"supersedes: [{other}]\n")
    r = ws.cli("catalog", "graph", "--catalog", cat)
    assert r.code == 0 and "(a cycle)" in r.out, r.text
    assert "declares it supersedes Q000001, which is not in the catalogue" in r.err
    code, st = statuses(ws, "--catalog", str(cat))
    assert code == 3 and st["Q168130"]["status"] == "missing"


# --- the catalogue -------------------------------------------------------------------------------


def test_catalog_list_names_unreadable_manifests_and_loads_the_rest(ws: Workspace):
    cat = catalog_copy(ws)
    (cat / "broken.yaml").write_text("kb: Q123456\nfiles:\n  - {date: 11/31/99, name: X.dll}\n")
    (cat / "tabs.yaml").write_text("kb: [\n")
    flagged = cat / "q168130.yaml"
    flagged.write_text(flagged.read_text().replace("line: 82}", 'line: 82, review: "size read from 481.040"}'))
    r = ws.cli("catalog", "list", "--catalog", cat)
    assert r.code == 0, r.text
    assert r.out.startswith("5 hotfixes in ") and "2 manifests not loaded" in r.out
    assert "broken.yaml:3" in r.err and "tabs.yaml" in r.err and "Traceback" not in r.text
    assert "flagged for review: line 82: Smsinst.dll (Alpha): size read from 481.040" in r.out
    assert "files (9): Base.dll, Pcmdos_2.exe, Pcmdos_4.exe, Pcmsvc32.exe, Pcmwin16.exe, Pcmwin32.exe" in r.out
    assert "playbook: " in r.out
    # the scan goes on too: each unreadable manifest is one `cannot tell`
    code, st = statuses(ws, "--catalog", str(cat))
    assert code == 3 and st["broken.yaml"]["status"] == "cannot tell" and st["tabs.yaml"]["status"] == "cannot tell"


def test_only_flagged_rows_failing_is_cannot_tell(ws: Workspace):
    cat = catalog_copy(ws)
    q = cat / "q225056.yaml"  # installed on the lab; one row made to fail, and flagged
    q.write_text(q.read_text().replace('size: "269,280",   name: Pcmsvc32.exe, platform: x86,   line: 61}',
                                       'size: "269,281",   name: Pcmsvc32.exe, platform: x86,   line: 61, '
                                       'review: "size unclear"}'))
    _, st = statuses(ws, "--catalog", str(cat))
    assert st["Q225056"]["status"] == "cannot tell" and "flagged for review" in st["Q225056"]["why"]
    assert all(f["flagged"] for f in st["Q225056"]["files"])


def test_bad_input_exits_2_without_a_traceback(ws: Workspace, tmp_path: Path):
    for args, words in [(("--catalog", str(tmp_path / "nope")), "no such folder"),
                        (("--catalog", str(ws.inventory)), "is a file, not a folder"),
                        (("-f", "xml"), "xml"), (("--site", "NOPE"), "NOPE"), (("--forks", "0"), "--forks 0")]:
        r = ws.cli("scan", "-i", ws.inventory, *(args if args[0] == "--site" else ("--site", "DEMO", *args)))
        assert r.code == 2 and words in r.text and "Traceback" not in r.text, r.text
    r = ws.cli("scan", "-i", ws.inventory)
    assert r.code == 2 and "--site" in r.text
    r = ws.cli("scan", "--site", "DEMO", "-i", ws.inventory, "-o", tmp_path)
    assert r.code == 2 and "is a folder" in r.text


def test_outside_text_is_escaped_in_every_format(ws: Workspace):
    cat = catalog_copy(ws)
    q = cat / "q168130.yaml"
    q.write_text(q.read_text().replace('title: "SMS: Despooler', 'title: "\\e[31m<b>SMS</b>: Despooler'))
    text = scan(ws, "--catalog", str(cat)).out
    assert "\x1b" not in text and "\\x1b[31m" in text
    junit = scan(ws, "--catalog", str(cat), "-f", "junit").out
    assert "\x1b" not in junit and "&lt;b&gt;" in junit
    html = ws.path / "s.html"
    scan(ws, "--catalog", str(cat), "-f", "html", "-o", html)
    page = html.read_text()
    assert "<b>SMS</b>" not in page and "&lt;b&gt;SMS&lt;/b&gt;" in page


def test_kb_import_writes_products_and_the_hotfixes_an_article_says_it_replaces(ws: Workspace, tmp_path: Path):
    from conftest import ROOT

    lines = (ROOT / "tests" / "data" / "kb" / "Q255284.md").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip() == "STATUS")
    lines[at:at] = ["\tThis hotfix supersedes the fix described in the following article in the",
                    "\tMicrosoft Knowledge Base: Q225056 SMS: PCMSVC32 Runs a Job After Expired Date.",
                    "\tNOTE: This hotfix is superseded by the fix in Q999999.", ""]
    article = tmp_path / "Q255284.md"
    article.write_text("\n".join(lines) + "\n")
    cat = ws.path / "elsewhere" / "cat"
    cat.mkdir(parents=True)
    r = ws.cli("kb", "import", article, "-o", cat / "q255284.yaml")
    assert r.code == 0, r.text
    text = (cat / "q255284.yaml").read_text()
    assert 'products: ["Microsoft Systems Management Server version 1.2 SP4"]' in text
    assert f"supersedes: [Q225056]   # the article says so (Q225056 at line {at + 1})" in text
    shutil.copy(ws.path / "manifests" / "q225056.yaml", cat)
    r = ws.cli("catalog", "graph", "--catalog", cat)
    assert "+- supersedes Q225056 (1/28/99) SMS: PCMSVC32 Runs a Job After Expired Date [declared, derived]" in r.out
    assert "Q999999" not in r.out + r.err
    lst = ws.cli("catalog", "list", "--catalog", cat, "-f", "json")
    h = next(h for h in json.loads(lst.out)["hotfixes"] if h["kb"] == "Q255284")
    assert h["products"] == ["Microsoft Systems Management Server version 1.2 SP4"] and h["supersedes"] == ["Q225056"]
    # imported elsewhere, the catalogue still finds the project's procedure for it (playbooks/ beside the inventory)
    lst = ws.cli("catalog", "list", "--catalog", cat, "-i", ws.inventory, "-f", "json")
    h = next(h for h in json.loads(lst.out)["hotfixes"] if h["kb"] == "Q255284")
    assert h["playbook"] == "playbooks/q255284.yaml"  # relative to where the command ran, as one types it


def test_a_site_that_cannot_be_reached_is_reported_and_the_others_scanned(ws: Workspace, monkeypatch):
    monkeypatch.setenv("DEPLOYER_TEST_FAR_PW", "x")
    inv = ws.path / "far.yaml"
    inv.write_text(ws.inventory.read_text().rstrip("\n") + "\n" + (
        "  FAR:\n    code: FAR\n    timezone: UTC\n    platforms: [x86]\n    servers:\n"
        "      FARSRV: {role: site_server, platform: x86, sms_root: 'C:\\SMS', files: {transport: smb, host: 127.0.0.1, "
        "port: 1, username: u, password: {env: DEPLOYER_TEST_FAR_PW}, share: S}, services: {transport: scmr, "
        "host: 127.0.0.1, port: 1, username: u, password: {env: DEPLOYER_TEST_FAR_PW}}}\n"))
    r = ws.cli("scan", "--site", "FAR", "-i", inv)
    assert r.code == 1 and "Site FAR (FAR): not scanned: FARSRV: connect to share S" in r.out, r.text
    assert "Not scanned (could not be reached): FAR" in r.out and "Traceback" not in r.text
    r = ws.cli("scan", "--site", "FAR,DEMO", "-i", inv, "-f", "json")
    assert r.code == 3, r.text
    sites = {s["site"]: s for s in json.loads(r.out)["sites"]}
    assert "1225" in sites["FAR"]["error"] and sites["DEMO"]["summary"]["missing"] == 4


def test_a_time_the_sites_clocks_skipped_is_cannot_tell_not_a_crash(ws: Workspace):
    cat = catalog_copy(ws)
    q = cat / "q168130.yaml"  # DEMO is in America/Los_Angeles: 2:30 AM on 4/4/99 never happened there
    q.write_text(q.read_text().replace("{date: 2/24/99, time: 1:35pm", "{date: 4/4/99, time: 2:30am"))
    code, st = statuses(ws, "--catalog", str(cat))
    assert st["Q168130"]["status"] == "cannot tell" and "does not exist in America/Los_Angeles" in st["Q168130"]["why"]
    assert code == 3 and st["Q241656"]["status"] == "missing"
    r = ws.cli("verify", q, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2 and "does not exist in America/Los_Angeles" in r.err  # verify refuses the same manifest


def test_two_names_that_differ_only_in_case_are_cannot_tell(ws: Workspace):
    """A share on Linux can hold PCMSVC32.EXE and Pcmsvc32.exe; Windows, and the services, one."""
    folder = ws.server("DEMOSRV") / "SITE.SRV" / "X86.BIN"
    (folder / "Pcmsvc32.exe").write_bytes((folder / "PCMSVC32.EXE").read_bytes())
    _, st = statuses(ws)
    for kb in ("Q225056", "Q241656", "Q255284"):  # each names Pcmsvc32.exe (x86)
        assert st[kb]["status"] == "cannot tell", (kb, st[kb])
        assert "2 files whose names differ only in case: PCMSVC32.EXE, Pcmsvc32.exe" in st[kb]["why"]
    assert st["Q168130"]["status"] == "missing"


def test_outside_text_is_escaped_in_the_graph_and_the_list(ws: Workspace):
    cat = catalog_copy(ws)
    q = cat / "q225056.yaml"  # in the graph: Q241656 and Q255284 supersede it
    q.write_text(q.read_text().replace('title: "SMS: PCMSVC32', 'title: "\\e[2J\\"quoted\\" \\\\ SMS: PCMSVC32'))
    dot = ws.cli("catalog", "graph", "--catalog", cat, "-f", "dot").out
    # shown as every output shows it (`\x1b`, its backslash doubled in a DOT string), not blanked
    assert "\x1b" not in dot and 'tooltip="\\\\x1b[2J\\"quoted\\" \\\\ SMS: PCMSVC32' in dot
    for args in (("graph",), ("list",)):
        out = ws.cli("catalog", *args, "--catalog", cat).out
        assert "\x1b" not in out and '\\x1b[2J"quoted" \\ SMS: PCMSVC32' in out


def test_a_catalogue_with_draft_playbooks_beside_its_manifests(ws: Workspace, tmp_path: Path):
    """`kb import ... -o DIR --playbook` writes both into one folder: the drafts are playbooks, not problems."""
    from conftest import ROOT

    out = tmp_path / "kb"
    r = ws.cli("kb", "import", ROOT / "tests" / "data" / "kb" / "Q255284.md", ROOT / "tests" / "data" / "kb" /
               "Q226891.md", "-o", f"{out}/", "--playbook")
    assert r.code == 0 and (out / "q255284.playbook.yaml").is_file(), r.text
    data = json.loads(ws.cli("catalog", "list", "--catalog", out, "-i", ws.inventory, "-f", "json").out)
    assert data["problems"] == []
    assert {h["kb"]: Path(h["playbook"]).name for h in data["hotfixes"]} == {
        "Q255284": "q255284.playbook.yaml", "Q226891": "q226891.playbook.yaml"}  # its own draft first


def test_bidi_controls_and_newlines_in_an_article_are_shown_one_way_in_every_format(ws: Workspace):
    """The scan's text writer escaped by itself: a bidi override came out as `\\x202e` (read as a
    space and "2e"), a newline as `\\x0a`, and a right-to-left mark raw. Every output now uses
    report/escape.py's one escape, and no format carries a raw control character."""
    import re
    import xml.etree.ElementTree as ET

    raw = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
    cat = catalog_copy(ws)
    q = cat / "q168130.yaml"
    q.write_text(q.read_text().replace('title: "SMS: Despooler', 'title: "\\u202eevil\\u200f\\nFAKE LINE\\e[2J SMS: Despooler'))
    text = scan(ws, "--catalog", str(cat)).out
    assert not raw.search(text), raw.search(text)
    assert "\\u202eevil\\u200f\\nFAKE LINE\\x1b[2J SMS: Despooler" in text, text
    assert "\\x202e" not in text and not any(line.startswith("FAKE LINE") for line in text.splitlines())
    for fmt in ("json", "junit", "html"):
        out = ws.path / f"bidi.{fmt}"
        r = scan(ws, "--catalog", str(cat), "-f", fmt, "-o", out)
        assert r.code in (0, 3), r.text
        written = out.read_text(encoding="utf-8")
        assert not raw.search(written), (fmt, raw.search(written))
        if fmt == "junit":
            ET.fromstring(written.encode("utf-8"))  # well-formed XML
        if fmt == "json":
            assert "\u202eevil" in written or "\\u202eevil" in written  # the text kept, as JSON escapes it
