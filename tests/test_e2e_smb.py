"""End to end over SMB, each test once per dialect (SMB 2/3, and SMB1 as Windows NT 4.0 speaks it):
the Q241656 hotfix applied, verified, applied again and rolled back on servers whose SMS roots
are Samba shares.

The site is a mock site as `deployer lab init` makes it; each server's SMS root folder
(`<site>/<SERVER>/<drive>/SMS`) is exported by a private smbd as that server's share (limited to
NT1 for the SMB1 client), and the inventory reaches it with `files: {transport: smb}`. Services
stay on the mock SCM, which keeps its state beside those folders and, on a site reset (code
194), copies Site.srv to Helper.srv in them, as Site Configuration Manager would on the servers.
Samba's own client (itself limited to NT1 for that server) is the independent witness of what
deployer wrote.

test_scan_smb.py and test_prune_smb.py use these fixtures over SMB 2/3 (`dialect` defaults to it).
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
from servers.samba import DIALECTS, Samba, files_spec, start_samba

SERVERS = {"DEMOSRV": ("site_server", "x86", "C"), "DEMOLOG1": ("logon_server", "x86", "D"),
           "DEMOAXP1": ("logon_server", "alpha", "C")}
PASSWORD_ENV = "DEPLOYER_TEST_SMB_PASSWORD"
each_dialect = pytest.mark.parametrize("dialect", DIALECTS, indirect=True, scope="module")


def share_of(server: str) -> str:
    return f"{server}_SMS_SHR{SERVERS[server][2]}"


@pytest.fixture(scope="module")
def dialect(request) -> str:
    return getattr(request, "param", "smb2")


@pytest.fixture(scope="module")
def site_root(dialect: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"e2e-{dialect}") / "lab" / "DEMO"


@pytest.fixture(scope="module")
def site_samba(dialect: str, site_root: Path) -> Samba:
    shares = {share_of(name): site_root / name / drive / "SMS" for name, (_, _, drive) in SERVERS.items()}
    server = start_samba(site_root.parents[1] / "smbd", shares, dialect)
    yield server
    server.stop()


@pytest.fixture
def smb_ws(ws: Workspace, dialect: str, site_root: Path, site_samba: Samba,
           monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """The lab site, moved where Samba exports it, and an inventory that reaches its files over SMB."""
    if site_root.exists():
        shutil.rmtree(site_root)
    shutil.copytree(ws.site, site_root, symlinks=True)
    vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    monkeypatch.setenv(PASSWORD_ENV, site_samba.password)
    servers = {name: {"role": role, "platform": platform, "sms_root": f"{drive}:\\SMS",
                      "files": files_spec(site_samba, share_of(name), PASSWORD_ENV, dialect), "services": "mock"}
               for name, (role, platform, drive) in SERVERS.items()}
    site = {"code": "DMO", "timezone": "America/Los_Angeles", "platforms": ["x86", "alpha"],
            "mock": {"path": str(site_root)}, "servers": servers}
    (ws.path / "sites-smb.yaml").write_text(json.dumps({"sites": {"DEMO": site}}, indent=2) + "\n")  # JSON is YAML
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


def shares(site_root: Path) -> dict[str, dict]:
    """Every file under each server's SMS root but deployer's own run folder (backups, journal) and
    SMS's trace logs (the restarted SMS_EXECUTIVE appends to LOGS\\MAINTMAN.LOG, as on a real server)."""
    return {name: {k: v for k, v in snapshot(site_root / name / drive / "SMS", include_state=True).items()
                   if Path(k).parts[0].casefold() not in (".deployer", "logs")}
            for name, (_, _, drive) in SERVERS.items()}


@each_dialect
def test_apply_writes_what_the_manifest_says_verifies_and_rolls_back_byte_for_byte(
        smb_ws: Workspace, dialect: str, site_samba: Samba, site_root: Path):
    ws = smb_ws
    before, before_services = shares(site_root), services(site_root)
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
    # over SMB1, one warning for the run, naming every server reached over SMB1; over SMB 2/3 none
    warnings = [line for line in r.err.splitlines() if "SMB1" in line]
    if dialect == "smb1":
        assert len(warnings) == 1 and all(name in warnings[0] for name in SERVERS), r.err
    else:
        assert warnings == [], r.err
    for server in SERVERS:
        mine = [(rel, new) for srv, rel, new in expected if srv == server]
        seen = allinfo(site_samba, server, [rel for rel, _ in mine])
        for rel, new in mine:
            assert seen[rel] == (new["size"], datetime.fromtimestamp(new["mtime_ns"] // 10**9, timezone.utc)), \
                (server, rel)
    # and to the 100 ns, as the files on disk say
    now = shares(site_root)
    for srv, rel, new in expected:
        found = {k.casefold(): v for k, v in now[srv].items()}
        assert found[rel.replace("\\", "/").casefold()][1] == new["mtime_ns"], (srv, rel)

    v = cli(ws, "verify", ws.playbook, "--site", "DEMO", "-f", "json")
    assert v.code == 0, v.text
    report = json.loads(v.out)
    assert report["files"] and all(f["passed"] for f in report["files"])
    assert {f["server"] for f in report["files"]} == set(SERVERS)

    again = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert again.code == 0 and "nothing to do" in again.text.lower(), again.text

    back = cli(ws, "rollback", "--site", "DEMO", "--yes")
    assert back.code == 0, back.text
    after = shares(site_root)
    for name in SERVERS:
        assert diff(before[name], after[name]) == [], name  # contents and write times, byte for byte
    assert services(site_root) == before_services


@each_dialect
def test_failure_midway_restores_every_share_byte_for_byte(smb_ws: Workspace, site_root: Path):
    ws = smb_ws
    before, before_services = shares(site_root), services(site_root)
    failpoints.arm("apply.action.7.after")
    r = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert "apply.action.7.after" in failpoints.hits()
    assert r.code == 1, r.text
    assert "failed and the site was restored" in r.err
    after = shares(site_root)  # deployer's run folder and SMS's trace logs (Maintman.log) left out
    for name in SERVERS:
        assert diff(before[name], after[name]) == [], name
    assert services(site_root) == before_services
