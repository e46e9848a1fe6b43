"""Faults of a real SMB1 server during a run (the ones of test_faults_smb.py that apply to SMB1):
killed and hung mid-transfer, a read-only destination, a destination another SMB1 client holds
open. Each gives a clear error within the configured bound, and the site comes back byte for
byte, at once or through `deployer recover`.

The site server's SMS root is served by its own NT1-only smbd per test (so it can be killed or
paused); the logon servers stay on the mock target.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from hotfix import vendor_payloads
from conftest import Workspace
from deployer import failpoints
from servers.samba import NT1_EXTRA, Samba, held_open_smb1
from test_faults_smb import BOUND, SHARE, SmbSite

ENV = "DEPLOYER_TEST_FAULT_SMB1_PASSWORD"


def _serve_site_server_over_smb1(ws: Workspace, samba: Samba) -> None:
    old = "      DEMOSRV:  {role: site_server,  platform: x86,   sms_root: 'C:\\SMS'}"
    text = ws.inventory.read_text()
    assert old in text
    new = ("      DEMOSRV:\n        role: site_server\n        platform: x86\n        sms_root: 'C:\\SMS'\n"
           f"        files: {{transport: smb, dialect: smb1, host: {samba.host}, port: {samba.port}, "
           f"username: {samba.user}, password: {{env: {ENV}}}, share: {SHARE}, timeout: {BOUND}}}\n"
           "        services: mock")
    ws.inventory.write_text(text.replace(old, new))


@pytest.fixture
def smb1_site(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    share_dir = ws.server("DEMOSRV")
    vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    samba = Samba(tmp_path / "smbd", {SHARE: share_dir}, protocol="NT1", extra=NT1_EXTRA).start()
    monkeypatch.setenv(ENV, samba.password)
    _serve_site_server_over_smb1(ws, samba)
    yield SmbSite(ws, samba, share_dir)
    samba.stop()


def _on(point: str, action) -> None:
    failpoints.arm(point, "call", lambda name: action())


def test_server_killed_mid_transfer_and_back_at_once(smb1_site: SmbSite):
    before = smb1_site.ws.state()

    def crash_and_reboot() -> None:
        smb1_site.samba.kill()
        smb1_site.samba.restart()

    _on("apply.stage.5.midcopy", crash_and_reboot)
    r, elapsed = smb1_site.apply()
    assert r.code == 1, r.text
    assert "connection" in r.err.lower() and "Windows error 64" in r.err
    assert elapsed < 20
    assert smb1_site.ws.state() == before


def test_server_killed_and_still_down_then_recovered(smb1_site: SmbSite):
    before = smb1_site.ws.state()
    _on("apply.stage.5.midcopy", smb1_site.samba.kill)
    r, elapsed = smb1_site.apply()
    assert r.code == 4, r.text
    assert "could NOT be fully restored" in r.err and "deployer recover" in r.err
    assert elapsed < 6 * BOUND + 10
    smb1_site.samba.restart()
    ws = smb1_site.ws
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert ws.state() == before


def test_server_hung_mid_transfer_fails_within_the_bound(smb1_site: SmbSite):
    before = smb1_site.ws.state()
    marks: dict[str, float] = {}

    def hang() -> None:
        marks["stopped"] = time.monotonic()
        smb1_site.samba.signal(signal.SIGSTOP)

    def wake() -> None:
        marks["gave_up"] = time.monotonic()
        smb1_site.samba.signal(signal.SIGCONT)

    _on("apply.stage.5.midcopy", hang)
    failpoints.arm("apply.rollback", "call", lambda name: wake())
    r, _ = smb1_site.apply()
    assert r.code == 1, r.text
    assert f"within {BOUND:g} s" in r.err and "Windows error 1460" in r.err
    waited = marks["gave_up"] - marks["stopped"]
    assert BOUND - 0.2 <= waited < BOUND + 1.5, waited
    assert smb1_site.ws.state() == before


def test_permission_denied_on_a_destination(smb1_site: SmbSite):
    rel = r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMWIN16.EXE"
    smb1_site.samba.smbclient(SHARE, f'setmode "{rel}" +r')
    before = smb1_site.ws.state()
    r, elapsed = smb1_site.apply()
    assert r.code == 1, r.text
    assert "PCMWIN16.EXE" in r.err and "Windows error 5" in r.err
    assert elapsed < 30
    assert smb1_site.ws.state() == before


def test_destination_held_open_by_another_smb1_client(smb1_site: SmbSite):
    rel = r"SITE.SRV\X86.BIN\BASE.DLL"
    before = smb1_site.ws.state()
    with held_open_smb1(smb1_site.samba, SHARE, rel):
        r, elapsed = smb1_site.apply()
    assert r.code == 1, r.text
    assert "BASE.DLL" in r.err and "being used by another process (Windows error 32)" in r.err
    assert elapsed < 30
    assert smb1_site.ws.state() == before
