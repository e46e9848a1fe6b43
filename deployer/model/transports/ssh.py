"""`transport: ssh`: a Windows host running OpenSSH (paramiko): files over SFTP, services by `sc.exe`.

Files and services share one SSH connection when both entries name the same host, port,
account and keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..common import Strict
from ..transport import (DEFERRED_WRITES, DURABLE_APPEND, GROUPED_APPEND, RENAME_MANY, SERVER_COPY, Implementation,
                         OptionalPassword,
                         Port, Timeout, Transport, TransportSettings)


class SshSettings(Strict):
    """An SSH connection (paramiko) to a Windows host running OpenSSH."""

    host: str = Field(description="the server's DNS name or address")
    port: Port = Field(default=22, description="the TCP port")
    username: str = Field(description="the account")
    password: OptionalPassword = Field(default=None, description="where the password comes from, when no key is used")
    key_file: str | None = Field(default=None, description="a private key file")
    known_hosts: str | None = Field(default=None, description="default ~/.ssh/known_hosts")
    trust_on_first_use: bool = Field(default=False, description="accept an unknown host key once and remember it "
                                     "(otherwise it must be in known_hosts)")
    allow_agent: bool = Field(default=False, description="also offer the keys of the operator's ssh-agent")
    timeout: Timeout = 30.0

    def reaches(self, server: Any) -> list[tuple[str, int]]:
        return [(self.host, self.port)]


class SshFiles(SshSettings, TransportSettings):
    transport: Literal["ssh"] = Field(description="ssh")
    root: str = Field(description="the SMS root as the SFTP server names it, e.g. /C:/SMS")


class SshServices(SshSettings, TransportSettings):
    transport: Literal["ssh"] = Field(description="ssh")
    sc: str = Field(default="sc.exe", description="the service control command")


TRANSPORT = Transport(
    "ssh", "a Windows host running OpenSSH: files over SFTP, services by sc.exe", files=SshFiles,
    services=SshServices,
    # copy-data and fsync@openssh.com, where the server offers them (OpenSSH does); else a round trip and CLOSE.
    # An append's WRITE and fsync go out together (records grouped: one round trip); renames pipelined
    implementations={"ssh": Implementation("deployer.targets.ssh", frozenset({SERVER_COPY, DURABLE_APPEND, DEFERRED_WRITES,
                                                                             GROUPED_APPEND, RENAME_MANY}))},
    labels={"files": "SFTP", "services": "sc.exe"},
)
