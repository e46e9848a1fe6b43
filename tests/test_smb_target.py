"""The SMB target beyond the conformance suite: time bounds against a hung or killed server,
signing and encryption as Samba sees them, credentials, exact write times, server-side copy,
large transfers, and the inventory wiring of the smb and scmr transports."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import traceback
import uuid
from pathlib import Path

import leakcheck
import pytest
from smbprotocol.open import FilePipePrinterAccessMask as Access
from smbprotocol.open import ShareAccess

from deployer.model.inventory import load_inventory
from deployer.targets.base import (
    AccessDenied,
    AlreadyExists,
    ConnectionLost,
    DiskFull,
    NotFound,
    PathNotFound,
    SharingViolation,
    TargetError,
    TransportTimeout,
)
from deployer.targets.connect import SiteConnection, connect
from deployer.targets.scmr import ScmrServiceTransport
from deployer.targets.smb import SmbFileTransport
from deployer.targets.smbconn import AuthenticationFailed, SmbLink, status_error
from servers.mock_target import make_mock_server
from servers.samba import SHARE, Samba, held_open

PASSWORD_ENV = "DEPLOYER_TEST_SMB_PASSWORD"


def inventory(path: Path, samba: Samba, share: str = SHARE, **files: object) -> Path:
    """A one-server site whose files and services are on `samba`."""
    extra = "".join(f", {k}: {json.dumps(v)}" for k, v in files.items())
    path.write_text(
        "sites:\n  LAB:\n    code: LAB\n    servers:\n      LABSRV:\n        role: site_server\n"
        "        platform: x86\n"
        f"        files: {{transport: smb, host: {samba.host}, port: {samba.port}, username: {samba.user}, "
        f"password: {{env: {PASSWORD_ENV}}}, share: {share}{extra}}}\n"
        "        services: {transport: scmr}\n")
    return path


def site_connection(tmp_path: Path, samba: Samba, monkeypatch: pytest.MonkeyPatch, *, password: str | None = None,
                    **files: object) -> SiteConnection:
    monkeypatch.setenv(PASSWORD_ENV, samba.password if password is None else password)
    inv = load_inventory(inventory(tmp_path / "sites.yaml", samba, **files))
    return connect(inv.site("LAB"))


def session_info(samba: Samba, link: SmbLink) -> dict:
    """Samba's own view of our session (smbstatus), found by our end of the TCP connection."""
    port = link.connection.transport._sock.getsockname()[1]
    out = subprocess.run(["smbstatus", "-s", str(samba.conf), "-b", "--json"], capture_output=True, text=True,
                         check=True).stdout
    sessions = [s for s in json.loads(out)["sessions"].values() if s["hostname"].endswith(f":{port}")]
    assert len(sessions) == 1, out
    return sessions[0]


def all_text(exc: BaseException) -> str:
    """Everything an exception could show: message, repr and the whole chain as a traceback prints it."""
    return str(exc) + repr(exc) + "".join(traceback.format_exception(exc))


def random_file(root: Path, rel: str, size: int) -> bytes:
    data = os.urandom(size)
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return data


@pytest.fixture
def share_dir(samba: Samba) -> Path:
    return samba.shares[SHARE]


@pytest.fixture
def files(samba_link: SmbLink) -> SmbFileTransport:
    return SmbFileTransport("SAMBA", samba_link, SHARE)


@pytest.fixture
def spare(tmp_path: Path):
    """An smbd of its own for tests that hang or kill it."""
    (tmp_path / "spare").mkdir()
    server = Samba(tmp_path / "spare-smbd", {SHARE: tmp_path / "spare"}).start()
    yield server
    server.stop()


# --- inventory wiring --------------------------------------------------------------------


def test_files_and_services_of_a_server_share_one_encrypted_session(tmp_path, samba, monkeypatch, share_dir):
    with site_connection(tmp_path, samba, monkeypatch, encrypt=True) as conn:
        ep = conn.site_server
        assert isinstance(ep.files, SmbFileTransport) and isinstance(ep.services, ScmrServiceTransport)
        assert ep.services.link is ep.files.link  # one logon carries both (the scmr spec inherits encrypt)
        assert ep.services.query("Spooler").state == "running"
        ep.files.write_file("wired.txt", [b"over the inventory"])
        info = session_info(samba, ep.files.link)
        assert info["encryption"]["cipher"].startswith("AES")
    assert (share_dir / "wired.txt").read_bytes() == b"over the inventory"


