"""PCM service hosts (inventory, Rservice .ini import, the DEMO workstation) and
`deployer clients` (the CopyListVersion each logon server offers)."""

from __future__ import annotations

import json
import os
import re
import stat

import pytest
import yaml

from conftest import ROOT, Workspace

from deployer.model.inventory import load_inventory
from deployer.simulator import maintman as mock_maintman
from deployer.targets.base import SharingViolation
from deployer.targets.mock import MockSite

DATA = ROOT / "tests" / "data" / "rservice"


def refused(r, where: str, *needles: str) -> None:
    assert r.code == 2, r.text
    assert "Traceback" not in r.text
    assert re.search(where, r.err), r.err
    for n in needles:
        assert n in r.err, r.err


# --- inventory from-rservice ----------------------------------------------------------------


def test_from_rservice_prints_entries_the_inventory_loads(ws: Workspace):
    r = ws.cli("inventory", "from-rservice", DATA / "pcm.ini")
    assert r.code == 0, r.text
    assert "pcm.ini:8: OLDWS is excluded by [machine list]" in r.err
    entries = yaml.safe_load(r.out)["pcm_hosts"]
    assert entries == {
        "SALESWS01": {"platform": "x86", "install_dir": r"C:\pcmsvc"},
        "SALESWS02": {"platform": "x86", "install_dir": r"D:\Apps\PCMSVC"},  # its own line overrides *=
        "SALESWS03": {"platform": "x86", "install_dir": r"C:\PCMSVC"},  # named only by its setting
    }
    # pasted under a site, they are that site's PCM service hosts
    inv = yaml.safe_load(ws.inventory.read_text())
    inv["sites"]["DEMO"]["pcm_hosts"] = entries
    (ws.path / "with-hosts.yaml").write_text(yaml.safe_dump(inv))
    hosts = load_inventory(ws.path / "with-hosts.yaml").site("DEMO").site.pcm_hosts
    assert {n: h.install_dir for n, h in hosts.items()} == {"SALESWS01": r"C:\pcmsvc", "SALESWS02": r"D:\Apps\PCMSVC",
                                                            "SALESWS03": r"C:\PCMSVC"}
    assert {h.service for h in hosts.values()} == {"SMS_PACKAGE_COMMAND_MANAGER_NT"}


def test_from_rservice_writes_a_file_with_output(ws: Workspace):
    out = ws.path / "hosts.yaml"
    r = ws.cli("inventory", "from-rservice", DATA / "pcm.ini", "-o", out, "--platform", "alpha")
    assert r.code == 0, r.text
    assert r.out == ""
    assert "Wrote" in r.err and "3 PCM service hosts" in r.err
    assert {h["platform"] for h in yaml.safe_load(out.read_text())["pcm_hosts"].values()} == {"alpha"}


def test_the_q190891_example_is_for_another_service_and_is_refused(ws: Workspace):
    r = ws.cli("inventory", "from-rservice", DATA / "q190891-rcmd.ini")
    refused(r, r"q190891-rcmd\.ini:17: ", "'Remote Command Server'", "not the PCM service")


BASE = (DATA / "pcm.ini").read_text()


@pytest.mark.parametrize("change, where, needles", [
    (("[automatic start]", "[automatic starts]"), r":27: ", ["unknown section [automatic starts]",
                                                             "[installation directory]"]),
    (("SALESWS02=include", "SALESWS02=maybe"), r":7: ", ["NAME, NAME=include or NAME=exclude"]),
    (("SALESWS01\n", "SALES WS/01\n"), r":6: ", ["must be a NetBIOS name"]),
    (("SALESWS02=D:\\Apps\\PCMSVC", "SALESWS02=Apps\\PCMSVC"), r":21: ", ["SALESWS02: installation directory"]),
    (("SALESWS03=C:\\PCMSVC", "SALESWS03=\\\\srv\\share"), r":22: ", ["installation directory"]),
    (("SALESWS03=C:\\PCMSVC", "salesws02=C:\\PCMSVC"), r":22: ", ["set twice in [installation directory]",
                                                                 "first on line 21"]),
    (("[executable file]\n*=PCMSVC32.EXE", "[executable file]\n*PCMSVC32.EXE"), r":17: ", ["expected NAME=value"]),
    (("EC_SALES=LISTED", "EC_SALES=EVERYONE"), r":3: ", ["NTWD", "LISTED"]),
    (("[domain name]", "EC_SALES=LISTED\n[domain name]"), r":2: ", ["expected a [section] header"]),
    (("SALESWS01\nSALESWS02=include", "SALESWS01\n[machine list]"), r":7: ", ["[machine list] appears twice"]),
    (("*=c:\\pcmsvc\n", ""), r":19: ", ["SALESWS01: no installation directory"]),  # at the section
])
def test_bad_rservice_ini_names_the_line(ws: Workspace, change, where, needles):
    p = ws.path / "bad.ini"
    assert change[0] in BASE
    p.write_text(BASE.replace(change[0], change[1], 1))
    r = ws.cli("inventory", "from-rservice", p)
    refused(r, "bad.ini" + where, *needles)


