"""`deployer preflight` (Q166765): each check passes, fails or cannot be checked, and names
the article requirement; nothing on the site changes. The PCM records are Q123499's sample."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from conftest import Workspace, snapshot
from test_pcm_records import article_sample

from deployer.sms.pcm import dumptext, yamlform
from deployer.simulator import sms as mock_sms
from deployer.targets.mock import MockSite

CHECKS = ("pcm-service", "pcm-version", "polling-interval", "silent", "automated", "mandatory", "backup")


def _json(r) -> list[dict]:
    return json.loads(r.out)["checks"]


def _status(checks: list[dict], check: str, target: str | None = None) -> set[str]:
    return {c["status"] for c in checks if c["check"] == check and (target is None or c["target"] == target)}


def _with_preflight(ws: Workspace, **settings) -> None:
    inv = yaml.safe_load(ws.inventory.read_text())
    inv["sites"]["DEMO"]["preflight"] = settings
    ws.inventory.write_text(yaml.safe_dump(inv, sort_keys=False))


def _distribution_playbook(ws: Workspace) -> Path:
    """A PCM-service distribution that needs Q241656's Pcmsvc32.exe but does not install it."""
    p = ws.path / "playbooks" / "distribute.yaml"
    p.write_text("kb: Q241656\ntitle: a package the PCM service runs\nmanifest: ../manifests/q241656.yaml\n"
                 "payloads: ../payloads/q241656\nsteps:\n  - sendcode: {service: SMS_SITE_CONFIG_MANAGER, code: 192}\n")
    return p


def test_preflight_reports_each_q166765_check_and_changes_nothing(ws: Workspace):
    before = ws.state()
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 6 and "9 cannot be checked. INCOMPLETE" in r.out, r.text  # not PASSED: checks did not run
    for check in CHECKS:
        assert f"  {check}: Q166765 " in r.out
    assert "requirement 4: the PCM service must be properly installed, configured, and running" in r.out
    assert "step 2: the PCM Polling Interval is set to 20 minutes or greater" in r.out
    checks = _json(ws.cli("preflight", "--site", "DEMO", "-f", "json"))
    assert {c["check"] for c in checks} == set(CHECKS)
    assert all(c["requirement"].startswith("Q166765 ") for c in checks)
    assert _status(checks, "pcm-service") == {"pass"} and len([c for c in checks if c["check"] == "pcm-service"]) == 3
    assert _status(checks, "polling-interval") == {"pass"}
    assert _status(checks, "silent") == {"cannot check"}  # no PCM record given
    assert _status(checks, "backup") == {"cannot check"}  # the site names no marker
    assert ws.state() == before


def test_a_stopped_or_missing_pcm_service_fails(ws: Workspace):
    MockSite(ws.site).services("DEMOLOG1").stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 3, r.text
    assert "SMS_PACKAGE_COMMAND_MANAGER_NT is stopped" in r.out and "FAILED" in r.out
    checks = _json(ws.cli("preflight", "--site", "DEMO", "-f", "json"))
    assert _status(checks, "pcm-service", "DEMOLOG1") == {"fail"}
    assert _status(checks, "pcm-service", "DEMOSRV") == {"pass"}
    scm = ws.site / "DEMOAXP1" / "scm.json"
    state = json.loads(scm.read_text())
    del state["services"]["SMS_PACKAGE_COMMAND_MANAGER_NT"]
    scm.write_text(json.dumps(state))
    checks = _json(ws.cli("preflight", "--site", "DEMO", "-f", "json"))
    assert [c["detail"] for c in checks if c["check"] == "pcm-service" and c["target"] == "DEMOAXP1"] == \
        ["SMS_PACKAGE_COMMAND_MANAGER_NT is not installed"]


def test_polling_interval_under_20_minutes_fails(ws: Workspace):
    mock_sms.set_site_options(MockSite(ws.site), pcm_polling_interval_minutes=15)
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 3
    assert "PCM polls every 15 minutes; below 20 the status MIF may not be processed" in r.out
    mock_sms.set_site_options(MockSite(ws.site), pcm_polling_interval_minutes=20)
    assert _status(_json(ws.cli("preflight", "--site", "DEMO", "-f", "json")), "polling-interval") == {"pass"}


