"""Faults of a real SMB server during a run, over SMB 2/3 and over SMB1 alike (each test runs
once per dialect): each gives a clear error within the configured bound, and the site comes
back byte for byte (at once, or through `deployer recover` when the server itself was gone).

The site server's SMS root is served by a private smbd of its own per test (so it can be
killed, paused or given a full disk), limited to NT1 for the SMB1 client; the logon servers
stay on the mock target.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hotfix import vendor_payloads
from conftest import Workspace
from deployer import failpoints
from deployer.targets.smb import SmbFileTransport
from deployer.targets.smb1 import Smb1FileTransport
from servers.samba import DIALECTS, Samba, files_spec, held_open, held_open_smb1, serve_over_smb, start_samba

BOUND = 2.0  # the inventory's timeout for every SMB operation, seconds
SHARE = "SMS_SHRC"
ENV = "DEPLOYER_TEST_FAULT_SMB_PASSWORD"
TRANSPORTS = {"smb2": SmbFileTransport, "smb1": Smb1FileTransport}
HOLDERS = {"smb2": held_open, "smb1": held_open_smb1}  # another client of the same dialect


@dataclass
class SmbSite:
    ws: Workspace
    samba: Samba
    share_dir: Path
    dialect: str

    def apply(self):
        start = time.monotonic()
        r = self.ws.cli("apply", self.ws.playbook, "--site", "DEMO", "--yes", "-i", self.ws.inventory)
        return r, time.monotonic() - start

    def journal(self) -> list[dict]:
        (path,) = list(self.share_dir.glob(".deployer/runs/*/journal.jsonl"))
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(params=DIALECTS)
def smb_site(request, ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    share_dir = ws.server("DEMOSRV")
    vendor_payloads(ws.path / "payloads")  # a real server takes the vendor's files, never lab stand-ins
    samba = start_samba(tmp_path / "smbd", {SHARE: share_dir}, request.param)
    monkeypatch.setenv(ENV, samba.password)
    serve_over_smb(ws.inventory, "DEMOSRV", files_spec(samba, SHARE, ENV, request.param, timeout=BOUND))
    yield SmbSite(ws, samba, share_dir, request.param)
    samba.stop()


def fails_and_restores(site: SmbSite, *said: str, within: float = 30):
    """The run fails (exit 1) within `within` seconds saying each of `said`, and the site is as before."""
    before = site.ws.state()
    r, elapsed = site.apply()
    assert r.code == 1, r.text
    assert all(text in r.err for text in said), r.err
    assert elapsed < within
    assert site.ws.state() == before
    return r


def _kill_on(point: str, action) -> None:
    failpoints.arm(point, "call", lambda name: action())


def test_server_killed_mid_transfer_and_back_at_once(smb_site: SmbSite):
    def crash_and_reboot() -> None:
        smb_site.samba.kill()
        smb_site.samba.restart()

    _kill_on("apply.stage.5.midcopy", crash_and_reboot)  # uploading the Alpha Pcmsvc32.exe
    r = fails_and_restores(smb_site, "Windows error 64", within=20)
    assert "connection" in r.err.lower()


def test_server_killed_and_still_down_then_recovered(smb_site: SmbSite):
    before = smb_site.ws.state()
    _kill_on("apply.stage.5.midcopy", smb_site.samba.kill)
    r, elapsed = smb_site.apply()
    assert r.code == 4, r.text  # nothing can be undone on a server that is not there
    assert "could NOT be fully restored" in r.err and "deployer recover" in r.err
    assert elapsed < 6 * BOUND + 10  # each step gives up quickly: refused, or within the bound
    smb_site.samba.restart()
    ws = smb_site.ws
    refused = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert refused.code == 2 and "unfinished run" in refused.err
    rec = ws.cli("recover", "--site", "DEMO", "--yes", "--break-lock", "-i", ws.inventory)
    assert rec.code == 1, rec.text
    assert "while preparing" in rec.out
    assert ws.state() == before


def test_server_hung_mid_transfer_fails_within_the_bound(smb_site: SmbSite):
    before = smb_site.ws.state()
    marks: dict[str, float] = {}

    def hang() -> None:
        marks["stopped"] = time.monotonic()
        smb_site.samba.signal(signal.SIGSTOP)

    def wake() -> None:  # the server comes back once deployer has given up on it
        marks["gave_up"] = time.monotonic()
        smb_site.samba.signal(signal.SIGCONT)

    _kill_on("apply.stage.5.midcopy", hang)
    failpoints.arm("apply.rollback", "call", lambda name: wake())
    r, _ = smb_site.apply()
    assert r.code == 1, r.text
    assert f"within {BOUND:g} s" in r.err and "Windows error 1460" in r.err
    waited = marks["gave_up"] - marks["stopped"]
    assert BOUND - 0.2 <= waited < BOUND + 1.5, waited
    assert smb_site.ws.state() == before


def test_share_full(smb_site: SmbSite, tmp_path: Path):
    """The site server's disk has room for the site but not for the backups and uploads."""
    share, samba = smb_site.share_dir, smb_site.samba
    samba.stop()
    aside = tmp_path / "aside"
    shutil.copytree(share, aside, symlinks=True)
    used = sum(p.stat().st_size for p in aside.rglob("*") if p.is_file())
    shutil.rmtree(share)
    share.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + (2 << 20)}", "tmpfs", str(share)], check=True)
    try:
        shutil.copytree(aside, share, symlinks=True, dirs_exist_ok=True)
        samba.restart()
        fails_and_restores(smb_site, "not enough space on the disk", "Windows error 112")
        assert not [p for p in share.rglob("*~dpl*") if ".deployer" not in p.parts]
    finally:
        samba.stop()
        subprocess.run(["umount", str(share)], check=True)