def test_scmr_without_smb_files_connects_with_its_own_settings(tmp_path, samba, monkeypatch):
    make_mock_server(tmp_path / "mock", "LABSRV")
    monkeypatch.setenv(PASSWORD_ENV, samba.password)
    (tmp_path / "sites.yaml").write_text(
        "sites:\n  LAB:\n    code: LAB\n    mock: {path: mock}\n    servers:\n      LABSRV:\n"
        "        role: site_server\n        platform: x86\n"
        f"        services: {{transport: scmr, host: {samba.host}, port: {samba.port}, username: {samba.user}, "
        f"password: {{env: {PASSWORD_ENV}}}, timeout: 7}}\n")
    with connect(load_inventory(tmp_path / "sites.yaml").site("LAB")) as conn:
        services = conn.site_server.services
        assert isinstance(services, ScmrServiceTransport) and services.timeout == 7
        assert services.link.options.port == samba.port
        assert services.query("Spooler").state == "running"


def test_missing_share_is_reported_at_connect(tmp_path, samba, monkeypatch):
    with pytest.raises(TargetError) as e:
        site_connection(tmp_path, samba, monkeypatch, share="NO_SUCH_SHARE")
    assert e.value.winerror == 67 and "no share NO_SUCH_SHARE" in str(e.value)


# --- time bounds -------------------------------------------------------------------------


def test_a_hung_server_times_out_within_the_bound(tmp_path, spare, monkeypatch):
    bound = 1.0
    with site_connection(tmp_path, spare, monkeypatch, timeout=bound) as conn:
        ep = conn.site_server
        ep.files.write_file("A.DLL", [b"a"])

        def upload():
            for i in range(64):
                if i == 4:
                    spare.signal(signal.SIGSTOP)  # smbd and its children stop mid-transfer
                yield os.urandom(1 << 20)

        cases = [("write", lambda: ep.files.write_file("B.DLL", upload())),
                 ("stat", lambda: ep.files.stat("A.DLL")),
                 ("query Spooler", lambda: ep.services.query("Spooler"))]
        for what, call in cases:
            if what != "write":
                spare.signal(signal.SIGSTOP)
            start = time.monotonic()
            try:
                with pytest.raises(TransportTimeout) as e:
                    call()
                elapsed = time.monotonic() - start
            finally:
                spare.signal(signal.SIGCONT)
            assert bound - 0.1 <= elapsed < bound + 1.0, (what, elapsed)
            assert e.value.winerror == 1460
            assert f"within {bound:g} s" in str(e.value) and what in str(e.value)
            assert spare.password not in all_text(e.value)
            assert ep.files.stat("A.DLL").size == 1  # and the next operation reconnects

        # a server that hangs before it has said a word: accepted by the kernel, never negotiated
        conn2_link = spare.link(timeout=bound)
        spare.signal(signal.SIGSTOP)
        start = time.monotonic()
        try:
            with pytest.raises(TransportTimeout):
                SmbFileTransport("SPARE", conn2_link, SHARE).stat("A.DLL")
        finally:
            spare.signal(signal.SIGCONT)
        assert time.monotonic() - start < bound + 1.0
        conn2_link.close()

        # after a timeout, closing does not wait for the hung server a second time
        spare.signal(signal.SIGSTOP)
        try:
            with pytest.raises(TransportTimeout):
                ep.services.query("Spooler")
            start = time.monotonic()
            conn.close()
            assert time.monotonic() - start < 0.5
        finally:
            spare.signal(signal.SIGCONT)


def test_a_killed_server_is_a_lost_connection_at_once(tmp_path, spare, monkeypatch):
    with site_connection(tmp_path, spare, monkeypatch, timeout=30) as conn:
        ep = conn.site_server
        ep.files.write_file("A.DLL", [b"a"])
        killed_at = []

        def upload():
            for i in range(256):
                if i == 4:
                    spare.kill()
                    killed_at.append(time.monotonic())
                yield os.urandom(1 << 20)

        with pytest.raises(ConnectionLost) as e:
            ep.files.write_file("B.DLL", upload())
        assert time.monotonic() - killed_at[0] < 1.0
        assert e.value.winerror == 64 and "lost" in str(e.value)
        start = time.monotonic()
        with pytest.raises(ConnectionLost) as e:
            ep.services.query("Spooler")
        assert time.monotonic() - start < 1.0
        assert "cannot connect" in str(e.value) and "refused" in str(e.value).lower()


# --- security ----------------------------------------------------------------------------


