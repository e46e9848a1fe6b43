"""End to end over SMB: the Q241656 hotfix applied to servers whose SMS roots are Samba shares.

The site is a mock site as `deployer lab init` makes it; each server's SMS root folder
(`<site>/<SERVER>/<drive>/SMS`) is exported by a private smbd as that server's share, and the
inventory reaches it with `files: {transport: smb}`. Services stay on the mock SCM, which
keeps its state beside those folders and, on a site reset (code 194), copies Site.srv to
Helper.srv in them, as Site Configuration Manager would on the servers. Samba's own client
is the independent witness of what deployer wrote.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hotfix import vendor_payloads
from conftest import Workspace, diff, services, snapshot
from deployer import failpoints
from servers.samba import Samba

SERVERS = {"DEMOSRV": ("site_server", "x86", "C"), "DEMOLOG1": ("logon_server", "x86", "D"),
           "DEMOAXP1": ("logon_server", "alpha", "C")}
PASSWORD_ENV = "DEPLOYER_TEST_SMB_PASSWORD"


def share_of(server: str) -> str:
    return f"{server}_SMS_SHR{SERVERS[server][2]}"


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-smb") / "lab" / "DEMO"


@pytest.fixture(scope="module")
def site_samba(site_root: Path) -> Samba:
    shares = {share_of(name): site_root / name / drive / "SMS" for name, (_, _, drive) in SERVERS.items()}
    server = Samba(site_root.parents[1] / "smbd", shares).start()
    yield server
    server.stop()


@pytest.fixture
def smb_ws(ws: Workspace, site_root: Path, site_samba: Samba, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The lab site, moved where Samba exports it, and an inventory that reaches its files over SMB."""
    if site_root.exists():
        shutil.rmtree(site_root)
    shutil.copytree(ws.site, site_root, symlinks=True)
    vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    monkeypatch.setenv(PASSWORD_ENV, site_samba.password)
    lines = ["sites:", "  DEMO:", "    code: DMO", "    timezone: America/Los_Angeles", "    platforms: [x86, alpha]",
             f"    mock: {{path: '{site_root}'}}", "    servers:"]
    for name, (role, platform, drive) in SERVERS.items():
        lines += [f"      {name}:", f"        role: {role}", f"        platform: {platform}",
                  f"        sms_root: '{drive}:\\SMS'",
                  (f"        files: {{transport: smb, host: {site_samba.host}, port: {site_samba.port}, "
                   f"username: {site_samba.user}, password: {{env: {PASSWORD_ENV}}}, share: {share_of(name)}}}"),
                  "        services: mock"]
    (ws.path / "sites-smb.yaml").write_text("\n".join(lines) + "\n")
    return ws


def cli(ws: Workspace, *args: str):
    return ws.cli(*args, "-i", ws.path / "sites-smb.yaml")


def allinfo(samba: Samba, server: str, paths: list[str]) -> dict[str, tuple[int, datetime]]:
    """Size and write time of files, as Samba's own client reports them (one smbclient run)."""
    out = samba.smbclient(share_of(server), "; ".join(f'allinfo "{rel}"' for rel in paths))
    found = {}
    for rel, block in zip(paths, out.split("altname:")[1:]):
        fields = dict(line.split(":", 1) for line in block.splitlines() if ":" in line)
        written = datetime.strptime(fields["write_time"].strip(), "%a %b %d %H:%M:%S %Y %Z")
        size = int(block.split("stream: [::$DATA], ")[1].split(" bytes")[0])
        found[rel] = (size, written.replace(tzinfo=timezone.utc))
    assert len(found) == len(paths), out
    return found


def test_apply_over_smb_writes_what_the_manifest_says(smb_ws: Workspace, site_samba: Samba, site_root: Path):
    ws = smb_ws
    planned = cli(ws, "plan", ws.playbook, "--site", "DEMO", "-f", "json")
    assert planned.code == 0, planned.text
    plan = json.loads(planned.out)
    expected = [(a["server"], a["path"], a["new"]) for a in plan["actions"] if a["kind"] == "replace"]
    expected += [(c["server"], c["path"], c["after"]) for a in plan["actions"] for c in a.get("copies", [])]
    # 9 replacements on the site server, 6 Helper.srv copies by the site reset, 15 Logon.srv copies by
    # Maintenance Manager (5 client files on each logon server)
    assert len(expected) == 30

    r = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    for server in SERVERS:
        mine = [(rel, new) for srv, rel, new in expected if srv == server]
        seen = allinfo(site_samba, server, [rel for rel, _ in mine])
        for rel, new in mine:
            assert seen[rel] == (new["size"], datetime.fromtimestamp(new["mtime_ns"] // 10**9, timezone.utc)), \
                (server, rel)

    v = cli(ws, "verify", ws.playbook, "--site", "DEMO", "-f", "json")
    assert v.code == 0, v.text
    report = json.loads(v.out)
    assert report["files"] and all(f["passed"] for f in report["files"])
    assert {f["server"] for f in report["files"]} == set(SERVERS)

    again = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert again.code == 0 and "nothing to do" in again.text.lower(), again.text


def test_failure_midway_restores_every_share_byte_for_byte(smb_ws: Workspace, site_root: Path):
    ws = smb_ws
    before = {name: snapshot(site_root / name / drive / "SMS", include_state=True)
              for name, (_, _, drive) in SERVERS.items()}
    before_services = services(site_root)
    failpoints.arm("apply.action.7.after")
    r = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert "apply.action.7.after" in failpoints.hits()
    assert r.code == 1, r.text
    assert "failed and the site was restored" in r.err
    for name, (_, _, drive) in SERVERS.items():
        after = snapshot(site_root / name / drive / "SMS", include_state=True)
        # deployer's run folder, and SMS's trace logs (the restarted SMS_EXECUTIVE wrote Maintman.log)
        after = {k: v for k, v in after.items() if Path(k).parts[0].casefold() not in (".deployer", "logs")}
        was = {k: v for k, v in before[name].items() if Path(k).parts[0].casefold() not in (".deployer", "logs")}
        assert diff(was, after) == [], name
    assert services(site_root) == before_services
