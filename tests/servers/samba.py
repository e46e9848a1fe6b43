"""Samba on 127.0.0.1 for the tests: a private smbd, its shares, a user, and Samba's own client.

`Samba(...).start()` writes a private smb.conf (every state directory under its own folder,
`smb ports` on a free port, bound to 127.0.0.1 only, a tdbsam passdb, `disable spoolss = no`
so that the SCM serves the Spooler service), adds the test user with smbpasswd, starts smbd
in a session of its own (so its exit cannot signal the test runner), and returns once an SMB
negotiation succeeds. `stop()` ends smbd and the samba-dcerpcd it spawned, by PID.

A server that cannot start is an error, never a skip: in CI (and outside it) the SMB tests
fail with smbd's own last words.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import leakcheck
import pytest
import yaml
from conformance.adapters import CONTROL_STOPPED_NOT_1062, CUSTOM_CODES_ARE_87, FilesUnderTest, ServicesUnderTest
from deployer.model.secrets import Secret
from deployer.targets.scmr import ScmrServiceTransport
from deployer.targets.smb1 import Smb1FileTransport
from deployer.targets.smb1conn import Smb1Link, Smb1Options
from deployer.targets.smb1scmr import Smb1ScmrServiceTransport
from deployer.targets.smb import SmbFileTransport
from deployer.targets.smbconn import SmbLink, SmbOptions

from .ports import free_port  # noqa: F401 - this xdist worker's ports; redis.py and tests import it from here

SHARE = "SMS_SHRC"
READY_TIMEOUT = 15.0


def _binary(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)),
                                       None)
    if not found:
        raise RuntimeError(f"{name} is not installed: the SMB tests need Samba (scripts/test.sh installs the Debian "
                           "packages samba and smbclient)")
    return found


class Samba:
    """One private smbd on 127.0.0.1."""

    def __init__(self, base: Path, shares: dict[str, Path], *, extra: dict[str, str] | None = None,
                 user: str | None = None, password: str | None = None, protocol: str | None = None):
        self.base = Path(base)
        self.protocol = protocol  # None: Samba's default (SMB 2/3); "NT1": SMB1 only, as Windows NT 4.0 speaks
        self.shares = shares
        self.extra = extra or {}
        self.user = user or getpass.getuser()  # smbpasswd adds existing Unix accounts only
        self.password = leakcheck.register(password or f"Dpl-{secrets.token_urlsafe(12)}")
        self.host = "127.0.0.1"
        self.port = 0
        self.conf = self.base / "smb.conf"
        self.proc: subprocess.Popen | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> "Samba":
        smbd, smbpasswd = _binary("smbd"), _binary("smbpasswd")
        _binary("smbclient")
        for d in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "log"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()  # a restarted server keeps its port: inventories name it
        self._write_conf()
        added = subprocess.run([smbpasswd, "-c", str(self.conf), "-s", "-a", self.user], check=False,
                               input=f"{self.password}\n{self.password}\n", capture_output=True, text=True)
        if added.returncode:
            raise RuntimeError(f"smbpasswd -a {self.user} failed: {added.stderr.strip() or added.stdout.strip()}")
        self._log = open(self.base / "log" / "smbd.out", "wb")
        # --no-process-group keeps smbd in the session start_new_session made for it, so
        # that everything it forks can be found (and its exit signals nobody else).
        self.proc = subprocess.Popen([smbd, "--foreground", "--no-process-group", "--debug-stdout",
                                      "--configfile", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_conf(self) -> None:
        b = self.base
        lines = [
            "[global]",
            "server role = standalone server",
            "workgroup = DEPLOYER",
            "netbios name = DPLTEST",
            f"smb ports = {self.port}",
            "interfaces = 127.0.0.1",
            "bind interfaces only = yes",
            "disable netbios = yes",
            f"private dir = {b / 'private'}",
            f"lock directory = {b / 'lock'}",
            f"state directory = {b / 'state'}",
            f"cache directory = {b / 'cache'}",
            f"pid directory = {b / 'pid'}",
            f"ncalrpc dir = {b / 'ncalrpc'}",
            f"binddns dir = {b / 'binddns'}",
            f"passdb backend = tdbsam:{b / 'private' / 'passdb.tdb'}",
            f"log file = {b / 'log' / 'log.%m'}",
            "logging = file",
            "log level = 1",
            "disable spoolss = no",
            "load printers = no",
            "printcap name = /dev/null",
            "usershare path =",
            "map to guest = never",
            *([f"server min protocol = {self.protocol}", f"server max protocol = {self.protocol}"]
              if self.protocol else []),
            *(f"{k} = {v}" for k, v in self.extra.items()),
        ]
        for name, path in self.shares.items():
            lines += [f"[{name}]", f"path = {path}", "read only = no", f"valid users = {self.user}"]
        self.conf.write_text("\n".join(lines) + "\n")

    def _wait_ready(self) -> None:
        """Until smbd answers an SMB negotiation; the pause between tries is a wait on smbd itself."""
        from deployer.targets.smb1probe import NOT_SMB, probe

        deadline = time.monotonic() + READY_TIMEOUT
        assert self.proc is not None
        while True:
            try:
                if probe(self.host, self.port, 5).kind != NOT_SMB:  # whichever dialect it is limited to
                    return
                raise ConnectionError("no SMB answer yet")
            except Exception as exc:  # not listening yet
                if self.proc.poll() is not None:
                    raise RuntimeError(f"smbd exited with {self.proc.returncode} before it was ready:\n"
                                       f"{self.log_tail()}") from exc
                if time.monotonic() > deadline:
                    raise RuntimeError(f"smbd did not answer on {self.host}:{self.port} within "
                                       f"{READY_TIMEOUT:g} s:\n{self.log_tail()}") from exc
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.02)

    def log_tail(self, lines: int = 30) -> str:
        text = "\n".join(p.read_text(errors="replace") for p in sorted((self.base / "log").glob("*")) if p.is_file())
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """smbd and the processes it forked (its session, which start_new_session made ours)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.proc.pid:  # session id
                out.append(int(stat.parent.name))
        return out

    def signal(self, sig: int) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.signal(signal.SIGCONT)  # a paused smbd cannot act on SIGTERM
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stop_dcerpcd()
        if getattr(self, "_log", None):
            self._log.close()

    def kill(self) -> None:
        """SIGKILL smbd and every process it forked, at once: a crashed server."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def restart(self) -> "Samba":
        """Start again on the same port, after kill() or stop(): the server is back."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("smbd is still running")
        self._stop_dcerpcd()
        return self.start()

    def _stop_dcerpcd(self) -> None:
        """samba-dcerpcd is started by smbd on demand, in a session of its own: end it by its pid file."""
        pid_file = self.base / "pid" / "samba-dcerpcd.pid"
        try:
            pid = int(pid_file.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            return
        if str(self.conf).encode() not in cmdline:  # a recycled pid: not ours
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        try:
            os.kill(pid, signal.SIGTERM)
            if not select.select([fd], [], [], 10)[0]:
                os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    # --- clients ----------------------------------------------------------------------------

    def options(self, **kw) -> SmbOptions:
        base = {"host": self.host, "port": self.port, "username": self.user, "domain": None,
                "require_signing": True, "encrypt": False}
        base.update(kw)
        return SmbOptions(**base)

    @property
    def client_args(self) -> list[str]:
        """smbclient arguments to reach this server: an NT1-only one needs SMB1 allowed on the client too."""
        if self.protocol == "NT1":
            return ["-m", "NT1", "--option=client min protocol=NT1"]
        return []

    def smb1_options(self, **kw) -> Smb1Options:
        base = {"host": self.host, "port": self.port, "username": self.user, "domain": None,
                "require_signing": True, "allow_ntlmv1": False}
        base.update(kw)
        return Smb1Options(**base)

    def smb1_link(self, *, timeout: float = 10.0, password: str | None = None, **kw) -> Smb1Link:
        return Smb1Link("SAMBA1", self.smb1_options(**kw), Secret(password if password is not None else self.password),
                        timeout=timeout, password_source="the test fixture")

    def link(self, *, timeout: float = 10.0, password: str | None = None, **kw) -> SmbLink:
        return SmbLink("SAMBA", self.options(**kw), Secret(password if password is not None else self.password),
                       timeout=timeout, password_source="the test fixture")

    def smbclient(self, share: str, command: str, *, check: bool = True, extra_args: list[str] | None = None) -> str:
        """Samba's own client: an independent view of the share."""
        # the password goes in smbclient's environment (PASSWD): not on its command line, not in a file
        proc = subprocess.run([_binary("smbclient"), f"//{self.host}/{share}", "-p", str(self.port), "-U", self.user,
                               *self.client_args, *(extra_args or []), "-c", command], check=False, capture_output=True, text=True,
                              env={**os.environ, "TZ": "UTC", "PASSWD": self.password}, timeout=60)
        out = proc.stdout + proc.stderr  # smbclient reports some results (transfer rates) on stderr
        if check and (proc.returncode or "NT_STATUS_" in out):
            raise AssertionError(f"smbclient {command!r} failed ({proc.returncode}): {out}")
        return out


@contextlib.contextmanager
def held_open(samba: Samba, share: str, rel: str, *, access: int | None = None,
              share_access: int | None = None) -> Iterator[None]:
    """Another client (its own TCP connection and session) holds `rel` open. By default for
    reading and running, sharing read only: writers and deleters are refused, as they are for
    a running program's image."""
    from smbprotocol.connection import Connection
    from smbprotocol.open import CreateDisposition, CreateOptions, FilePipePrinterAccessMask, ImpersonationLevel
    from smbprotocol.open import Open, ShareAccess
    from smbprotocol.session import Session
    from smbprotocol.tree import TreeConnect

    if access is None:
        access = FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_EXECUTE \
            | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
    if share_access is None:
        share_access = ShareAccess.FILE_SHARE_READ

    conn = Connection(uuid.uuid4(), samba.host, samba.port)
    conn.connect(timeout=10)
    try:
        session = Session(conn, samba.user, samba.password, require_encryption=False)
        session.connect()
        tree = TreeConnect(session, rf"\\{samba.host}\{share}")
        tree.connect()
        fh = Open(tree, rel)
        fh.create(ImpersonationLevel.Impersonation, access, 0, share_access, CreateDisposition.FILE_OPEN,
                  CreateOptions.FILE_NON_DIRECTORY_FILE)
        yield
        fh.close()
    finally:
        conn.disconnect(close=True)


@contextlib.contextmanager
def held_open_smb1(samba: Samba, share: str, rel: str) -> Iterator[None]:
    """held_open for an SMB1-only server: another SMB1 connection and session holds `rel` open for
    reading and running, sharing read only, without an oplock (as a running program's image is
    held: an oplock would make the server wait for a break this holder never answers)."""
    from deployer.targets.adapters import impacket_internals as lib

    link = samba.smb1_link()
    try:
        with link.op("hold open", rel):
            tid = link.tree(share)
            opened = link.conn.create(tid, rel, lib.READ_DATA | 0x20 | lib.READ_ATTRIBUTES, lib.SHARE_READ,
                                      lib.FILE_OPEN, lib.FILE_NON_DIRECTORY_FILE)
        yield
        with link.op("release", rel):
            link.conn.close_fid(tid, opened.fid)
    finally:
        link.close()


# --- inventories that reach a server's files over SMB ------------------------------------------

DIALECTS = ["smb2", "smb1"]  # the client's dialects, and the Samba each needs (SMB1: limited to NT1)


def start_samba(base: Path, shares: dict[str, Path], dialect: str) -> Samba:
    """A private smbd for `dialect`: Samba's default (SMB 2/3), or limited to NT1 as Windows NT 4.0 is."""
    if dialect == "smb1":
        return Samba(base, shares, protocol="NT1", extra=NT1_EXTRA).start()
    return Samba(base, shares).start()


def files_spec(samba: Samba, share: str, env: str, dialect: str, **more) -> dict:
    """An inventory `files:` entry for `share` on `samba`, its password from the environment variable `env`."""
    spec = {"transport": "smb", **({"dialect": "smb1"} if dialect == "smb1" else {}), "host": samba.host,
            "port": samba.port, "username": samba.user, "password": {"env": env}, "share": share}
    return {**spec, **more}


def serve_over_smb(inventory: Path, server: str, files: dict) -> None:
    """`server`'s files in a one-line inventory entry moved to `files` (its services stay on the mock)."""
    lines = inventory.read_text().splitlines()
    (i,) = [n for n, line in enumerate(lines) if line.strip().startswith(f"{server}:")]
    indent, entry = lines[i].split(f"{server}:", 1)
    moved = {**yaml.safe_load(entry), "files": files, "services": "mock"}
    lines[i] = f"{indent}{server}: {json.dumps(moved)}"  # a JSON object is a YAML flow mapping
    inventory.write_text("\n".join(lines) + "\n")


def wait_for_exit(pid: int, timeout: float) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except OSError as exc:
        return exc.errno == errno.ESRCH
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


# --- fixtures ----------------------------------------------------------------------------
#
# One Samba per dialect per xdist worker (session scope); each dialect's fixtures are the same
# steps with its own server, link and transports (the helpers below), so both dialects meet
# the conformance suite on the same terms.


def _one_share(tmp_path_factory: pytest.TempPathFactory, name: str, dialect: str) -> Iterator[Samba]:
    base = tmp_path_factory.mktemp(name)
    (base / "share").mkdir()
    server = start_samba(base / "server", {SHARE: base / "share"}, dialect)
    yield server
    server.stop()


def _dialect_fixtures(dialect: str, kind: str, server: str, make_link, files_class, services_class, holder):
    """The session's smbd of one dialect, its link, and the conformance suite's transports on them:
    fixtures `<server>`, `<server>_link`, `<kind>_files_under_test`, `<kind>_services_under_test`."""

    @pytest.fixture(scope="session", name=server)
    def the_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samba]:
        yield from _one_share(tmp_path_factory, server.replace("_", "-"), dialect)

    @pytest.fixture(scope="session", name=f"{server}_link")
    def the_link(request: pytest.FixtureRequest):
        link = make_link(request.getfixturevalue(server))
        yield link
        link.close()

    @pytest.fixture(name=f"{kind}_files_under_test")
    def files_under_test(request: pytest.FixtureRequest) -> FilesUnderTest:
        smbd, link = request.getfixturevalue(server), request.getfixturevalue(f"{server}_link")
        files = files_class(link.server, link, SHARE)
        base = f"conformance-{uuid.uuid4().hex[:8]}"
        files.mkdir(base)
        return FilesUnderTest(kind, files, base, lambda rel: holder(smbd, SHARE, rel),
                              lambda rel: smbd.smbclient(SHARE, f'setmode "{rel}" +r'), mtime_resolution_ns=100)

    @pytest.fixture(name=f"{kind}_services_under_test")
    def services_under_test(request: pytest.FixtureRequest) -> ServicesUnderTest:
        link = request.getfixturevalue(f"{server}_link")
        services = services_class(link.server, link)
        if services.query("Spooler").state != "running":  # a previous test failed half way
            services.start("Spooler", 30)
        # Samba's SCM is not Windows': Spooler takes no user-defined code (87 for all, even when stopped)
        return ServicesUnderTest(kind, services, "Spooler", accepted_code=130, refused_code=131,
                                 differences={CUSTOM_CODES_ARE_87, CONTROL_STOPPED_NOT_1062})

    return the_server, the_link, files_under_test, services_under_test


samba, samba_link, smb_files_under_test, smb_services_under_test = _dialect_fixtures(
    "smb2", "smb", "samba", Samba.link, SmbFileTransport, ScmrServiceTransport, held_open)

# --- the SMB1-only server: Windows NT 4.0's dialect -----------------------------------------

# Samba leaves SMB1 signing off unless asked; "auto" offers it as Windows NT 4.0 SP3+ can, so the
# client's default (signing required) signs and checks every reply.
NT1_EXTRA = {"server signing": "auto", "ntlm auth": "ntlmv2-only"}

samba_nt1, samba_nt1_link, smb1_files_under_test, smb1_services_under_test = _dialect_fixtures(
    "smb1", "smb1", "samba_nt1", Samba.smb1_link, Smb1FileTransport, Smb1ScmrServiceTransport, held_open_smb1)
