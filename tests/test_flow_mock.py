"""Q241656 end to end on the embedded mock site: plan, apply, verify, second run, saved plans."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

from conftest import Workspace, diff, services, snapshot

MANIFEST_FILES = 9  # rows of the article's table
HELPER_COPIES = 6  # Pcmsvc32.exe and Base.dll in Helper.srv on each of the three servers
LOGON_COPIES = 15  # the 5 client files (4 x86, 1 Alpha) in Logon.srv on each logon server: the two, and the site server (it carries LOGON.SRV)
WORKSTATION_FILES = 1  # Pcmsvc32.exe in DEMOWKS1's C:\PCMSVC
ACTIONS = 19  # 9 replaces, 4 service transitions, the reset, replication, client update, 3 on DEMOWKS1
CHECKED = MANIFEST_FILES + HELPER_COPIES + LOGON_COPIES + WORKSTATION_FILES


def test_full_flow_patches_demo_and_verifies(ws: Workspace):
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert f"Applied Q241656 to site DEMO: {ACTIONS} actions" in r.out
    assert f"Summary: {CHECKED} files: {CHECKED} ok, 0 newer, 0 older, 0 missing, 0 mismatch. PASSED" in r.out

    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "--format", "json", "-i", ws.inventory)
    assert r.code == 0, r.text
    report = json.loads(r.out)
    assert report["passed"] is True
    assert report["summary"]["ok"] == CHECKED
    assert {f["status"] for f in report["files"]} == {"ok"}
    # the files really carry the article's attributes, in the site's local time
    pcm = next(f for f in report["files"] if f["path"] == r"C:\SMS\SITE.SRV\X86.BIN\PCMSVC32.EXE")
    assert (pcm["actual_date"], pcm["actual_time"], pcm["expected_size"]) == ("9/10/99", "7:04PM", "264KB")
    assert pcm["actual_mtime_utc"] == "1999-09-11T02:04:00+00:00"  # 7:04 PM PDT
    assert 263 * 1024 < pcm["actual_size"] <= 264 * 1024

    # services are back as the article leaves them, and the reset reached every managed server
    assert all(state == "running" for svcs in services(ws.site).values() for state in svcs.values())
    helper = (ws.server("DEMOAXP1") / "HELPER.SRV" / "ALPHA.BIN" / "PCMSVC32.EXE").read_bytes()
    payload = (ws.path / "payloads" / "q241656" / "alpha" / "Pcmsvc32.exe").read_bytes()
    assert helper == payload


def test_second_run_does_nothing_and_says_so(ws: Workspace):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    before = snapshot(ws.site, include_state=True)
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "Nothing to do: site DEMO already has Q241656: 10 files" in r.out  # the workstation's included
    assert "No service was touched" in r.out
    after = snapshot(ws.site, include_state=True)
    assert diff(before, after) == []  # not even the mock SCM's state file was rewritten


def test_plan_writes_nothing(ws: Workspace, tmp_path):
    before = snapshot(ws.site, include_state=True)
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--out", tmp_path / "plan.json")
    assert r.code == 0, r.text
    r2 = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--format", "json")
    assert r2.code == 0
    r3 = ws.cli("apply", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "--dry-run")
    assert r3.code == 0
    after = snapshot(ws.site, include_state=True)
    assert diff(before, after) == []  # bytes and write times of every file, state files included
    assert not list(ws.site.rglob(".deployer"))


def test_plan_lists_concrete_paths_sizes_dates_and_services(ws: Workspace):
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    out = r.out
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV: running -> stopped" in out
    assert "2. stop SMS_EXECUTIVE on DEMOSRV: running -> stopped" in out
    assert r"replace DEMOSRV C:\SMS\SITE.SRV\X86.BIN\PCMSVC32.EXE" in out
    assert "269,280 bytes, 1/28/99 3:30PM [older]  ->  269,544 bytes, 9/10/99 7:04PM" in out
    assert r"replace DEMOSRV C:\SMS\SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMDOS_2.EXE" in out
    assert "PCMDOS_2" not in out.split("ALPHA.BIN")[-1].split("\n")[0]
    assert "reset the site: restart SMS_SITE_CONFIG_MANAGER on DEMOSRV, then send it code 194" in out
    assert r"DEMOLOG1 D:\SMS\HELPER.SRV\X86.BIN\PCMSVC32.EXE" in out
    assert ("Plan: 19 actions: 10 files to replace, 6 service transitions, 1 site reset (6 Helper.srv copies), "
            "15 Logon.srv copies awaited, 1 client update.") in out
    data = json.loads(ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    kinds = [a["kind"] for a in data["actions"]]
    assert kinds == ["stop", "stop"] + ["replace"] * 9 + ["start", "start", "reset_site", "wait_for_replication",
                                                          "force_client_update", "stop", "replace", "start"]
    # Intel only files go to x86 alone
    assert {a["platform"] for a in data["actions"] if a.get("file") == "Pcmdos_2.exe"} == {"x86"}


def test_partially_patched_site_plans_only_what_is_missing(ws: Workspace):
    # the Alpha client file is already newer (a later hotfix): or-later skips it
    src = ws.path / "payloads" / "q241656" / "alpha" / "Pcmwin32.exe"
    dst = ws.server("DEMOSRV") / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "ALPHA.BIN" / "PCMWIN32.EXE"
    shutil.copy(src, dst)
    import os

    os.utime(dst, ns=(0, 956_426_340 * 10**9))  # 4/22/2000, Q255284's build
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    data = json.loads(r.out)
    assert len([a for a in data["actions"] if a["kind"] == "replace" and a["server"] == "DEMOSRV"]) == 8
    assert any("PCMWIN32.EXE" in s["what"] and "later than" in s["reason"] for s in data["skipped"])
    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    newer = [f for f in json.loads(r.out)["files"] if f["status"] == "newer"]
    assert len(newer) == 1 and newer[0]["passed"]


def test_verify_reports_pre_hotfix_site_and_exits_3(ws: Workspace, tmp_path):
    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 3
    assert "older" in r.out and "FAILED" in r.out
    assert "Date     Time    Size   File name     Platform  Status" in r.out  # reads like the article's table
    junit = tmp_path / "r.xml"
    r = ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "junit", "-o", junit)
    assert r.code == 3
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites" and int(root.get("tests")) == CHECKED and int(root.get("failures")) == CHECKED
    assert {s.get("name") for s in root} == {"Q241656.DEMO.DEMOSRV", "Q241656.DEMO.DEMOLOG1", "Q241656.DEMO.DEMOAXP1",
                                             "Q241656.DEMO.DEMOWKS1"}


def test_verify_a_manifest_alone_uses_sms_layout(ws: Workspace):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    r = ws.cli("verify", ws.path / "manifests" / "q241656.yaml", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    paths = {f["path"] for f in data["files"]}
    assert r"C:\SMS\SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMWIN16.EXE" in paths  # a client file
    assert r"D:\SMS\HELPER.SRV\X86.BIN\PCMSVC32.EXE" in paths  # a service file, on a logon server
    assert data["summary"]["total"] == MANIFEST_FILES + HELPER_COPIES  # a manifest alone: the SMS layout only


def test_saved_plan_applies_exactly_and_refuses_a_changed_target(ws: Workspace, tmp_path):
    plan = tmp_path / "plan.json"
    assert ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-o", plan).code == 0
    # someone touches one file after the plan was made
    target = ws.server("DEMOSRV") / "SITE.SRV" / "X86.BIN" / "BASE.DLL"
    before = snapshot(ws.site)
    st = target.stat()
    import os

    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 60 * 10**9))
    changed = snapshot(ws.site)
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "the target changed since the plan was made" in r.err
    assert r"DEMOSRV C:\SMS\SITE.SRV\X86.BIN\BASE.DLL changed" in r.err
    assert diff(changed, snapshot(ws.site)) == []
    # restore the file: the plan holds again and applies exactly
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert diff(before, snapshot(ws.site)) == []
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert f"Applied Q241656 to site DEMO: {ACTIONS} actions" in r.out


def test_saved_plan_that_was_edited_is_refused(ws: Workspace, tmp_path):
    plan = tmp_path / "plan.json"
    assert ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-o", plan).code == 0
    data = json.loads(plan.read_text())
    data["actions"][2]["path"] = r"SITE.SRV\X86.BIN\SMSEXEC.EXE"
    plan.write_text(json.dumps(data))
    before = ws.state()
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2
    assert "modified after `deployer plan` wrote it" in r.err and str(plan) in r.err
    assert ws.state() == before


def test_saved_plan_refused_when_service_state_changed(ws: Workspace, tmp_path):
    plan = tmp_path / "plan.json"
    assert ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-o", plan).code == 0
    from deployer.targets.mock import MockSite

    MockSite(ws.site).services("DEMOSRV").stop("SMS_EXECUTIVE")
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2
    assert "service SMS_EXECUTIVE was running, is now stopped" in r.err


def test_apply_json_output(ws: Workspace):
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory, "--format", "json")
    assert r.code == 0, r.text
    data = json.loads(r.out)
    assert data["status"] == "committed" and data["report"]["passed"] is True
    assert len(data["plan"]["actions"]) == ACTIONS
    assert "[1/19]" in r.err  # progress goes to stderr, so stdout stays parseable


def test_runs_and_manual_rollback(ws: Workspace):
    before = ws.state()
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    r = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    runs = json.loads(r.out)
    assert [x["state"] for x in runs] == ["committed"]
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "rolled back" in r.out
    assert ws.state() == before  # byte for byte, write times included; services as they were
    runs = json.loads(ws.cli("runs", "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [x["state"] for x in runs] == ["rolled_back"]
    r = ws.cli("rollback", "--site", "DEMO", runs[0]["run"], "--yes", "-i", ws.inventory)
    assert r.code == 2 and "already rolled back" in r.err


def test_manual_rollback_refuses_to_clobber_later_changes(ws: Workspace):
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    client = ws.server("DEMOSRV") / "SITE.SRV" / "MAINCFG.BOX" / "CLIENT.SRC" / "X86.BIN" / "PCMWIN16.EXE"
    client.write_bytes(b"a later fix")
    after = ws.state()
    r = ws.cli("rollback", "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 2
    assert "PCMWIN16.EXE changed after run" in r.err and "--force" in r.err
    assert ws.state() == after


def test_a_saved_plan_applies_once(ws: Workspace, tmp_path):
    plan = tmp_path / "plan.json"
    assert ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-o", plan).code == 0
    assert ws.cli("apply", plan, "--yes", "-i", ws.inventory).code == 0
    after = ws.state()
    r = ws.cli("apply", plan, "--yes", "-i", ws.inventory)
    assert r.code == 2
    assert "this plan was already applied: run" in r.err and "a plan applies once" in r.err
    assert ws.state() == after


def test_only_stale_helper_copies_need_no_service_outage(ws: Workspace):
    """Site.srv already has the fix but a logon server's Helper.srv copy is stale: the plan
    resets the site and nothing else, without stopping PCM or the Executive."""
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory).code == 0
    stale = ws.server("DEMOLOG1") / "HELPER.SRV" / "X86.BIN" / "BASE.DLL"
    stale.write_bytes(b"an old Base.dll")
    data = json.loads(ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)
    assert [(a["number"], a["kind"]) for a in data["actions"]] == [(1, "reset_site")]
    logged = len((ws.site / "DEMOSRV" / "scm.log").read_text().splitlines())
    assert [c["path"] for c in data["actions"][0]["copies"]] == [r"HELPER.SRV\X86.BIN\BASE.DLL"]
    assert {s["what"] for s in data["skipped"] if "only the site reset runs" in s["reason"]} == {
        "stop SMS_PACKAGE_COMMAND_MANAGER_NT", "stop SMS_EXECUTIVE", "start SMS_PACKAGE_COMMAND_MANAGER_NT",
        "start SMS_EXECUTIVE"}
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert "[1/1] reset site" in r.out and "] stop " not in r.out
    log = (ws.site / "DEMOSRV" / "scm.log").read_text().splitlines()
    assert log[logged:] and not [line for line in log[logged:] if "SMS_EXECUTIVE stopped" in line]
    assert json.loads(ws.cli("verify", ws.playbook, "--site", "DEMO", "-i", ws.inventory, "-f", "json").out)["passed"]
