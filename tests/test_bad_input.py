"""Bad input: exit 2, the file and line, what is wrong and what is allowed; nothing touched."""

from __future__ import annotations

import re

import pytest

from conftest import Workspace


def _playbook(ws: Workspace, text: str, name: str = "bad.yaml"):
    p = ws.path / "playbooks" / name
    p.write_text(text)
    return p


def _expect_refused(ws: Workspace, r, where: str, *needles: str) -> None:
    assert r.code == 2, r.text
    assert re.search(where, r.err), r.err
    for n in needles:
        assert n in r.err, r.err


def test_code_194_to_the_executive_is_rejected_at_plan_time(ws: Workspace):
    p = _playbook(ws, ws.playbook.read_text() + "  - sendcode: {service: SMS_EXECUTIVE, code: 194}\n")
    before = ws.state()
    for cmd in ("plan", "apply"):
        r = ws.cli(cmd, p, "--site", "DEMO", "--yes" if cmd == "apply" else "--format=text", "-i", ws.inventory)
        line = len(ws.playbook.read_text().splitlines()) + 1
        _expect_refused(ws, r, rf"bad.yaml:{line}:\d+: steps\[9\]\.sendcode\.code", "SMS_EXECUTIVE does not accept "
                        "control code 194", "1052", "accepted by: SMS_SITE_CONFIG_MANAGER")
    assert ws.state() == before


def test_sendcode_to_a_service_stopped_at_that_point_is_rejected(ws: Workspace):
    text = ws.playbook.read_text().replace(
        "  - start: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]\n",
        "  - sendcode: {service: SMS_EXECUTIVE, code: 130}\n  - start: [SMS_PACKAGE_COMMAND_MANAGER_NT, SMS_EXECUTIVE]\n")
    r = ws.cli("plan", _playbook(ws, text), "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, r"bad.yaml:\d+:\d+: steps\[4\]\.sendcode", "stopped at that point", "1062")


@pytest.mark.parametrize("text,where,needles", [
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - stop: [SMS_EXECUTIVE\n",
     r"bad.yaml:\d+:\d+: YAML syntax error", ()),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - reboot: now\n",
     r"bad.yaml:5:5: steps\[0\]\.reboot", ("unknown step 'reboot'", "allowed steps: stop, start, replace, reset_site, "
                                          "sendcode")),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - stop: [SMS_EXECUTIV]\n",
     r"bad.yaml:5:\d+: steps\[0\]\.stop\[0\]", ("unknown service 'SMS_EXECUTIV'", "allowed: SMS_SITE_CONFIG_MANAGER")),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\ncolour: red\nsteps:\n  - stop: [SMS_EXECUTIVE]\n",
     r"bad.yaml:4:1: colour", ("unknown key 'colour'", "allowed: kb, title, description, draft, manifest, payloads")),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - replace: {files: [Nope.dll], "
     "into: 'x'}\n", r"bad.yaml:5:\d+: steps\[0\]\.replace\.files\[0\]", ("Nope.dll is not in the manifest",)),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - replace: {files: [Pcmdos_2.exe], "
     "into: 'x', platforms: [alpha]}\n", r"steps\[0\]\.replace\.files\[0\]", ("lists Pcmdos_2.exe for x86, not for "
                                                                              "alpha",)),
    ("kb: Q241656\nmanifest: ../manifests/missing.yaml\npayloads: x\nsteps:\n  - stop: [SMS_EXECUTIVE]\n",
     r"bad.yaml:2:1: manifest", ("not found",)),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - sendcode: {service: "
     "SMS_SITE_CONFIG_MANAGER, code: 300}\n", r"steps\[0\]\.sendcode\.code", ("outside 128-255",)),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps: []\n", r"bad.yaml:4:\d+: steps",
     ("at least 1",)),
    ("kb: Q241656\nmanifest: ../manifests/q241656.yaml\npayloads: x\nsteps:\n  - stop: [SMS_EXECUTIVE]\n    "
     "start: [SMS_EXECUTIVE]\n", r"bad.yaml:5:5: steps\[0\]", ("exactly one action key", "several actions")),
])
def test_malformed_playbooks(ws: Workspace, text, where, needles):
    before = ws.state()
    r = ws.cli("plan", _playbook(ws, text), "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, where, *needles)
    assert ws.state() == before


@pytest.mark.parametrize("into,needles", [
    (r"'{{ sms_root }}\..\..\Windows\System32'", ("'..'", "may not climb out of the SMS root")),
    (r"'{{ sms_rot }}\Site.srv'", ("'sms_rot' is undefined", "variables available here")),
    (r"'C:\Windows\System32'", ("outside the SMS root",)),
    (r"'{{ sms_root.__class__.__mro__ }}'", ("refused by the sandbox",)),
])
def test_templates_that_escape_are_refused_before_anything_runs(ws: Workspace, into, needles):
    text = ws.playbook.read_text().replace(r"'{{ sms_root }}\Site.srv\{{ platform }}.bin'", into)
    before = ws.state()
    r = ws.cli("apply", _playbook(ws, text), "--site", "DEMO", "--yes", "-i", ws.inventory)
    _expect_refused(ws, r, r"bad.yaml:\d+:\d+: steps\[1\]\.replace\.into", *needles)
    assert ws.state() == before
    assert not list(ws.site.rglob(".deployer"))


def test_malformed_manifest_points_at_the_row(ws: Workspace):
    m = ws.path / "manifests" / "q241656.yaml"
    m.write_text(m.read_text().replace("date: 9/10/99, time: 7:04PM, size: 237KB", "date: 11/31/94, time: 7:04PM, "
                                                                                  "size: 237KB"))
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, r"q241656.yaml:12:\d+: files\[1\]\.date", "November 1994 has 30 days")