@pytest.mark.parametrize("options, signing, encryption", [
    ({}, "full", False),
    ({"encrypt": True}, None, True),
    # smbprotocol alone cannot tree-connect to Samba without signing (jborean93/smbprotocol#290):
    # with require_signing off the session still signs, it only stops insisting on it
    ({"require_signing": False}, "partial", False),
])
def test_signing_and_encryption_as_samba_sees_them(samba, share_dir, options, signing, encryption):
    link = samba.link(**options)
    try:
        t = SmbFileTransport("SAMBA", link, SHARE)
        data = os.urandom(9 * (1 << 20) + 77)  # several WRITE and READ requests
        name = f"secure-{uuid.uuid4().hex[:6]}.bin"
        assert t.write_file(name, [data[i:i + 300_000] for i in range(0, len(data), 300_000)]) == len(data)
        assert (share_dir / name).read_bytes() == data
        assert t.sha256(name) == hashlib.sha256(data).hexdigest()
        info = session_info(samba, link)
        assert info["session_dialect"] == "SMB3_11"
        assert (info["encryption"]["cipher"] != "-") == encryption
        assert info["signing"]["cipher"].startswith("AES")
        if signing:
            assert info["signing"]["degree"] == signing
    finally:
        link.close()


def test_wrong_password_is_a_clear_logon_failure_without_the_password(tmp_path, samba, monkeypatch):
    wrong = leakcheck.register("Wr0ng-" + uuid.uuid4().hex)
    with pytest.raises(AuthenticationFailed) as e:
        site_connection(tmp_path, samba, monkeypatch, password=wrong)
    err = e.value
    assert isinstance(err, AccessDenied) and err.winerror == 1326
    assert "logon failure" in str(err) and samba.user in str(err) and PASSWORD_ENV in str(err)
    assert wrong not in all_text(err) and samba.password not in all_text(err)


def test_the_password_never_shows_in_errors_or_reprs(tmp_path, samba, monkeypatch, share_dir):
    errors: list[BaseException] = []
    with site_connection(tmp_path, samba, monkeypatch) as conn:
        ep = conn.site_server
        for call in (lambda: b"".join(ep.files.read_chunks("no-such-file")),
                     lambda: ep.files.mkdir(""),
                     lambda: ep.services.query("NO_SUCH_SERVICE"),
                     lambda: ep.files.write_file("no\\such\\folder\\x", [b"x"])):
            try:
                call()
            except TargetError as exc:
                errors.append(exc)
        shown = [repr(conn), repr(ep), repr(ep.files), repr(ep.services), repr(ep.files.link),
                 str(vars(ep.files)), str(vars(ep.services))]
    assert len(errors) == 4
    for text in [*map(all_text, errors), *shown]:
        assert samba.password not in text


# --- file semantics specific to SMB ------------------------------------------------------


def test_write_times_are_exact_filetimes(files, share_dir):
    files.write_file("TIME.DLL", [b"t"])
    exact = 937_015_200 * 10**9 + 1_234_500  # 100 ns steps below the second survive
    files.set_mtime("TIME.DLL", exact)
    assert files.stat("TIME.DLL").mtime_ns == exact
    assert (share_dir / "TIME.DLL").stat().st_mtime_ns == exact  # what the server stored
    assert [e.mtime_ns for e in files.listdir("") if e.name == "TIME.DLL"] == [exact]


def test_copy_runs_on_the_server_and_keeps_the_write_time(files, share_dir, monkeypatch):
    data = random_file(share_dir, "big/SRC.BIN", 40 * (1 << 20) + 3)  # three FSCTL_SRV_COPYCHUNK requests
    files.set_mtime("big\\SRC.BIN", 917_566_200 * 10**9)

    def no_client_transfer(*a, **kw):
        raise AssertionError("copy moved the data through the client")

    monkeypatch.setattr(SmbLink, "write_stream", no_client_transfer)
    monkeypatch.setattr(SmbLink, "read_requests", no_client_transfer)
    files.copy("big\\SRC.BIN", "big\\BACKUP.BIN")
    assert (share_dir / "big" / "BACKUP.BIN").read_bytes() == data
    assert files.stat("big\\BACKUP.BIN").mtime_ns == 917_566_200 * 10**9
    files.copy("big\\SRC.BIN", "big\\BACKUP.BIN")  # over an existing copy
    assert (share_dir / "big" / "BACKUP.BIN").stat().st_size == len(data)


