"""`deployer sendcode`: Q168682's table enforced before anything is sent, and the mock's SMS
services doing what the article says each code does. Over SSH the same codes go through a
real OpenSSH server to the stand-in sc.exe, whose Service Control Manager is the mock's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Workspace, services, snapshot

from deployer.simulator import sms as mock_sms
from deployer.targets.mock import MockSite


def _scm_log(ws: Workspace) -> str:
    return (ws.site / "DEMOSRV" / "scm.log").read_text() if (ws.site / "DEMOSRV" / "scm.log").exists() else ""


@pytest.mark.parametrize("service,code,rule", [
    ("SMS_EXECUTIVE", 194, "192-196: SMS_SITE_CONFIG_MANAGER"),
    ("SMS_PACKAGE_COMMAND_MANAGER_NT", 128, "128-130: SMS_EXECUTIVE, SMS_HIERARCHY_MANAGER, SMS_SITE_CONFIG_MANAGER"),
    ("SMS_HIERARCHY_MANAGER", 196, "192-196: SMS_SITE_CONFIG_MANAGER"),
    ("SMS_SITE_CONFIG_MANAGER", 131, "no meaning"),
])
def test_a_code_the_table_forbids_is_refused_before_anything_is_sent(ws: Workspace, service, code, rule):
    before, log = ws.state(), _scm_log(ws)
    r = ws.cli("sendcode", "--site", "DEMO", service, str(code))
    assert r.code == 2, r.text
    assert "refused, nothing was sent" in r.err and f"does not accept control code {code}" in r.err
    assert rule in r.err and "Q168682" in r.err and "1052" in r.err
    assert ws.state() == before and _scm_log(ws) == log


def test_refusal_needs_no_site_and_a_code_outside_128_255_is_refused(ws: Workspace, tmp_path: Path):
    r = ws.cli("sendcode", "--site", "NOSUCH", "SMS_EXECUTIVE", "194")
    assert r.code == 2 and "Q168682" in r.err  # the table is checked before the inventory is read
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "1")
    assert r.code == 2 and "outside 128-255" in r.err
    r = ws.cli("sendcode", "--site", "DEMO", "Spooler", "132")
    assert r.code == 2 and "not an SMS service" in r.err


def test_193_writes_the_ct2_status_file(ws: Workspace):
    ct2 = ws.server("DEMOSRV") / "SITE.SRV" / "SITECFG.BOX" / "DMO00000.CT2"
    assert not ct2.exists()
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "193")
    assert r.code == 0, r.text
    assert "DEMOSRV: SMS_SITE_CONFIG_MANAGER accepted control code 193" in r.out
    assert r"wrote status file C:\SMS\SITE.SRV\SITECFG.BOX\DMO00000.CT2" in r.out
    text = ct2.read_text()
    assert "Site=DMO" in text and "DEMOLOG1\tSMS_PACKAGE_COMMAND_MANAGER_NT\trunning" in text
    assert "SMS_SITE_CONFIG_MANAGER control 193" in _scm_log(ws)


def test_128_130_129_track_and_dump_memory_in_the_root_directory(ws: Workspace):
    root = ws.site / "DEMOSRV" / "C"
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "130")
    assert r.code == 0, r.text
    for name in ("Smsexec.mem", "Alerter.mem", "Appmgr.mem", "Sched.mem"):
        assert f"wrote C:\\{name}" in r.out
        assert "tracking: off" in (root / name).read_text()
    assert not (root / "Hman.mem").exists() and not (root / "Scmanmem.log").exists()
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "128")
    assert r.code == 0 and "memory allocation tracking switched on" in r.out
    assert "already on" in ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "128").out
    ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "130")
    dump = (root / "Smsexec.mem").read_text()
    assert "tracking: on since" in dump and "Outstanding allocations: " in dump
    assert "switched off" in ws.cli("sendcode", "--site", "DEMO", "SMS_EXECUTIVE", "129").out
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_HIERARCHY_MANAGER", "130")
    assert "wrote C:\\Hman.mem" in r.out and (root / "Hman.mem").exists()
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "130")
    assert "wrote C:\\Scmanmem.log" in r.out and (root / "Scmanmem.log").exists()


def test_132_toggles_net_pause_on_any_sms_service(ws: Workspace):
    args = ("sendcode", "--site", "DEMO", "--server", "DEMOLOG1", "SMS_PACKAGE_COMMAND_MANAGER_NT", "132")
    r = ws.cli(*args)
    assert r.code == 0, r.text
    assert r.out.startswith("DEMOLOG1: ") and "net pause support switched on" in r.out
    assert "net pause support switched off" in ws.cli(*args).out
    site = MockSite(ws.site)
    assert mock_sms.service_flags(site, "DEMOLOG1", "SMS_PACKAGE_COMMAND_MANAGER_NT")["net_pause"] is False


def test_192_watchdog_restarts_stopped_components(ws: Workspace):
    site = MockSite(ws.site)
    site.services("DEMOLOG1").stop("SMS_INVENTORY_AGENT_NT")
    site.services("DEMOSRV").stop("SMS_EXECUTIVE")
    before = snapshot(ws.site)
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "192")
    assert r.code == 0, r.text
    assert "restarted SMS_INVENTORY_AGENT_NT on DEMOLOG1 (it was stopped)" in r.out
    assert "restarted SMS_EXECUTIVE on DEMOSRV" in r.out
    assert all(state == "running" for svcs in services(ws.site).values() for state in svcs.values())
    assert snapshot(ws.site) == before  # a plain watchdog cycle writes no file


def test_195_writes_a_user_group_mif(ws: Workspace):
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "195")
    assert r.code == 0, r.text
    mif = ws.server("DEMOSRV") / "SITE.SRV" / "INVENTRY.BOX" / "USERGRP.MIF"
    assert "wrote user group MIF" in r.out and 'Value = "DMO"' in mif.read_text()


def test_196_rewrites_logon_scripts_only_when_the_site_options_say_so(ws: Workspace):
    scripts = {n: (ws.server(n) / "LOGON.SRV" / "RUNSMS.BAT") for n in ("DEMOLOG1", "DEMOAXP1")}
    before = {n: p.read_bytes() for n, p in scripts.items()}
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "196")
    assert r.code == 0, r.text
    assert "logon scripts left as they are" in r.out and "Automatically Configure Workstation Logon Scripts" in r.out
    assert {n: p.read_bytes() for n, p in scripts.items()} == before
    mock_sms.set_site_options(MockSite(ws.site), auto_configure_logon_scripts=True)
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "196")
    assert "'Use All Detected Servers' is off" in r.out
    assert {n: p.read_bytes() for n, p in scripts.items()} == before
    mock_sms.set_site_options(MockSite(ws.site), use_all_detected_servers=True)
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "196")
    for n, p in scripts.items():
        assert "rewrote logon script" in r.out and f"on {n}" in r.out
        line = next(x for x in p.read_text().splitlines() if "logon servers: " in x)
        assert sorted(line.split("logon servers: ")[1].split(", ")) == ["DEMOAXP1", "DEMOLOG1"]


def test_194_resets_the_site_as_before_and_says_what_it_installed(ws: Workspace):
    f = MockSite(ws.site).files("DEMOSRV")
    scm = MockSite(ws.site).services("DEMOSRV")
    scm.stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    scm.stop("SMS_EXECUTIVE")
    f.write_file(r"SITE.SRV\X86.BIN\PCMSVC32.EXE", [b"fixed pcm"])
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "194")
    assert r.code == 0, r.text
    assert "site reset: 2 files installed" in r.out
    assert r"installed HELPER.SRV\X86.BIN\PCMSVC32.EXE on DEMOLOG1" in r.out
    assert (ws.server("DEMOLOG1") / "HELPER.SRV" / "X86.BIN" / "PCMSVC32.EXE").read_bytes() == b"fixed pcm"
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "194")
    assert "every Helper.srv copy was already current" in r.out


def test_a_stopped_service_answers_1062(ws: Workspace):
    MockSite(ws.site).services("DEMOSRV").stop("SMS_SITE_CONFIG_MANAGER")
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "193")
    assert r.code == 1 and "1062" in r.err and "has not been started" in r.err
    assert not (ws.server("DEMOSRV") / "SITE.SRV" / "SITECFG.BOX" / "DMO00000.CT2").exists()


def test_list_prints_the_table_with_each_codes_meaning(ws: Workspace):
    r = ws.cli("sendcode", "--list")
    assert r.code == 0, r.text
    assert "192-196   SMS_SITE_CONFIG_MANAGER" in r.out
    assert "132       all Systems Management Server site services" in r.out
    assert "193  Initiates a watchdog cycle and writes a status (.ct2) file." in r.out
    r = ws.cli("sendcode", "--list", "-f", "json")
    codes = {c["code"]: c for c in json.loads(r.out)}
    assert sorted(codes) == [128, 129, 130, 132, 192, 193, 194, 195, 196]
    assert codes[192]["services"] == ["SMS_SITE_CONFIG_MANAGER"]
    assert set(codes[130]["services"]) == {"SMS_EXECUTIVE", "SMS_HIERARCHY_MANAGER", "SMS_SITE_CONFIG_MANAGER"}
    assert len(codes[132]["services"]) == 6 and codes[129]["meaning"] == "stop memory allocation tracking"
    assert "Smsexec.mem" in codes[130]["article_text"]


def test_json_result(ws: Workspace):
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "193", "-f", "json")
    data = json.loads(r.out)
    assert data["answer"] == "ERROR_SUCCESS (0)" and data["state"] == "running" and data["server"] == "DEMOSRV"
    assert any("DMO00000.CT2" in d for d in data["did"])


def test_sendcode_over_ssh_reaches_the_service_through_sc_exe(ws: Workspace, sshd):
    from test_e2e_ssh import SITE, ssh_inventory

    inventory = ssh_inventory(ws, sshd)
    r = ws.cli("sendcode", "--site", SITE, "-i", inventory, "SMS_SITE_CONFIG_MANAGER", "193")
    assert r.code == 0, r.text
    assert "the Service Control Manager answered ERROR_SUCCESS (0)" in r.out and "is running" in r.out
    assert (ws.server("DEMOSRV") / "SITE.SRV" / "SITECFG.BOX" / "DMO00000.CT2").exists()
    MockSite(ws.site).services("DEMOSRV").stop("SMS_HIERARCHY_MANAGER")
    r = ws.cli("sendcode", "--site", SITE, "-i", inventory, "SMS_HIERARCHY_MANAGER", "128")
    assert r.code == 1 and "1062" in r.err  # sc.exe's own answer, translated
    r = ws.cli("sendcode", "--site", SITE, "-i", inventory, "SMS_EXECUTIVE", "194")
    assert r.code == 2 and "Q168682" in r.err


def test_over_scmr_the_real_service_control_managers_answer_is_reported(tmp_path: Path, samba, monkeypatch):
    """Samba's \\pipe\\svcctl has no SMS service: its answer (1060) is what deployer reports."""
    from test_smb_target import PASSWORD_ENV, inventory

    from conftest import run_cli

    monkeypatch.setenv(PASSWORD_ENV, samba.password)
    inv = inventory(tmp_path / "sites.yaml", samba)
    r = run_cli("sendcode", "--site", "LAB", "-i", inv, "SMS_SITE_CONFIG_MANAGER", "192")
    assert r.code == 1, r.text
    assert "LABSRV: " in r.err and "1060" in r.err and "does not exist as an installed service" in r.err
    r = run_cli("preflight", "--site", "LAB", "-i", inv, "-f", "json")
    assert r.code == 3, r.text
    checks = json.loads(r.out)["checks"]
    assert [c["detail"] for c in checks if c["check"] == "pcm-service"] == \
        ["SMS_PACKAGE_COMMAND_MANAGER_NT is not installed"]
    assert {c["status"] for c in checks if c["check"] == "polling-interval"} == {"cannot check"}


def test_sendcode_waits_for_no_run_and_names_unknown_servers(ws: Workspace):
    from deployer.run.lock import LOCK_PATH

    site = MockSite(ws.site)
    site.services("DEMOLOG1").stop("SMS_INVENTORY_AGENT_NT")  # as a run in progress would have it
    lock = ws.server("DEMOSRV") / Path(*LOCK_PATH.split("\\"))
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"holder": {"host": "elsewhere", "pid": 1, "user": "op"}, "command": "apply",
                                "since": "2026-11-27T09:00:00Z"}))
    r = ws.cli("sendcode", "--site", "DEMO", "SMS_SITE_CONFIG_MANAGER", "192")
    assert r.code == 2 and "is locked by op@elsewhere (pid 1, apply" in r.err, r.text
    assert site.services("DEMOLOG1").query("SMS_INVENTORY_AGENT_NT").state == "stopped"  # no watchdog ran
    lock.unlink()
    r = ws.cli("sendcode", "--site", "DEMO", "--server", "NOSUCH", "SMS_SITE_CONFIG_MANAGER", "192")
    assert r.code == 2 and "no server 'NOSUCH'" in r.err and "DEMOLOG1" in r.err
    assert not lock.exists()
