"""SMB1 specifics against real servers: dialect mismatches explained (exit 2, nothing touched),
signing required and checked, the inventory's SMB1 settings, and the replace SMB1 offers to
servers without pass-through information levels (Windows NT 4.0).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conftest import Workspace
from deployer.errors import AuthenticationFailed, NotFound
from deployer.plan.model import Plan
from deployer.plan.observe import read_file
from deployer.run.context import RunContext
from deployer.run.journal import Journal
from deployer.run.store import temp_path
from deployer.run.undo import Undo
from deployer.sms.platforms import PLATFORMS
from deployer.targets.base import ConnectionLost, TargetError
from deployer.targets.connect import Endpoint, SiteConnection
from deployer.targets.smb1 import ASIDE_SUFFIX, Smb1FileTransport
from deployer.errors import SigningUnavailable
from deployer.targets.smb1conn import Smb1Link
from deployer.errors import DialectMismatch
from deployer.targets.smb1probe import NOT_SMB, SMB1, SMB2, probe
from servers.samba import SHARE, Samba

ENV = "DEPLOYER_TEST_SMB1_TARGET_PASSWORD"


def _site_server_on(ws: Workspace, samba_or_port, *, extra: str = "", user: str = "nobody") -> None:
    """DEMOSRV's files on an SMB server (the logon servers stay on the mock)."""
    old = "      DEMOSRV:  {role: site_server,  platform: x86,   sms_root: 'C:\\SMS'}"
    text = ws.inventory.read_text()
    assert old in text
    port = samba_or_port if isinstance(samba_or_port, int) else samba_or_port.port
    user = user if isinstance(samba_or_port, int) else samba_or_port.user
    new = ("      DEMOSRV:\n        role: site_server\n        platform: x86\n        sms_root: 'C:\\SMS'\n"
           f"        files: {{transport: smb, host: 127.0.0.1, port: {port}, username: {user}, "
           f"password: {{env: {ENV}}}, share: {SHARE}, timeout: 5{extra}}}\n        services: mock")
    ws.inventory.write_text(text.replace(old, new))


# --- which dialect a server speaks ----------------------------------------------------------


def test_probe_tells_smb1_only_smb2_and_not_smb(samba_nt1: Samba, samba: Samba, sshd):
    assert probe(samba_nt1.host, samba_nt1.port, 5).kind == SMB1
    assert probe(samba.host, samba.port, 5).kind == SMB2
    offer = probe("127.0.0.1", sshd.port, 5)
    assert offer.kind == NOT_SMB and "SSH-2.0" in offer.detail


def test_smb2_client_meeting_an_smb1_only_server_says_to_set_dialect(ws: Workspace, samba_nt1: Samba,
                                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV, samba_nt1.password)
    _site_server_on(ws, samba_nt1)
    before = ws.state()
    for cmd in ("plan", "apply"):
        r = ws.cli(cmd, ws.playbook, "--site", "DEMO", *(["--yes"] if cmd == "apply" else []), "-i", ws.inventory)
        assert r.code == 2, r.text
        assert "DEMOSRV offers only SMB1 (NT LM 0.12); set `dialect: smb1` for it in the inventory" in r.err, r.err
        assert "Traceback" not in r.text
    assert ws.state() == before
    assert not list(samba_nt1.shares[SHARE].glob(".deployer"))


