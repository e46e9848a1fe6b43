r"""`transport: scmr`: the Service Control Manager over \pipe\svcctl (MS-SCMR), on an SMB session.

By default it rides on the server's SMB file connection (one logon, one TCP connection); given
its own host and account it opens its own. Its dialect is its own, else the SMB files'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import Field

from ..transport import Implementation, OptionalPassword, Port, Timeout, Transport, TransportSettings
from .smb import SMB1_DIALECTS, Dialect, SmbFiles, check_dialect_settings


class ScmrServices(TransportSettings):
    """The Service Control Manager over \\pipe\\svcctl; by default on the server's SMB connection."""

    transport: Literal["scmr"] = Field(description="scmr")
    host: str | None = Field(default=None, description="default: the host of the server's SMB connection")
    port: Port | None = Field(default=None, description="default: the SMB connection's port")
    username: str | None = Field(default=None, description="default: the SMB connection's account")
    password: OptionalPassword = Field(default=None, description="default: the SMB connection's password source")
    domain: str | None = Field(default=None, description="default: the SMB connection's domain")
    require_signing: bool = Field(default=True, description="refuse a session the server does not sign")
    encrypt: bool = Field(default=False, description="require SMB 3 encryption")
    timeout: Timeout = 30.0
    dialect: Dialect | None = Field(default=None, description="default: the SMB file transport's, else smb2")
    allow_ntlmv1: bool | None = Field(default=None, description="SMB1 only: allow LM/NTLMv1 logons (default: the SMB "
                                      "file transport's)")

    def smb1_with(self, files: Any) -> bool:
        """Whether this service transport speaks SMB1: its own dialect, else that of the SMB files it rides on."""
        dialect = self.dialect or (files.dialect if isinstance(files, SmbFiles) else "smb2")
        return dialect in SMB1_DIALECTS

    def check_with(self, server: Any) -> None:
        """What can only be checked beside the server's files: the dialect, and where to log on."""
        check_dialect_settings("smb1" if self.smb1_with(server.files) else "smb2", self.encrypt, self.allow_ntlmv1,
                               "services: ")
        if not isinstance(server.files, SmbFiles) and not (self.host and self.username and self.password):
            raise ValueError("services: scmr runs on an SMB connection: use files: {transport: smb, ...} or give "
                             "the scmr service transport its own host, username and password")

    def reaches(self, server: Any) -> list[tuple[str, int]]:
        s = scmr_settings(server)
        return [(s.host, s.port)]

    def implementation(self, server: Any) -> str:
        return "scmr/smb1" if self.smb1_with(server.files) else "scmr"


@dataclass(frozen=True)
class ScmrSettings:
    host: str
    port: int
    username: str
    password: Any  # the inventory's password source
    pick: Callable[[str], Any]  # any other field: the scmr spec's when given, else the files'

    @property
    def timeout(self) -> float:
        return self.pick("timeout")


def scmr_settings(server: Any) -> ScmrSettings:
    """Where a server's `services: scmr` connects: its own settings where the inventory gives them,
    else its SMB file transport's, so that files and services share one session when they can.
    Decided here once, for the SMB 2/3 and SMB1 service transports and for the host limits."""
    spec = server.services
    assert isinstance(spec, ScmrServices)
    base = server.files if isinstance(server.files, SmbFiles) else None
    given = spec.model_fields_set

    def pick(field: str) -> Any:
        if field in given or base is None:
            return getattr(spec, field)
        return getattr(base, field)

    host = spec.host or (base.host if base else None)
    same_host = base is not None and host == base.host
    port = spec.port or (base.port if same_host else 445)
    username = spec.username or (base.username if base else None)
    password = spec.password or (base.password if base else None)
    assert host and username and password, "the inventory model requires them"
    return ScmrSettings(host, port, username, password, pick)


TRANSPORT = Transport(
    "scmr", "the Service Control Manager over \\pipe\\svcctl, on an SMB session", services=ScmrServices,
    implementations={"scmr": Implementation("deployer.targets.scmr"),
                     "scmr/smb1": Implementation("deployer.targets.smb1scmr")},
    labels={"services": "\\pipe\\svcctl over SMB"},
)