def test_pcm_version_is_what_the_manifest_wants(ws: Workspace):
    book = _distribution_playbook(ws)
    r = ws.cli("preflight", "--site", "DEMO", book)
    assert r.code == 3, r.text
    assert (r"D:\SMS\HELPER.SRV\X86.BIN\PCMSVC32.EXE: written 1/28/99 3:30PM, earlier than listed; the manifest "
            "wants 9/10/99 7:04PM (or-later)") in r.out
    assert r"C:\SMS\HELPER.SRV\ALPHA.BIN\PCMSVC32.EXE: written 1/28/99 3:33PM" in r.out
    # a hotfix playbook that installs Pcmsvc32.exe itself is checked after the run, by verify
    checks = _json(ws.cli("preflight", "--site", "DEMO", ws.playbook, "-f", "json"))
    assert _status(checks, "pcm-version") == {"cannot check"}
    assert all("installs the 9/10/99" in c["detail"] for c in checks if c["check"] == "pcm-version")
    assert ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes").code == 0
    checks = _json(ws.cli("preflight", "--site", "DEMO", book, "-f", "json"))
    assert _status(checks, "pcm-version") == {"pass"}, checks


def test_package_checks_come_from_a_pcm_record(ws: Workspace, tmp_path: Path):
    sample = tmp_path / "mdm00005.txt"
    sample.write_text(article_sample())
    checks = _json(ws.cli("preflight", "--site", "DEMO", "--pcm-record", sample, "-f", "json"))
    assert _status(checks, "silent", "BPC003F") == {"fail"}  # Flight Simulator needs user input
    assert _status(checks, "mandatory", "BPC001M") == {"fail"}  # optional install
    assert _status(checks, "mandatory", "BPC005Q") == {"pass"} and _status(checks, "silent", "BPC005Q") == {"pass"}
    assert _status(checks, "automated", "BPC005Q") == {"cannot check"}  # not in PCMDUMP's layout
    r = ws.cli("preflight", "--site", "DEMO", "--pcm-record", sample, "--request", "bpc005q")
    assert r.code == 6, r.text  # none failed; automated, background and others could not be checked
    f = dumptext.parse(article_sample())
    rec = f.records[3].model_copy(update={"automated_command_line": True, "background_task": False})
    y = tmp_path / "one.yaml"
    y.write_text(yamlform.to_yaml(f.model_copy(update={"records": [rec]})))
    r = ws.cli("preflight", "--site", "DEMO", "--pcm-record", y)
    assert r.code == 3 and "not System (Background) Task" in r.out
    r = ws.cli("preflight", "--site", "DEMO", "--pcm-record", sample, "--request", "NOPE")
    assert r.code == 2 and "no record with RequestID 'NOPE'" in r.err


def test_backup_marker_where_the_site_says(ws: Workspace):
    _with_preflight(ws, backup_marker="BACKUP\\LASTBACKUP.OK", backup_max_age_hours=24)
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 3 and r"no backup marker C:\SMS\BACKUP\LASTBACKUP.OK" in r.out
    for server in ("DEMOSRV", "DEMOLOG1", "DEMOAXP1"):
        marker = ws.server(server) / "BACKUP" / "LASTBACKUP.OK"
        marker.parent.mkdir()
        marker.write_text("backed up")
    checks = _json(ws.cli("preflight", "--site", "DEMO", "-f", "json"))
    assert _status(checks, "backup") == {"pass"}
    old = time.time() - 30 * 3600
    os.utime(ws.server("DEMOLOG1") / "BACKUP" / "LASTBACKUP.OK", (old, old))
    checks = _json(ws.cli("preflight", "--site", "DEMO", "-f", "json"))
    assert _status(checks, "backup", "DEMOLOG1") == {"fail"} and _status(checks, "backup", "DEMOSRV") == {"pass"}
    assert any("30 hours ago (at most 24 allowed)" in c["detail"] for c in checks)


@pytest.mark.parametrize("settings,words", [
    ({"backup_marker": "C:\\BACKUP.OK"}, "relative to each server's SMS root"),
    ({"backup_marker": "..\\x"}, "relative step"),
    ({"backup_max_age_hours": 0}, "backup_max_age_hours"),
    ({"backup_folder": "x"}, "unknown key 'backup_folder'"),
])
def test_bad_preflight_settings_are_refused_at_their_line(ws: Workspace, settings, words):
    _with_preflight(ws, **settings)
    r = ws.cli("preflight", "--site", "DEMO")
    assert r.code == 2, r.text
    assert "sites.yaml:" in r.err and "preflight" in r.err and words in r.err


def test_preflight_over_ssh_says_what_cannot_be_checked_there(ws: Workspace, sshd):
    from test_e2e_ssh import SITE, ssh_inventory

    inventory = ssh_inventory(ws, sshd)
    before = snapshot(ws.site)
    checks = _json(ws.cli("preflight", "--site", SITE, "-i", inventory, "-f", "json"))
    assert _status(checks, "pcm-service") == {"pass"}  # sc.exe query over SSH
    poll = [c for c in checks if c["check"] == "polling-interval"]
    assert poll[0]["status"] == "cannot check" and "cannot be checked on this target" in poll[0]["detail"]
    assert {c["status"] for c in checks if c["check"] == "pcm-version"} == {"cannot check"}
    assert snapshot(ws.site) == before