def test_smb1_client_meeting_a_server_with_smb1_disabled_says_so(ws: Workspace, samba: Samba,
                                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV, samba.password)
    _site_server_on(ws, samba, extra=", dialect: smb1")
    before = ws.state()
    r = ws.cli("apply", ws.playbook, "--site", "DEMO", "--yes", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert "DEMOSRV has SMB1 disabled: it offers only SMB 2/3" in r.err and "remove `dialect: smb1`" in r.err
    assert "Traceback" not in r.text
    assert ws.state() == before


@pytest.mark.parametrize("dialect", ["", ", dialect: smb1"])
def test_a_port_that_does_not_speak_smb_says_so(ws: Workspace, sshd, monkeypatch: pytest.MonkeyPatch, dialect):
    monkeypatch.setenv(ENV, "not-used-x")
    _site_server_on(ws, sshd.port, extra=dialect)
    before = ws.state()
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert f"127.0.0.1:{sshd.port} does not speak SMB" in r.err and "SSH-2.0" in r.err, r.err
    assert ws.state() == before


def test_nothing_falls_back_to_smb1_on_its_own(samba_nt1: Samba):
    """The SMB 2/3 link, pointed at an SMB1-only server, fails with the explanation: it never tries SMB1."""
    link = samba_nt1.link(timeout=5)
    try:
        with pytest.raises(DialectMismatch) as e:
            with link.op("connect"):
                pass
        assert e.value.exit_code == 2 and "offers only SMB1" in str(e.value)
    finally:
        link.close()


# --- signing and logon ----------------------------------------------------------------------


def test_signing_is_on_by_default_and_every_reply_is_checked(samba_nt1: Samba):
    link = samba_nt1.smb1_link()
    files = Smb1FileTransport("SAMBA1", link, SHARE)
    try:
        files.connect()
        assert link.signed
        name = f"signed-{uuid.uuid4().hex[:8]}.txt"
        files.write_file(name, [b"signed"])
        # a reply altered on the way (one bit of its last byte) is refused
        with link.op("tamper"):
            conn = link.conn
            receive = conn._recv_frame

            def altered() -> bytes:
                raw = receive()
                return raw[:-1] + bytes([raw[-1] ^ 1])

            conn._recv_frame = altered
        with pytest.raises(ConnectionLost) as e:
            files.stat(name)
        assert "does not verify" in str(e.value)
        assert files.stat(name).size == 6  # the next operation logs on afresh, signed
        assert link.signed
    finally:
        link.close()


def test_a_server_without_smb1_signing_is_refused_unless_told(tmp_path: Path):
    (tmp_path / "share").mkdir()
    server = Samba(tmp_path / "srv", {SHARE: tmp_path / "share"}, protocol="NT1",
                   extra={"server signing": "disabled"}).start()
    try:
        link = server.smb1_link(timeout=5)
        with pytest.raises(SigningUnavailable) as e:
            Smb1FileTransport("OLDNT", link, SHARE).connect()
        assert e.value.exit_code == 2 and "does not offer SMB1 signing" in str(e.value)
        assert "require_signing: false" in str(e.value)
        link.close()
        unsigned = server.smb1_link(timeout=5, require_signing=False)
        files = Smb1FileTransport("OLDNT", unsigned, SHARE)
        files.write_file("x.txt", [b"unsigned, as asked"])
        assert not unsigned.signed
        assert b"".join(files.read_chunks("x.txt")) == b"unsigned, as asked"
        unsigned.close()
    finally:
        server.stop()


def test_wrong_password_is_a_clear_exit_2_without_the_password(samba_nt1: Samba):
    link: Smb1Link = samba_nt1.smb1_link(password="Wrong-Password-1")
    try:
        with pytest.raises(AuthenticationFailed) as e:
            Smb1FileTransport("SAMBA1", link, SHARE).connect()
        assert type(e.value) is AuthenticationFailed and e.value.exit_code == 2 and e.value.winerror == 1326
        assert str(e.value) == (f"SAMBA1: logon: logon failure: unknown user name or bad password; check the user name "
                                f"{samba_nt1.user} on {samba_nt1.host}:{samba_nt1.port} and the password from the "
                                "test fixture (Windows error 1326)")
        assert "Wrong-Password-1" not in str(e.value) and samba_nt1.password not in str(e.value)
    finally:
        link.close()


# --- the inventory --------------------------------------------------------------------------


@pytest.mark.parametrize("extra, needle", [
    (", dialect: smb9", "dialect"),
    (", allow_ntlmv1: true", "allow_ntlmv1 applies only to dialect: smb1"),
    (", dialect: smb1, encrypt: true", "SMB1 has no encryption"),
])
def test_inventory_smb1_settings_are_checked(ws: Workspace, extra: str, needle: str):
    _site_server_on(ws, 445, extra=extra)
    r = ws.cli("plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory)
    assert r.code == 2, r.text
    assert needle in r.err, r.err
    assert f"{ws.inventory.name}:" in r.err, r.err  # file:line of the offending entry
    assert "Traceback" not in r.text


def test_nt1_is_an_alias_of_smb1(ws: Workspace, samba_nt1: Samba, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV, samba_nt1.password)
    _site_server_on(ws, samba_nt1, extra=", dialect: NT1")
    r = ws.cli("runs", "--site", "DEMO", "-i", ws.inventory)  # connects, lists the (no) runs on the share
    assert r.code == 0, r.text
    assert r.err.count("reached over SMB1") == 1 and "DEMOSRV" in r.err


# --- replace without pass-through levels (Windows NT 4.0) ------------------------------------


def test_replace_in_steps_where_the_server_has_no_atomic_rename(samba_nt1: Samba, samba_nt1_link: Smb1Link):
    files = Smb1FileTransport("NT4", samba_nt1_link, SHARE)
    files.atomic_replace = False  # as against NT 4.0, which lacks CAP_INFOLEVEL_PASSTHRU
    base = f"steps-{uuid.uuid4().hex[:8]}"
    files.mkdir(base)
    files.write_file(f"{base}\\BASE.DLL", [b"old"])
    files.set_mtime(f"{base}\\BASE.DLL", 937_015_200 * 10**9)
    files.write_file(f"{base}\\BASE.DLL.~new", [b"new"])
    files.rename(f"{base}\\BASE.DLL.~new", f"{base}\\base.dll", replace=True)
    assert b"".join(files.read_chunks(f"{base}\\BASE.DLL")) == b"new"
    assert [e.name for e in files.listdir(base)] == ["BASE.DLL"]  # the aside file is gone
    # the second step failing (its source is missing) puts the original back
    files.write_file(f"{base}\\OTHER.DLL", [b"kept"])
    renames: list[tuple[str, str]] = []
    real = files._rename_path

    def recorded(src: str, dst: str) -> None:
        renames.append((src.rpartition("\\")[2], dst.rpartition("\\")[2]))
        real(src, dst)

    files._rename_path = recorded
    with pytest.raises(NotFound) as e:
        files.rename(f"{base}\\MISSING.~new", f"{base}\\OTHER.DLL", replace=True)
    files._rename_path = real
    assert e.value.winerror == 2 and "MISSING.~new" in str(e.value)  # the first error is the one reported
    aside = f"OTHER.DLL{ASIDE_SUFFIX}"
    # aside, into place (fails), back from aside: the put-back really ran
    assert renames == [("OTHER.DLL", aside), ("MISSING.~new", "OTHER.DLL"), (aside, "OTHER.DLL")]
    assert b"".join(files.read_chunks(f"{base}\\OTHER.DLL")) == b"kept"
    assert files.stat(f"{base}\\OTHER.DLL{ASIDE_SUFFIX}") is None


def test_a_replace_cut_off_between_its_steps_is_undone_by_restoring_from_the_backup(samba_nt1: Samba,
                                                                                    samba_nt1_link: Smb1Link):
    """The connection dies after the file in the way was renamed aside: the destination name is
    missing. The rollback's own restore (Undo.restore_file: a copy of the backup beside the
    destination, its write time set and its sha256 checked, then a rename over the destination)
    puts it back byte for byte and clears the aside file."""
    files = Smb1FileTransport("NT4", samba_nt1_link, SHARE)
    files.atomic_replace = False
    base = f"cut-{uuid.uuid4().hex[:8]}"
    files.mkdir(base)
    files.write_file(f"{base}\\BASE.DLL", [b"original"])
    files.set_mtime(f"{base}\\BASE.DLL", 937_015_200 * 10**9)
    files.copy(f"{base}\\BASE.DLL", f"{base}\\BASE.DLL.backup")
    files.write_file(f"{base}\\BASE.DLL.~new", [b"new"])
    conn = SiteConnection(site=None, endpoints={"NT4": Endpoint("NT4", "site_server", PLATFORMS["x86"], "C:\\SMS",
                                                                  files, services=None)})  # a file restore only
    before = read_file(conn.endpoint("NT4"), f"{base}\\BASE.DLL")
    real = files._rename_path
    calls = []

    def dies_after_the_first_step(src: str, dst: str) -> None:
        calls.append((src, dst))
        if len(calls) >= 2:  # the connection is gone: the move into place and the put-back both fail
            raise ConnectionLost("the connection was lost", server="NT4")
        real(src, dst)

    files._rename_path = dies_after_the_first_step
    with pytest.raises(ConnectionLost):
        files.rename(f"{base}\\BASE.DLL.~new", f"{base}\\BASE.DLL", replace=True)
    files._rename_path = real
    assert files.stat(f"{base}\\BASE.DLL") is None  # the put-back after the failure was cut off too
    assert files.stat(f"{base}\\BASE.DLL{ASIDE_SUFFIX}") is not None
    undo = Undo(_empty_plan(), conn, Journal(files, "20261207-cut1"), RunContext("TEST"))
    undo.restore_file("NT4", f"{base}\\BASE.DLL", before, f"{base}\\BASE.DLL.backup")
    assert before.same_content(read_file(conn.endpoint("NT4"), f"{base}\\BASE.DLL"))  # write time included
    assert files.stat(f"{base}\\BASE.DLL{ASIDE_SUFFIX}") is None
    assert files.stat(temp_path(f"{base}\\BASE.DLL", "20261207-cut1", "restore")) is None


def _empty_plan() -> Plan:
    return Plan(kb="Q0", title=None, site="TEST", site_code="TST", rule="exact", timezone="UTC", playbook="",
                playbook_sha256="", manifest="", manifest_sha256="", inventory="", site_sha256="")


def test_a_folder_listing_refused_in_a_batch_is_that_folders_error_not_the_next_ones(samba_nt1_link: Smb1Link):
    """listdir_many sends each folder's one-name FIND and its listing together: a folder whose
    FIND the server refuses (here a name Windows forbids: ERROR_INVALID_NAME; on a real server,
    access denied) still has its listing's answer due, which must not be taken for the next
    folder's."""
    files = Smb1FileTransport("NT4", samba_nt1_link, SHARE)
    base = f"many-{uuid.uuid4().hex[:8]}"
    files.mkdir(base)
    for name in ("A", "B"):
        files.mkdir(f"{base}\\{name}")
        files.write_file(f"{base}\\{name}\\{name}.txt", [name.encode()])
    got = files.listdir_many([f"{base}\\bad|name", f"{base}\\A", f"{base}\\B"])
    assert isinstance(got[0], TargetError) and got[0].winerror == 123, got[0]
    assert [e.name for e in got[1]] == ["A.txt"], got[1]
    assert [e.name for e in got[2]] == ["B.txt"], got[2]