def test_a_file_open_for_writing_elsewhere_can_still_be_read_and_backed_up(files, samba, share_dir):
    random_file(share_dir, "LOG.TXT", 100)
    with held_open(samba, SHARE, "LOG.TXT", access=Access.FILE_READ_DATA | Access.FILE_WRITE_DATA,
                   share_access=ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE):
        assert b"".join(files.read_chunks("LOG.TXT")) == (share_dir / "LOG.TXT").read_bytes()
        files.copy("LOG.TXT", "LOG.BAK")
        with pytest.raises(SharingViolation):
            files.remove("LOG.TXT")
    assert (share_dir / "LOG.BAK").read_bytes() == (share_dir / "LOG.TXT").read_bytes()


def test_large_transfers_round_trip(files, share_dir):
    sizes = [7, 65_536, 13 * (1 << 20) + 12_345]
    for n in sizes:
        data = os.urandom(n)
        pieces = [data[i:i + 777_777] for i in range(0, n, 777_777)]  # not aligned to any request size
        assert files.write_file(f"LARGE-{n}.BIN", pieces) == n
        assert (share_dir / f"LARGE-{n}.BIN").read_bytes() == data
        assert b"".join(files.read_chunks(f"LARGE-{n}.BIN", chunk=1 << 20)) == data
    # a read abandoned half way leaves the connection usable
    reader = files.read_chunks(f"LARGE-{sizes[-1]}.BIN", chunk=1 << 20)
    next(reader)
    reader.close()
    assert files.stat(f"LARGE-{sizes[-1]}.BIN").size == sizes[-1]


def test_errors_carry_the_windows_codes(files, share_dir):
    random_file(share_dir, "codes/FILE.DLL", 3)
    checks = [
        (lambda: files.mkdir("codes"), AlreadyExists, 183),
        (lambda: files.mkdir("codes\\no\\deeper"), PathNotFound, 3),
        (lambda: files.listdir("codes\\FILE.DLL"), TargetError, 267),
        (lambda: files.rmdir("codes"), TargetError, 145),
        (lambda: files.remove("codes"), AccessDenied, 5),
        (lambda: files.rename("codes\\NONE.DLL", "codes\\X.DLL"), NotFound, 2),
        (lambda: files.write_file("codes\\FILE.DLL", [b"x"], exclusive=True), AlreadyExists, 183),
    ]
    for call, cls, code in checks:
        with pytest.raises(cls) as e:
            call()
        assert e.value.winerror == code, e.value


def test_ntstatus_mapping():
    expected = {0xC0000043: (SharingViolation, 32), 0xC0000022: (AccessDenied, 5), 0xC0000121: (AccessDenied, 5),
                0xC0000034: (NotFound, 2), 0xC000003A: (PathNotFound, 3), 0xC0000103: (PathNotFound, 3),
                0xC0000035: (AlreadyExists, 183), 0xC000007F: (DiskFull, 112), 0xC000006D: (AuthenticationFailed, 1326),
                0xC00000B5: (TransportTimeout, 1460), 0xC00000C9: (ConnectionLost, 64)}
    for status, (cls, code) in expected.items():
        err = status_error(status, "write", server="S", path="P")
        assert type(err) is cls and err.winerror == code, hex(status)
        assert str(err).startswith("S: P: write: ")
    unknown = status_error(0xC0001234, "write", server="S", path="P")
    assert type(unknown) is TargetError and "0xC0001234" in str(unknown)


@pytest.mark.parametrize("protocol, dialect, signing", [
    ("SMB2_02", "SMB2_02", "HMAC-SHA256"),  # no multi-credit: writes of 64 KiB through smbprotocol
    ("SMB2_10", "SMB2_10", "HMAC-SHA256"),
    ("SMB3_00", "SMB3_00", "AES-128-CMAC"),
    ("SMB3_02", "SMB3_02", "AES-128-CMAC"),
])
def test_older_dialects_sign_with_their_own_algorithms(tmp_path, protocol, dialect, signing):
    """The WRITE fast path signs by itself: every algorithm must give what the server checks."""
    (tmp_path / "share").mkdir()
    server = Samba(tmp_path / "smbd", {SHARE: tmp_path / "share"}, extra={"server max protocol": protocol}).start()
    link = server.link()
    try:
        t = SmbFileTransport("OLD", link, SHARE)
        data = os.urandom(5 * (1 << 20) + 1)
        assert t.write_file("OLD.BIN", [data]) == len(data)
        assert (tmp_path / "share" / "OLD.BIN").read_bytes() == data
        assert b"".join(t.read_chunks("OLD.BIN")) == data
        info = session_info(server, link)
        assert (info["session_dialect"], info["signing"]["cipher"]) == (dialect, signing)
    finally:
        link.close()
        server.stop()
