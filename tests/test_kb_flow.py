"""The SMS articles of ../shared/kb end to end on the embedded mock site: plan, apply,
verify, roll back, byte for byte; and a draft playbook from `kb import --playbook` that
loads and, once its payloads are there, plans."""

from __future__ import annotations

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conftest import ROOT, Workspace, diff, services, snapshot

# playbook -> (files replaced on DEMO: x86 and alpha, Helper.srv copies of the reset)
ARTICLES = {
    "q255284": (7, 3),  # the reset copies Pcmsvc32.exe to Helper.srv on each of the three servers
    "q225056": (5, 3),  # the same
    "q168130": (2, 0),
    "q226891": (6, 0),
}
# files the run changes besides its replacements: the client files replicated to the site
# server's own LOGON.SRV (a site server that carries one is a logon server too: issue 19 item 17)
REPLICATED_TO_SITE_SERVER = {"q255284": 5}


def _age_q225056_files(ws: Workspace) -> None:
    """The lab's baseline is a site that already has Q225056: make its files a day older,
    as on a site that never had the fix, so that there is something to apply."""
    stamp = int(datetime(1999, 1, 27, 15, 0, tzinfo=ZoneInfo("America/Los_Angeles")).timestamp()) * 10**9
    for rel in ("SITE.SRV/X86.BIN/PCMSVC32.EXE", "SITE.SRV/ALPHA.BIN/PCMSVC32.EXE",
                "SITE.SRV/MAINCFG.BOX/CLIENT.SRC/X86.BIN/PCMWIN16.EXE",
                "SITE.SRV/MAINCFG.BOX/CLIENT.SRC/X86.BIN/PCMWIN32.EXE",
                "SITE.SRV/MAINCFG.BOX/CLIENT.SRC/ALPHA.BIN/PCMWIN32.EXE"):
        os.utime(ws.server("DEMOSRV") / rel, ns=(stamp, stamp))
    for server in ("DEMOSRV", "DEMOLOG1", "DEMOAXP1"):
        for helper in (ws.server(server) / "HELPER.SRV").glob("*/PCMSVC32.EXE"):
            os.utime(helper, ns=(stamp, stamp))


@pytest.mark.parametrize("name", sorted(ARTICLES))
def test_plan_apply_verify_rollback(ws: Workspace, name: str):
    book = ws.path / "playbooks" / f"{name}.yaml"
    if name == "q225056":
        _age_q225056_files(ws)
    before = snapshot(ws.site)
    svc_before = services(ws.site)

    r = ws.cli("plan", book, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    plan = json.loads(r.out)
    replaced = [a for a in plan["actions"] if a["kind"] == "replace"]
    assert len(replaced) == ARTICLES[name][0]
    assert snapshot(ws.site) == before  # plan writes nothing

    r = ws.cli("apply", book, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "PASSED" in r.out
    assert services(ws.site) == svc_before  # every service is back as it was

    r = ws.cli("verify", book, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    report = json.loads(r.out)
    assert report["passed"] and report["summary"]["loose"] == 0
    assert report["summary"]["ok"] == ARTICLES[name][0] + ARTICLES[name][1]

    changed = diff(before, snapshot(ws.site))
    # besides the replaced files: the site reset's Helper.srv copies, and the copies Maintenance
    # Manager makes of changed client files on the logon servers when SMS_EXECUTIVE starts again
    by_sms = ("HELPER.SRV", "DEMOLOG1/D/SMS/LOGON.SRV", "DEMOAXP1/C/SMS/LOGON.SRV")
    assert len([c for c in changed if not any(part in c for part in by_sms)]) == (
        ARTICLES[name][0] + REPLICATED_TO_SITE_SERVER.get(name, 0))

    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert diff(before, snapshot(ws.site)) == []  # bytes and write times, Helper.srv copies included
    assert services(ws.site) == svc_before


def test_draft_playbook_loads_and_plans_once_payloads_are_there(ws: Workspace):
    r = ws.cli("kb", "import", ROOT / "tests" / "data" / "kb" / "Q255284.md", "-o", ws.path / "drafts",
               "--playbook", "--playbook-dir", ws.path / "playbooks", "--force")
    assert r.code == 0, r.text
    draft = ws.path / "playbooks" / "q255284.yaml"  # replaces the committed one in this workspace (--force)
    text = draft.read_text()
    assert text.startswith("# yaml-language-server: $schema=")  # the line editors read first
    assert text.splitlines()[1].startswith("# DRAFT playbook for Q255284")
    assert "# FINISH: put the hotfix files under ../payloads/q255284/<platform>/" in text
    assert "manifest: ../drafts/q255284.yaml" in text
    assert "  - stop: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]" in text
    assert "  - reset_site: {}" in text
    assert "into: '{{ sms_root }}\\Site.srv\\Maincfg.box\\Client.src\\{{ platform }}.bin'" in text
    assert "platforms: [x86]" in text  # Client.src\X86.bin in the Intel procedure
    # finishing it: the hotfix files (here the lab's stand-ins)
    r = ws.cli("lab", "init", "DEMO", "-i", ws.inventory, "-p", draft)
    assert r.code == 0, r.text
    r = ws.cli("plan", draft, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    plan = json.loads(r.out)
    kinds = [a["kind"] for a in plan["actions"]]
    assert kinds.count("replace") == 7 and "reset_site" in kinds


@pytest.mark.parametrize("article", ["Q225056.md", "Q168130.md", "Q226891.md"])
def test_drafts_of_the_other_sms_articles_load_and_plan(ws: Workspace, article: str):
    kb = article[:7].lower()
    r = ws.cli("kb", "import", ROOT / "tests" / "data" / "kb" / article, "-o", ws.path / "drafts",
               "--playbook", "--playbook-dir", ws.path / "playbooks", "--force")
    assert r.code == 0, r.text
    draft = ws.path / "playbooks" / f"{kb}.yaml"
    assert ws.cli("lab", "init", "DEMO", "-i", ws.inventory, "-p", draft).code == 0
    r = ws.cli("plan", draft, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    if article == "Q225056.md":
        # the article forgets to stop PCM before replacing its image: the draft adds it, and says so
        assert "added by the importer: the article does not say to stop SMS_PACKAGE_COMMAND_MANAGER_NT" \
            in draft.read_text()
