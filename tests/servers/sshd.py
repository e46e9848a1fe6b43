"""OpenSSH on 127.0.0.1 for the tests: one private `sshd -D -e -f CONF` per session.

It has its own host key and authorized client key in a temp dir, and listens on several
free ports. Each port stands for one Windows server: `Match LocalPort` gives its sessions
the stand-in sc.exe (tests/fakes) first on PATH and tells it which server's Service
Control Manager of the current mock site it is (see SshTestServer.serve_site). Sessions
get a private HOME too, so the account's shell start-up files (which may put another
python first on PATH, and cost time) are not read.

A missing or failing sshd fails the tests, in CI and everywhere else: never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import paramiko
import pytest
from conformance.adapters import NO_SHARING_VIOLATIONS, FilesUnderTest, ServicesUnderTest

from . import ports

from deployer.model.inventory import SshSettings
from deployer.targets.sftp import SftpFiles
from deployer.targets.ssh import ScServices
from deployer.targets.sshconn import SshConnection, credentials

FAKES = Path(__file__).resolve().parents[1] / "fakes"
SERVERS = ("TESTSRV", "DEMOSRV", "DEMOLOG1", "DEMOAXP1")  # one port each; the mock servers tests use
READY_WITHIN = 15.0


@dataclass
class SshTestServer:
    dir: Path
    pid: int
    port: int  # a port whose sc.exe acts as the mock site's site server
    ports: dict[str, int]  # server name -> port whose sc.exe is that server's SCM
    user: str
    client_key: Path
    known_hosts: Path  # lists this server's key for every port
    host_key: paramiko.PKey
    site_link: Path  # what DEPLOYER_FAKE_SC_SITE names: a link to the current mock site
    log: Path  # sshd's own messages (-e)

    def port_for(self, server: str | None) -> int:
        return self.port if server is None else self.ports[server]

    def serve_site(self, site_dir: Path) -> None:
        """Make the stand-in sc.exe act on this mock site (repoints a link, atomically)."""
        tmp = self.site_link.with_name(f".link-{uuid.uuid4().hex[:8]}")
        tmp.symlink_to(Path(site_dir).resolve())
        os.replace(tmp, self.site_link)

    def settings(self, server: str | None = None, **over: object) -> dict:
        """An inventory entry's connection settings for this server (add transport:, root:)."""
        return {"host": "127.0.0.1", "port": self.port_for(server), "username": self.user,
                "key_file": str(self.client_key), "known_hosts": str(self.known_hosts), "timeout": 10.0, **over}

    def connection(self, server: str | None = None, **over: object) -> SshConnection:
        """A connection as deployer makes it from an inventory entry (settings() with `over`)."""
        s = SshSettings(**self.settings(server, **over))
        return SshConnection(s, server or "SSHTEST", credentials(s, None, self.dir), Path(s.known_hosts or ""))


def _free_ports(n: int) -> list[int]:
    return ports.take(n)  # from this xdist worker's own block (servers/ports.py)


def _sshd() -> str:
    candidates = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
    found = shutil.which("sshd") or next((p for p in candidates if os.access(p, os.X_OK)), None)
    if not found:
        pytest.fail("sshd not found: the SSH tests need a real OpenSSH server; install openssh-server "
                    "(scripts/test.sh does)", pytrace=False)
    return found


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "deployer-test", "-f", str(path)],
                   check=True, capture_output=True)


def _config(d: Path, ports: list[int], user: str, site_link: Path) -> str:
    # the stand-in runs with this interpreter whatever python the session's PATH finds
    bindir = d / "bin"
    bindir.mkdir()
    wrapper = bindir / "sc.exe"
    wrapper.write_text(f"#!/bin/sh\nexec '{sys.executable}' '{FAKES / 'sc.exe'}' \"$@\"\n")
    wrapper.chmod(0o755)
    home = d / "home"
    home.mkdir()
    env = (f"PATH={bindir}:/usr/local/bin:/usr/bin:/bin HOME={home} LANG=C.UTF-8 "
           f"DEPLOYER_FAKE_SC_SITE={site_link}")
    lines = [*(f"ListenAddress 127.0.0.1:{p}" for p in ports),
             f"HostKey {d / 'host_key'}",
             "PidFile none",
             "StrictModes no",  # the temp dir's modes are not sshd's business here
             "UsePAM no",
             f"AllowUsers {user}",
             "PermitRootLogin yes",
             "PubkeyAuthentication yes",
             f"AuthorizedKeysFile {d / 'authorized_keys'}",
             "PasswordAuthentication yes",  # so a wrong password is really tried (and refused)
             "KbdInteractiveAuthentication no",
             "MaxStartups 50",
             "Subsystem sftp internal-sftp",
             # SetEnv in a Match block replaces the global list, so each one carries all of it
             f"SetEnv {env}"]
    for name, port in zip(SERVERS, ports[1:]):
        lines += [f"Match LocalPort {port}", f"  SetEnv {env} DEPLOYER_FAKE_SC_SERVER={name}"]
    return "\n".join(lines) + "\n"


