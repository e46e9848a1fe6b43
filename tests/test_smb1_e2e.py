"""End to end over SMB1: the Q241656 hotfix applied, verified and rolled back through the SMB1
transport, on servers whose SMS roots are shares of a Samba limited to NT1 (NT LM 0.12), the
only dialect Windows NT 4.0 speaks.

As in test_e2e_smb.py, the site is a lab site whose server folders a private smbd exports;
services stay on the mock SCM. Samba's own client, itself limited to NT1, is the independent
witness of sizes and write times.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from hotfix import vendor_payloads
from conftest import Workspace, diff, services, snapshot
from servers.samba import NT1_EXTRA, Samba
from test_e2e_smb import SERVERS, allinfo, share_of

PASSWORD_ENV = "DEPLOYER_TEST_SMB1_PASSWORD"


@pytest.fixture(scope="module")
def site_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-smb1") / "lab" / "DEMO"


@pytest.fixture(scope="module")
def site_samba(site_root: Path) -> Samba:
    shares = {share_of(name): site_root / name / drive / "SMS" for name, (_, _, drive) in SERVERS.items()}
    server = Samba(site_root.parents[1] / "smbd", shares, protocol="NT1", extra=NT1_EXTRA).start()
    yield server
    server.stop()


@pytest.fixture
def smb1_ws(ws: Workspace, site_root: Path, site_samba: Samba, monkeypatch: pytest.MonkeyPatch) -> Workspace:
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
                  (f"        files: {{transport: smb, dialect: smb1, host: {site_samba.host}, port: {site_samba.port}, "
                   f"username: {site_samba.user}, password: {{env: {PASSWORD_ENV}}}, share: {share_of(name)}}}"),
                  "        services: mock"]
    (ws.path / "sites-smb1.yaml").write_text("\n".join(lines) + "\n")
    return ws


def cli(ws: Workspace, *args: str):
    return ws.cli(*args, "-i", ws.path / "sites-smb1.yaml")


def shares(site_root: Path) -> dict[str, dict]:
    """Every file under each server's SMS root but deployer's own run folder (backups, journal) and
    SMS's trace logs (the restarted SMS_EXECUTIVE appends to LOGS\\MAINTMAN.LOG, as on a real server)."""
    return {name: {k: v for k, v in snapshot(site_root / name / drive / "SMS", include_state=True).items()
                   if Path(k).parts[0].casefold() not in (".deployer", "logs")}
            for name, (_, _, drive) in SERVERS.items()}


def test_q241656_applies_verifies_and_rolls_back_byte_for_byte_over_smb1(smb1_ws: Workspace, site_samba: Samba,
                                                                         site_root: Path):
    ws = smb1_ws
    before, before_services = shares(site_root), services(site_root)
    planned = cli(ws, "plan", ws.playbook, "--site", "DEMO", "-f", "json")
    assert planned.code == 0, planned.text
    plan = json.loads(planned.out)
    expected = [(a["server"], a["path"], a["new"]) for a in plan["actions"] if a["kind"] == "replace"]
    expected += [(c["server"], c["path"], c["after"]) for a in plan["actions"] for c in a.get("copies", [])]
    assert len(expected) == 30  # 9 replacements, 6 Helper.srv copies, 15 Logon.srv copies (replication)

    r = cli(ws, "apply", ws.playbook, "--site", "DEMO", "--yes")
    assert r.code == 0, r.text
    # one warning for the run, naming every server reached over SMB1
    warnings = [line for line in r.err.splitlines() if "SMB1" in line]
    assert len(warnings) == 1 and all(name in warnings[0] for name in SERVERS), r.err
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

    back = cli(ws, "rollback", "--site", "DEMO", "--yes")
    assert back.code == 0, back.text
    after = shares(site_root)
    for name in SERVERS:
        assert diff(before[name], after[name]) == [], name  # contents and write times, byte for byte
    assert services(site_root) == before_services
