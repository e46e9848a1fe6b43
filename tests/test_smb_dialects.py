"""SMB 2/3 and SMB1 say the same thing for the same event: one session base (targets/smbsession.py)
for both dialects, each case checked against a real smbd of that dialect.

Each test here is a drift the two copies had before they were merged: an account given as
`user@realm` named (and sent) differently, a logon the server mapped to its guest account
taken by SMB 2/3 when signing was not required (and reported as a generic error when it was),
a refused connection reported by SMB1 as a lost one (64, not 1225), the password's source
hinted only for two of the logon failures on SMB1, and a missing share blamed on the link's
first server rather than the one whose operation ran.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from deployer.errors import AuthenticationFailed, ConnectFailed, ExitCode, TargetError
from deployer.targets.smb import SmbFileTransport
from deployer.targets.smb1 import Smb1FileTransport
from deployer.targets.smb1conn import Smb1Options
from deployer.targets.smbconn import SmbOptions
from servers.samba import NT1_EXTRA, SHARE, Samba, free_port

DIALECTS = ["smb2", "smb1"]


@dataclass
class Dialect:
    name: str
    samba: Samba

    def files(self, server: str = "X", **kw) -> SmbFileTransport | Smb1FileTransport:
        if self.name == "smb1":
            return Smb1FileTransport(server, self.samba.smb1_link(**kw), SHARE)
        return SmbFileTransport(server, self.samba.link(**kw), SHARE)

    def connect_error(self, **kw) -> TargetError:
        files = self.files(**kw)
        try:
            with pytest.raises(TargetError) as e:
                files.connect()
        finally:
            files.link.close()
        assert "Traceback" not in str(e.value)
        return e.value


def _samba(base: Path, dialect: str, extra: dict[str, str]) -> Samba:
    (base / "share").mkdir(parents=True, exist_ok=True)
    if dialect == "smb1":
        return Samba(base / "server", {SHARE: base / "share"}, protocol="NT1", extra={**NT1_EXTRA, **extra}).start()
    return Samba(base / "server", {SHARE: base / "share"}, extra=extra).start()


@pytest.fixture(scope="module", params=DIALECTS)
def guest_mapping(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dialect]:
    """A server that lets an unknown user in as its guest, as `map to guest = bad user` does."""
    server = _samba(tmp_path_factory.mktemp(f"guest-{request.param}"), request.param, {"map to guest": "bad user"})
    yield Dialect(request.param, server)
    server.stop()


@pytest.fixture(params=DIALECTS)
def dialect(request, samba: Samba, samba_nt1: Samba) -> Dialect:
    return Dialect(request.param, samba_nt1 if request.param == "smb1" else samba)


@pytest.mark.parametrize("signing", [True, False], ids=["signing", "no-signing"])
def test_a_logon_mapped_to_the_guest_account_is_refused(guest_mapping: Dialect, signing: bool):
    err = guest_mapping.connect_error(username="nosuch-user", require_signing=signing)
    assert isinstance(err, AuthenticationFailed), (type(err), err)
    assert err.exit_code == ExitCode.BAD_INPUT and err.winerror == 1326
    assert f"logon to {guest_mapping.samba.host}:{guest_mapping.samba.port} as nosuch-user was mapped to the guest " \
           "account; check the user name and password" in str(err)


def test_user_at_realm_is_the_account_as_given_whatever_the_domain(guest_mapping: Dialect):
    err = guest_mapping.connect_error(username="nosuch@REALM.EXAMPLE", domain="OTHER", require_signing=False)
    assert isinstance(err, AuthenticationFailed), (type(err), err)
    assert "as nosuch@REALM.EXAMPLE was mapped" in str(err) and "OTHER" not in str(err)


@pytest.mark.parametrize("options", [SmbOptions, Smb1Options])
def test_both_dialects_name_and_split_an_account_alike(options):
    def opts(user: str, domain: str | None) -> SmbOptions | Smb1Options:
        return options("h", 445, user, domain, True)

    assert opts("user@REALM", "OTHER").account == "user@REALM"
    assert opts("user@REALM", "OTHER").logon_parts() == ("", "user@REALM")  # NTLM: a UPN with an empty domain
    assert opts("DOM\\user", "OTHER").account == "DOM\\user"
    assert opts("DOM\\user", "OTHER").logon_parts() == ("DOM", "user")
    assert opts("user", "CORP").account == "CORP\\user" and opts("user", "CORP").logon_parts() == ("CORP", "user")
    assert opts("user", None).account == "user" and opts("user", None).logon_parts() == ("", "user")
    assert opts("User", "corp").key[1:] == opts("user", "CORP").key[1:]  # one connection, whatever the case


def test_a_refused_connection_is_connect_failed_1225(dialect: Dialect):
    err = dialect.connect_error(port=free_port())  # nothing listens there
    assert isinstance(err, ConnectFailed) and err.winerror == 1225, (type(err), err)
    assert "cannot connect to 127.0.0.1:" in str(err) and "Connection refused" in str(err)


def test_a_missing_share_names_the_server_whose_operation_ran(dialect: Dialect):
    files = dialect.files("THE-SITE-SERVER")
    files.share = "NO_SUCH_SHARE"
    try:
        with pytest.raises(TargetError) as e:
            files.connect()
    finally:
        files.link.close()
    assert e.value.winerror == 67 and e.value.server == "THE-SITE-SERVER"
    assert f"there is no share NO_SUCH_SHARE on {dialect.samba.host}:{dialect.samba.port}" in str(e.value)


@pytest.mark.parametrize("name", DIALECTS)
def test_a_disabled_account_is_1331_with_the_password_hint(name: str, tmp_path: Path):
    server = _samba(tmp_path, name, {})
    try:
        subprocess.run(["smbpasswd", "-c", str(server.conf), "-d", server.user], check=True, capture_output=True)
        err = Dialect(name, server).connect_error()
    finally:
        server.stop()
    assert isinstance(err, AuthenticationFailed) and err.winerror == 1331, (type(err), err)
    assert f"logon failure: the account is disabled; check the user name {server.user} on " \
           f"{server.host}:{server.port} and the password from the test fixture" in str(err)
    assert server.password not in str(err)
