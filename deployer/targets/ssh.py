r"""The "ssh" transports: Windows servers running OpenSSH, reached with paramiko.

    files:    {transport: ssh, host: srv01, username: deployer, key_file: ~/.ssh/deployer_ed25519,
               root: /C:/SMS}
    services: {transport: ssh, host: srv01, username: deployer, key_file: ~/.ssh/deployer_ed25519}

Files go over SFTP (sftp.py); services through the server's `sc.exe` (scexe.py), run over
the same SSH connection when both entries name the same host, port, account and keys.
The connection, its host-key policy and its time limits are in sshconn.py.
"""

from __future__ import annotations


from ..model.inventory import SshSettings
from . import scexe
from .base import (
    SERVICE_ERRORS,
    FileTransport,
    ServiceError,
    ServicePoll,
    ServiceStatus,
    ServiceTransport,
    TargetError,
    service_error,
)
from .connect import ConnectContext, register_files, register_services
from .sftp import SftpFiles
from .sshconn import DEFAULT_KNOWN_HOSTS, SshConnection, credentials, resolve_path

# What is polled while a service stops or starts: first at once, then less and less often.
FIRST_POLL, MAX_POLL = 0.05, 1.0


class ScServices:
    """ServiceTransport: sc.exe query|stop|start|control over SSH."""

    def __init__(self, server: str, conn: SshConnection, sc: str = "sc.exe"):
        self.server = server
        self.conn = conn
        self.sc = sc

    def _sc(self, verb: str, name: str, action: str, code: int | None = None) -> scexe.ScStatus | None:
        line = scexe.command(self.sc, verb, name, code)
        exit_code, output = self.conn.run(line)
        return scexe.result(output, exit_code, name, self.server, action, line)

    def _status(self, verb: str, name: str, action: str, code: int | None = None) -> scexe.ScStatus:
        status = self._sc(verb, name, action, code)
        if status is None:
            raise TargetError(f"{action} {name}: `{self.sc} {verb}` succeeded but printed no SERVICE_NAME block",
                              server=self.server)
        return status

    def query(self, name: str) -> ServiceStatus:
        return self._status("query", name, "query").to_status()

    def stop(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        return self._wait(self._status("stop", name, "stop"), name, "stopped", timeout)

    def start(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        return self._wait(self._status("start", name, "start"), name, "running", timeout)

    def control(self, name: str, code: int) -> None:
        scexe.check_service_name(name)
        if not 128 <= code <= 255:
            # Only user-defined codes: `sc control NAME 1` would stop the service behind the
            # plan's back. Windows answers codes it does not know with 87, so does this.
            raise service_error(87, name, self.server, f"control {code}")
        self._sc("control", name, f"control {code}", code)

    def close(self) -> None:
        pass  # the connection is shared with the file transport and closed with the site

    def _wait(self, status: scexe.ScStatus, name: str, want: str, timeout: float) -> ServiceStatus:
        """Poll `sc query` until the service reaches `want` (sc.exe returns while it is pending)."""
        action = "stop" if want == "stopped" else "start"
        poll = ServicePoll(timeout, first=0.0, floor=FIRST_POLL, maximum=MAX_POLL)
        seen_pending = status.state != want
        while status.state != want:
            if want == "running" and status.state == "stopped" and seen_pending:
                code = status.win32_exit_code or 1067  # ERROR_PROCESS_ABORTED
                if code in SERVICE_ERRORS:
                    raise service_error(code, name, self.server, "start")
                raise ServiceError(f"start {name}: the service stopped while starting (its exit code: {code})",
                                   server=self.server, winerror=code)
            poll.pause(name, status.state, self.server, action)
            status = self._status("query", name, action)
            seen_pending = seen_pending or status.state.endswith("_pending")
        return status.to_status()


# --- registration ----------------------------------------------------------------------------


def _connection(ctx: ConnectContext, settings: SshSettings) -> SshConnection:
    """One connection per server and set of connection settings, shared by files and services."""
    fields = ("host", "port", "username", "password", "key_file", "known_hosts", "trust_on_first_use",
              "allow_agent", "timeout")
    key = ("ssh", ctx.name, repr([getattr(settings, f) for f in fields]))

    def make() -> SshConnection:
        base = ctx.site.inventory.base_dir
        password = None
        if settings.password is not None:
            password = ctx.secret(settings.password, f"SSH {settings.username}@{settings.host}:{settings.port}")
        known_hosts = resolve_path(base, settings.known_hosts or DEFAULT_KNOWN_HOSTS)
        return SshConnection(settings, ctx.name, credentials(settings, password, base), known_hosts)

    return ctx.shared(key, make, lambda conn: conn.close())


@register_files("ssh")
def _ssh_files(ctx: ConnectContext) -> FileTransport:
    settings = ctx.server.files
    assert settings.transport == "ssh"
    return SftpFiles(ctx.name, _connection(ctx, settings), settings.root)  # type: ignore[arg-type]


@register_services("ssh")
def _ssh_services(ctx: ConnectContext, files: FileTransport) -> ServiceTransport:
    settings = ctx.server.services
    assert settings.transport == "ssh"
    return ScServices(ctx.name, _connection(ctx, settings), settings.sc)  # type: ignore[arg-type]


__all__ = ["ScServices", "SftpFiles", "SshConnection"]
