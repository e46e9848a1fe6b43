"""Q241656 end to end over SSH: the demo site's three servers behind a real OpenSSH server.

Each server's files are its SMS root in the workspace's mock site, reached over SFTP; its
services are the stand-in sc.exe (tests/fakes) wrapping that same mock site's Service
Control Manager, one sshd port per server. What deployer sees is what it would see of
Windows servers running OpenSSH; what the test checks is the folder itself.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hotfix import vendor_payloads
from conftest import Workspace, diff, services, snapshot
from servers.sshd import SshTestServer

from deployer import failpoints

SITE = "SSHDEMO"
SERVERS = {"DEMOSRV": ("site_server", "x86", "C:\\SMS"), "DEMOLOG1": ("logon_server", "x86", "D:\\SMS"),
           "DEMOAXP1": ("logon_server", "alpha", "C:\\SMS")}


def ssh_inventory(ws: Workspace, sshd: SshTestServer, vendor: bool = True) -> Path:
    """The demo site again, as sites.yaml would name it if its servers ran OpenSSH."""
    servers = {}
    for name, (role, platform, sms_root) in SERVERS.items():
        conn = sshd.settings(name)
        servers[name] = {"role": role, "platform": platform, "sms_root": sms_root,
                         "files": {"transport": "ssh", "root": str(ws.server(name)), **conn},
                         "services": {"transport": "ssh", **conn}}
    inv = {"sites": {SITE: {"code": "DMO", "timezone": "America/Los_Angeles", "platforms": ["x86", "alpha"],
                            "servers": servers}}}
    path = ws.path / "ssh-sites.yaml"
    if vendor:
        vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    path.write_text(yaml.safe_dump(inv, sort_keys=False))
    sshd.serve_site(ws.site)
    return path


def local_file(ws: Workspace, server: str, windows_path: str) -> Path:
    """C:\\SMS\\SITE.SRV\\X86.BIN\\BASE.DLL on a server -> the file in the mock site, any case."""
    here = ws.server(server)
    for part in windows_path.split("\\")[2:]:
        here = next(p for p in here.iterdir() if p.name.casefold() == part.casefold())
    return here


def test_apply_over_ssh_patches_and_verifies(ws: Workspace, sshd: SshTestServer, workspace_template: Path,
                                             tmp_path: Path):
    inventory = ssh_inventory(ws, sshd)
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0, r.text
    assert f"Applied Q241656 to site {SITE}: 16 actions" in r.out  # no pcm_hosts here
    assert "30 ok, 0 newer, 0 older, 0 missing, 0 mismatch. PASSED" in r.out

    r = ws.cli("verify", ws.playbook, "--site", SITE, "--format", "json", "-i", inventory)
    assert r.code == 0, r.text
    report = json.loads(r.out)
    assert report["passed"] is True and {f["status"] for f in report["files"]} == {"ok"}
    # the article's 9 rows, the 6 Helper.srv copies of the reset, the 15 Logon.srv copies of replication
    # (the site server carries LOGON.SRV too: 5 of them)
    assert len(report["files"]) == 30
    for f in report["files"]:
        assert (f["actual_date"], f["actual_time"]) == (f["expected_date"], f["expected_time"]), f
        # the write time on the server itself is the article's minute, to the nanosecond
        on_disk = local_file(ws, f["server"], f["path"]).stat().st_mtime_ns
        assert on_disk == int(datetime.fromisoformat(f["actual_mtime_utc"]).timestamp()) * 10**9, f
        assert on_disk % (60 * 10**9) == 0, f
    assert all(state == "running" for svcs in services(ws.site).values() for state in svcs.values())

    # over SSH and through the embedded mock transport, the patched site is the same, file for file
    twin = Workspace(tmp_path / "twin")
    shutil.copytree(workspace_template, twin.path, symlinks=True)
    vendor_payloads(twin.path / "payloads")  # the same hotfix bytes as went over SSH
    # the SSH inventory names no PCM service workstation: neither may the twin's
    inv = yaml.safe_load(twin.inventory.read_text())
    inv["sites"]["DEMO"].pop("pcm_hosts", None)
    twin.inventory.write_text(yaml.safe_dump(inv))
    assert twin.cli("apply", twin.playbook, "--site", "DEMO", "--yes", "-i", twin.inventory).code == 0
    assert diff(snapshot(twin.site), snapshot(ws.site)) == []
    assert services(twin.site) == services(ws.site)

    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 0 and "Nothing to do" in r.out, r.text


@pytest.mark.parametrize("point", ["apply.action.7.after", "apply.action.14.after"])
def test_failure_midway_restores_every_file_byte_for_byte(ws: Workspace, sshd: SshTestServer, point: str):
    """7: three files of Site.srv replaced; 14: after the site reset wrote Helper.srv on every server."""
    inventory = ssh_inventory(ws, sshd)
    files_before, services_before = snapshot(ws.site), services(ws.site)
    failpoints.arm(point)
    r = ws.cli("apply", ws.playbook, "--site", SITE, "--yes", "-i", inventory)
    assert r.code == 1, r.text
    assert point in failpoints.hits()
    # content, size and write time of every file of every server (deployer's .deployer excluded)
    assert diff(files_before, snapshot(ws.site)) == []
    assert services(ws.site) == services_before


def test_a_fresh_process_finds_the_ssh_transport(ws: Workspace, sshd: SshTestServer):
    """`python -m deployer` loads deployer.targets.ssh on demand (in this process it is loaded already)."""
    from conftest import run_subprocess

    r = run_subprocess("verify", ws.playbook, "--site", SITE, "-i", ssh_inventory(ws, sshd), cwd=ws.path)
    assert r.code == 3, r.text  # read over SFTP: the site is not patched yet
    assert "PCMSVC32.EXE" in r.out.upper() and "older" in r.out