# --- the preflight playbook step -------------------------------------------------------------


def _with_step(ws: Workspace, step: str, after: str = "steps:\n") -> Path:
    text = ws.playbook.read_text()
    assert after in text
    p = ws.playbook.with_name("checked.yaml")
    p.write_text(text.replace(after, after + step, 1))
    return p


def test_a_preflight_step_that_passes_is_part_of_the_plan_and_the_run(ws: Workspace):
    book = _with_step(ws, "  - preflight: {}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 0, r.text
    assert "  1. preflight checks (Q166765): 4 checks passed, 9 cannot be checked" in r.out
    assert "Warning: preflight: cannot check backup on DEMOSRV: site DEMO names no backup marker" in r.out
    r = ws.cli("apply", book, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    assert "PASSED" in r.out


def test_a_failing_preflight_step_stops_the_playbook_before_anything_changes(ws: Workspace):
    MockSite(ws.site).services("DEMOLOG1").stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    before = ws.state()
    book = _with_step(ws, "  - preflight: {}\n")
    r = ws.cli("apply", book, "--site", "DEMO", "--yes")
    assert r.code == 2, r.text
    assert "checked.yaml:" in r.err and "steps[0].preflight" in r.err
    assert ("preflight failed, nothing was changed: pcm-service on DEMOLOG1: SMS_PACKAGE_COMMAND_MANAGER_NT is "
            "stopped") in r.err
    assert "[Q166765 requirement 4: the PCM service must be properly installed" in r.err
    assert ws.state() == before
    assert not (ws.server("DEMOSRV") / ".deployer" / "runs").exists()


def test_a_preflight_step_sees_the_service_as_earlier_steps_leave_it(ws: Workspace):
    book = _with_step(ws, "  - preflight: {}\n", after="  - stop: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]\n")
    before = ws.state()
    r = ws.cli("apply", book, "--site", "DEMO", "--yes")
    assert r.code == 2, r.text
    assert "pcm-service on DEMOSRV: SMS_PACKAGE_COMMAND_MANAGER_NT is stopped" in r.err
    assert ws.state() == before


def test_a_preflight_step_checks_the_package_record(ws: Workspace):
    (ws.path / "playbooks" / "mdm00005.txt").write_text(article_sample())
    book = _with_step(ws, "  - preflight: {pcm_record: mdm00005.txt, request: BPC003F}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "silent on BPC003F: User Input Flags 1: requires user input" in r.err
    book = _with_step(ws, "  - preflight: {pcm_record: mdm00005.txt, request: BPC005Q}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 0, r.text
    book = _with_step(ws, "  - preflight: {pcm_record: mdm00005.txt, request: NOPE}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "steps[0].preflight.request" in r.err and "no record with RequestID 'NOPE'" in r.err
    book = _with_step(ws, "  - preflight: {pcm_record: missing.txt}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "missing.txt" in r.err and "not found" in r.err and "pcm_record" in r.err
    book = _with_step(ws, "  - preflight: {pcm_records: x}\n")
    r = ws.cli("plan", book, "--site", "DEMO")
    assert r.code == 2 and "unknown key 'pcm_records'" in r.err


def test_a_saved_plan_with_a_preflight_is_refused_when_what_it_checked_changed(ws: Workspace):
    book = _with_step(ws, "  - preflight: {}\n")
    saved = ws.path / "plan.json"
    assert ws.cli("plan", book, "--site", "DEMO", "--out", saved).code == 0
    MockSite(ws.site).services("DEMOAXP1").stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    before = ws.state()
    r = ws.cli("apply", saved, "--yes")
    assert r.code == 2, r.text
    assert "SMS_PACKAGE_COMMAND_MANAGER_NT" in r.err and "DEMOAXP1" in r.err
    assert ws.state() == before


def test_a_saved_plan_checks_again_when_it_runs(ws: Workspace):
    book = _with_step(ws, "  - preflight: {}\n")
    saved = ws.path / "plan.json"
    assert ws.cli("plan", book, "--site", "DEMO", "--out", saved).code == 0
    mock_sms.set_site_options(MockSite(ws.site), pcm_polling_interval_minutes=10)  # not a file: not fingerprinted
    before = ws.state()
    r = ws.cli("apply", saved, "--yes")
    assert r.code == 1, r.text
    assert "preflight no longer passes, nothing was changed: polling-interval on site: PCM polls every 10 minutes" \
        in r.text
    assert ws.state() == before