@pytest.mark.parametrize("change,where,needles", [
    (("code: DMO", "code: DEMO"), r"sites.yaml:\d+:\d+: sites\.DEMO\.code", ("exactly 3 letters or digits",)),
    (("timezone: America/Los_Angeles", "timezone: Pacific"), r"sites\.DEMO\.timezone", ("unknown time zone",)),
    (("platform: alpha,", "platform: sparc,"), r"sites\.DEMO\.servers\.DEMOAXP1\.platform", ("unknown platform",)),
    (("role: logon_server, platform: x86", "role: site_server, platform: x86"), r"sites\.DEMO",
     ("exactly one server with role: site_server",)),
    (("sms_root: 'D:\\SMS'", "sms_root: 'SMS'"), r"DEMOLOG1\.sms_root", ("not an absolute Windows path",)),
])
def test_malformed_inventory(ws: Workspace, change, where, needles):
    ws.inventory.write_text(ws.inventory.read_text().replace(*change))
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, where, *needles)


def test_unknown_site(ws: Workspace):
    r = ws.cli("plan", ws.playbook, "--site", "NOPE", "-i", ws.inventory)
    _expect_refused(ws, r, r"sites.yaml:\d+:\d+", "no site named 'NOPE'", "sites: DEMO")


def test_missing_payload_names_where_to_put_it(ws: Workspace):
    (ws.path / "payloads" / "q241656" / "alpha" / "Base.dll").unlink()
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, r"q241656.yaml:\d+:\d+: steps\[1\]\.replace\.files\[1\]", r"alpha\Base.dll",
                    "deployer lab init")


def test_wrong_payload_is_refused(ws: Workspace):
    (ws.path / "payloads" / "q241656" / "x86" / "Base.dll").write_bytes(b"x" * 1000)
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    _expect_refused(ws, r, r"steps\[1\]\.replace\.files\[1\]", "is 1,000 bytes", "as 524KB")


def test_a_manifest_time_skipped_by_daylight_saving_is_refused(ws: Workspace):
    m = ws.path / "manifests" / "q241656.yaml"
    m.write_text(m.read_text().replace("{date: 9/10/99, time: 7:04PM, size: 237KB",
                                       "{date: 4/4/99, time: 2:30AM, size: 237KB"))
    before = ws.state()
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    _expect_refused(ws, r, r"q241656.yaml:12:\d+: files\[1\]\.time", "does not exist in America/Los_Angeles",
                    "Pin the article's own zone with the manifest's timezone:")
    assert ws.state() == before


def test_a_time_shown_twice_at_fall_back_is_the_daylight_one():
    from datetime import date, time
    from zoneinfo import ZoneInfo

    from deployer.model.manifest import FileEntry

    e = FileEntry.model_validate({"name": "Base.dll", "platform": "I386", "date": "10/31/99", "time": "1:30AM",
                                  "size": "524KB"})
    assert e.instant(ZoneInfo("America/Los_Angeles")).utcoffset().total_seconds() == -7 * 3600  # PDT, not PST
    assert (e.date, e.time) == (date(1999, 10, 31), time(1, 30))