@pytest.mark.parametrize("content, needles", [
    (None, ["not found"]),
    (b"[machine list]\nWS1\x00\n", ["NUL byte"]),
    (b"; nothing but a comment\n[machine list]\n[installation directory]\n*=C:\\PCMSVC\n", ["names no machine"]),
    (b"[domain name]\nEC_SALES=NTWD\n[installation directory]\n*=C:\\PCMSVC\n", ["names no machine"]),
])
def test_unusable_rservice_files_are_refused(ws: Workspace, content, needles):
    p = ws.path / "odd.ini"
    if content is not None:
        p.write_bytes(content)
    refused(ws.cli("inventory", "from-rservice", p), r"odd\.ini", *needles)


def test_an_ansi_ini_is_read(ws: Workspace):
    p = ws.path / "ansi.ini"
    p.write_bytes(b"; Ger\xe4te der Verkaufsabteilung\r\n[machine list]\r\nVKWS01\r\n[installation directory]\r\n"
                  b"*=C:\\PCMSVC\r\n")
    r = ws.cli("inventory", "from-rservice", p)
    assert r.code == 0, r.text
    assert yaml.safe_load(r.out)["pcm_hosts"] == {"VKWS01": {"platform": "x86", "install_dir": r"C:\PCMSVC"}}


def test_bad_platform_option(ws: Workspace):
    refused(ws.cli("inventory", "from-rservice", DATA / "pcm.ini", "--platform", "sparc"), r"--platform",
            "unknown platform 'sparc'")


# --- the inventory's pcm_hosts -----------------------------------------------------------------


@pytest.mark.parametrize("host, where, needles", [
    ("DEMOLOG1: {install_dir: 'C:\\PCMSVC'}", r"sites\.yaml:\d+", ["listed under both servers and pcm_hosts"]),
    ("DEMOWKS1: {install_dir: 'PCMSVC'}", r"sites\.yaml:\d+", ["install_dir"]),
    ("DEMOWKS1: {platform: sparc}", r"sites\.yaml:\d+", ["unknown platform"]),
    ("DEMOWKS1: {executable: 'C:\\PCMSVC\\PCMSVC32.EXE'}", r"sites\.yaml:\d+", ["must be a file name"]),
])
def test_bad_pcm_hosts_in_the_inventory(ws: Workspace, host, where, needles):
    text = ws.inventory.read_text()
    assert "      DEMOWKS1: {platform: x86, install_dir: 'C:\\PCMSVC'}" in text
    ws.inventory.write_text(text.replace("      DEMOWKS1: {platform: x86, install_dir: 'C:\\PCMSVC'}",
                                         "      " + host))
    refused(ws.cli("clients", "--site", "DEMO", "-i", ws.inventory), where, *needles)