def _handshake(port: int, expect: paramiko.PKey) -> bool:
    """An SSH handshake with our own sshd on `port` (its host key, not whatever else listens)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return False
    t = paramiko.Transport(sock)
    try:
        t.start_client(timeout=2)
        return t.get_remote_server_key() == expect
    except (paramiko.SSHException, EOFError, OSError):
        return False
    finally:
        t.close()


def _start(d: Path) -> tuple[subprocess.Popen, list[int], paramiko.PKey, Path]:
    sshd = _sshd()
    if not os.path.isdir("/run/sshd"):
        try:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir (when root)
        except PermissionError:
            pass  # an unprivileged sshd does not use it
    _keygen(d / "host_key")
    host_key = paramiko.Ed25519Key.from_private_key_file(str(d / "host_key"))
    user = _user()
    site_link = d / "site"
    log = d / "sshd.log"
    for _attempt in range(3):  # a free port can be taken between choosing and binding it
        ports = _free_ports(1 + len(SERVERS))
        conf = d / "sshd_config"
        shutil.rmtree(d / "bin", ignore_errors=True)
        shutil.rmtree(d / "home", ignore_errors=True)
        conf.write_text(_config(d, ports, user, site_link))
        check = subprocess.run([sshd, "-t", "-f", str(conf)], capture_output=True, text=True)
        if check.returncode != 0:
            pytest.fail(f"sshd refused the test config {conf}: {check.stderr.strip()}", pytrace=False)
        with open(log, "ab") as fh:
            proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(conf)], stdin=subprocess.DEVNULL, stdout=fh,
                                    stderr=fh, start_new_session=True)
        deadline = time.monotonic() + READY_WITHIN
        pending = list(ports)
        while pending and proc.poll() is None and time.monotonic() < deadline:
            pending = [p for p in pending if not _handshake(p, host_key)]
            if pending:
                time.sleep(0.02)  # between readiness probes, not instead of one
        if not pending:
            return proc, ports, host_key, log
        _stop(proc)
    pytest.fail(f"sshd did not accept SSH handshakes on 127.0.0.1 within {READY_WITHIN:g} s; its log:\n"
                + log.read_text(errors="replace")[-3000:], pytrace=False)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()  # our sshd only, by its PID
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshTestServer]:
    d = tmp_path_factory.mktemp("sshd")
    proc, ports, host_key, log = _start(d)
    try:
        _keygen(d / "client_key")
        (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
        known = d / "known_hosts"
        known.write_text("".join(f"[127.0.0.1]:{p} {host_key.get_name()} {host_key.get_base64()}\n" for p in ports))
        server = SshTestServer(d, proc.pid, ports[0], dict(zip(SERVERS, ports[1:])), _user(), d / "client_key",
                               known, host_key, d / "site", log)
        yield server
    finally:
        _stop(proc)


# --- conformance adapters ------------------------------------------------------------------------


@pytest.fixture
def ssh_files_under_test(sshd: SshTestServer, tmp_path: Path) -> Iterator[FilesUnderTest]:
    root = tmp_path / "sms"
    root.mkdir()
    conn = sshd.connection()
    files = SftpFiles("SSHTEST", conn, str(root))
    base = f"conformance-{uuid.uuid4().hex[:8]}"
    files.mkdir(base)

    def local(rel: str) -> Path:
        return root.joinpath(*rel.replace("\\", "/").split("/"))

    class _HeldOpen:
        """An open handle on the server (on Linux it does not stop a replace: NO_SHARING_VIOLATIONS)."""

        def __init__(self, rel: str):
            self.rel = rel

        def __enter__(self):
            self.fh = open(local(self.rel), "rb")

        def __exit__(self, *exc):
            self.fh.close()

    try:
        yield FilesUnderTest("ssh", files, base, _HeldOpen, lambda rel: local(rel).chmod(0o444),
                             mtime_resolution_ns=1_000_000_000,  # SFTP version 3: whole seconds
                             differences={NO_SHARING_VIOLATIONS})
    finally:
        files.close()
        conn.close()


@pytest.fixture
def ssh_services_under_test(sshd: SshTestServer, tmp_path: Path) -> Iterator[ServicesUnderTest]:
    from servers.mock_target import make_mock_server

    site = make_mock_server(tmp_path / "mock", "TESTSRV")
    sshd.serve_site(site.root)
    conn = sshd.connection("TESTSRV")
    try:
        yield ServicesUnderTest("ssh", ScServices("TESTSRV", conn), "SMS_SITE_CONFIG_MANAGER", accepted_code=192,
                                refused_code=131)
    finally:
        conn.close()