def test_permission_denied_on_a_destination(smb_site: SmbSite):
    rel = r"SITE.SRV\MAINCFG.BOX\CLIENT.SRC\X86.BIN\PCMWIN16.EXE"
    smb_site.samba.smbclient(SHARE, f'setmode "{rel}" +r')
    fails_and_restores(smb_site, "PCMWIN16.EXE", "Windows error 5")
    assert "R" in smb_site.samba.smbclient(SHARE, f'allinfo "{rel}"').split("attributes:")[1].split("\n")[0]


def test_destination_held_open_by_another_smb_client(smb_site: SmbSite):
    rel = r"SITE.SRV\X86.BIN\BASE.DLL"
    with HOLDERS[smb_site.dialect](smb_site.samba, SHARE, rel):
        fails_and_restores(smb_site, "BASE.DLL", "being used by another process (Windows error 32)")


def test_payload_byte_corrupted_in_transit_is_caught_before_the_swap(smb_site: SmbSite, monkeypatch):
    transport = TRANSPORTS[smb_site.dialect]
    real = transport.write_file
    flipped: list[str] = []

    def flip_one_byte(self, path, chunks, *, exclusive=False):
        if "BASE.DLL.~DPL" not in path.upper():
            return real(self, path, chunks, exclusive=exclusive)

        def damaged():
            for i, block in enumerate(chunks):
                if i == 1:
                    block = bytes([block[0] ^ 0x01]) + block[1:]
                    flipped.append(path)
                yield block
        return real(self, path, damaged(), exclusive=exclusive)

    monkeypatch.setattr(transport, "write_file", flip_one_byte)
    before = smb_site.ws.state()
    r, _ = smb_site.apply()
    assert flipped, "the fault was never injected"
    assert r.code == 1, r.text
    assert "does not match the hotfix file" in r.err and "nothing was replaced" in r.err
    assert smb_site.ws.state() == before
    assert not [e for e in smb_site.journal() if e["event"] == "begin"]  # not one action ran


@pytest.mark.parametrize("dialect", DIALECTS)
def test_logon_server_hung_for_good_during_the_rollback(ws: Workspace, tmp_path: Path, monkeypatch, dialect):
    """The undo asks a hung server once, waits the bound once, lists what it could not restore
    there, and leaves it to `deployer recover`, instead of waiting the bound at every step."""
    samba = start_samba(tmp_path / "smbd-log1", {SHARE: ws.server("DEMOLOG1")}, dialect)
    try:
        monkeypatch.setenv(ENV, samba.password)
        serve_over_smb(ws.inventory, "DEMOLOG1", files_spec(samba, SHARE, ENV, dialect, timeout=BOUND))
        before = ws.state()
        failpoints.arm("apply.action.14.after")  # the site reset has installed DEMOLOG1's Helper.srv copies
        failpoints.arm("apply.rollback", "call", lambda name: samba.signal(signal.SIGSTOP))
        start = time.monotonic()
        r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
        elapsed = time.monotonic() - start
        assert r.code == 4, r.text
        assert "DEMOLOG1 could not be reached, so nothing on it was checked" in r.err
        assert elapsed < 2 * BOUND + 8, elapsed  # one bounded wait for DEMOLOG1, not one per step
        failpoints.reset()
        samba.signal(signal.SIGCONT)
        rec = ws.cli("recover", "--site", "DEMO", "--yes", "-i", ws.inventory)
        assert rec.code == 1, rec.text
        assert ws.state() == before
    finally:
        samba.stop()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_server_that_hangs_during_the_rollback_is_waited_for_once(ws: Workspace, tmp_path: Path, monkeypatch,
                                                                     dialect):
    """Counted, not timed: the undo's first bounded wait on the hung logon server (while it
    compares what the run changed) marks the server unreachable, so neither the batch of stats
    for the temporary names nor anything after it waits for that server again."""
    from deployer.errors import TransportTimeout

    waits: list[str] = []
    real_init = TransportTimeout.__init__

    def counted(self, *args, **kw):
        real_init(self, *args, **kw)
        if kw.get("server") == "DEMOLOG1":
            waits.append(str(self))

    monkeypatch.setattr(TransportTimeout, "__init__", counted)
    logon = start_samba(tmp_path / "smbd-logon", {SHARE: ws.server("DEMOLOG1")}, dialect)
    try:
        monkeypatch.setenv(ENV, logon.password)
        serve_over_smb(ws.inventory, "DEMOLOG1", files_spec(logon, SHARE, ENV, dialect, timeout=BOUND))
        failpoints.arm("apply.action.14.after")  # the site reset has installed DEMOLOG1's Helper.srv copies
        failpoints.arm("apply.rollback", "call", lambda name: logon.signal(signal.SIGSTOP))
        r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
        assert r.code == 4 and "DEMOLOG1 could not be reached" in r.err, r.text
        assert len(waits) == 1, waits
    finally:
        logon.signal(signal.SIGCONT)
        logon.stop()