def test_demo_has_a_pcm_service_workstation(ws: Workspace):
    host = load_inventory(ws.inventory).site("DEMO").site.pcm_hosts["DEMOWKS1"]
    assert (host.install_dir, host.service, host.executable) == ("C:\\PCMSVC", "SMS_PACKAGE_COMMAND_MANAGER_NT",
                                                                 "PCMSVC32.EXE")
    exe = ws.site / "DEMOWKS1" / "C" / "PCMSVC" / "PCMSVC32.EXE"
    site_copy = ws.server("DEMOSRV") / "SITE.SRV" / "X86.BIN" / "PCMSVC32.EXE"
    assert exe.read_bytes() == site_copy.read_bytes()  # the pre-hotfix (Q225056) build, as on the site server
    site = MockSite(ws.site)
    scm = site.services("DEMOWKS1")
    assert scm.query("SMS_PACKAGE_COMMAND_MANAGER_NT").state == "running"
    with pytest.raises(SharingViolation):  # a running service's image cannot be replaced
        site.files("DEMOWKS1").write_file("PCMSVC32.EXE", [b"MZ"])
    scm.stop("SMS_PACKAGE_COMMAND_MANAGER_NT")
    site.files("DEMOWKS1").write_file("PCMSVC32.EXE", [exe.read_bytes()])
    # a workstation is no server of Site Configuration Manager: no Helper.srv, no site reset there
    assert "DEMOWKS1" not in site.servers
    assert not (ws.site / "DEMOWKS1" / "C" / "PCMSVC" / "HELPER.SRV").exists()


# --- deployer clients --------------------------------------------------------------------------


def test_clients_on_a_fresh_site(ws: Workspace):
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 0, r.text
    assert r"DEMOLOG1      D:\SMS\LOGON.SRV\X86.BIN\CL_NT.TXT" in r.out
    assert "Clients on all 3 logon servers compare against CopyListVersion 1, the site server's." in r.out


def touch_system_map(ws: Workspace) -> None:
    p = ws.server("DEMOSRV") / "SYSTEM.MAP"
    p.write_bytes(p.read_bytes())
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 60 * 10**9))  # a later minute, whatever the clock did


def test_clients_after_a_forced_update_and_with_a_logon_server_behind(ws: Workspace):
    touch_system_map(ws)
    folder = ws.server("DEMOLOG1") / "LOGON.SRV" / "X86.BIN"
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # DEMOLOG1 refuses the new x86 copy lists
    try:
        result = mock_maintman.run_cycle(MockSite(ws.site), "test")
    finally:
        folder.chmod(0o755)
    assert result.copy_list_version == 2
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    rep = json.loads(r.out)
    assert rep["current"] is False
    assert set(rep["source"].values()) == {2}
    got = {(c["server"], c["platform"], c["name"]): (c["version"], c["status"]) for c in rep["copy_lists"]}
    assert got[("DEMOAXP1", "x86", "CL_NT.TXT")] == (2, "current")
    assert got[("DEMOAXP1", "alpha", "CL_NT.TXT")] == (2, "current")
    assert got[("DEMOLOG1", "x86", "CL_NT.TXT")] == (1, "behind")
    assert got[("DEMOLOG1", "alpha", "CL_NT.TXT")] == (1, "behind")  # the failed replication stopped there
    text = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory).out
    assert "Not current on DEMOLOG1" in text and "the site server has 2" in text

    mock_maintman.run_cycle(MockSite(ws.site), "test")  # the next cycle catches up
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory)
    assert "Clients on all 3 logon servers compare against CopyListVersion 2" in r.out, r.out


def test_clients_with_a_missing_or_damaged_copy_list(ws: Workspace):
    (ws.server("DEMOAXP1") / "LOGON.SRV" / "X86.BIN" / "CL_DOS.TXT").unlink()
    (ws.server("DEMOAXP1") / "LOGON.SRV" / "X86.BIN" / "CL_OS2.TXT").write_bytes(b"[SMS]\r\nCopyListVersion=x\r\n")
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory, "-f", "json")
    assert r.code == 0, r.text
    got = {(c["server"], c["name"]): c["status"] for c in json.loads(r.out)["copy_lists"] if c["platform"] == "x86"}
    assert got[("DEMOAXP1", "CL_DOS.TXT")] == "missing"
    assert got[("DEMOAXP1", "CL_OS2.TXT")] == "unreadable"
    assert got[("DEMOLOG1", "CL_DOS.TXT")] == "current"


def test_clients_bad_format_is_a_usage_error(ws: Workspace):
    r = ws.cli("clients", "--site", "DEMO", "-i", ws.inventory, "-f", "xml")
    assert r.code == 2 and "Traceback" not in r.text


def test_clients_unknown_site(ws: Workspace):
    refused(ws.cli("clients", "--site", "NOPE", "-i", ws.inventory), r"sites\.yaml", "no site named 'NOPE'")
