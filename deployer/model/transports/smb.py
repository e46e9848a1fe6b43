"""`transport: smb`: a Windows share over SMB 2/3 (smbprotocol), or SMB1 (impacket) with `dialect: smb1`.

The files are the share that is the SMS root (SMS_SHRx); `services: scmr` rides on the same
session (scmr.py). SMB1 is only ever used on request, never as a fallback.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from ..common import Strict, matching
from ..transport import (DEFERRED_WRITES, DURABLE_APPEND, GROUPED_APPEND, HARD_LINK, RENAME_MANY, SERVER_COPY,
                         Implementation, Password, Port, Timeout, Transport, TransportSettings)


def _dialect(v: Any) -> Any:
    return v.strip().lower() if isinstance(v, str) else v


# smb2: SMB 2/3 (smbprotocol negotiates the highest both sides speak). smb1 (alias nt1): SMB1,
# dialect NT LM 0.12, for Windows NT 3.51/4.0 and 2000 hosts; only ever on request, never a fallback.
Dialect = Annotated[Literal["smb2", "smb1", "nt1"], BeforeValidator(_dialect),
                    Field(description="smb2 (SMB 2/3, the default) or smb1 (NT LM 0.12, alias nt1)")]
SMB1_DIALECTS = ("smb1", "nt1")
SMB1_IMPLEMENTATIONS = ("smb1", "scmr/smb1")  # what speaks SMB1: this module's and scmr.py's (the SMB1 warning)


def check_dialect_settings(dialect: str | None, encrypt: bool, allow_ntlmv1: bool | None, prefix: str = "") -> None:
    """Settings that only mean something for one dialect are refused on the other."""
    if dialect in SMB1_DIALECTS:
        if encrypt:
            raise ValueError(f"{prefix}SMB1 has no encryption: encrypt: true needs SMB 3"
                             + ("" if prefix else " (remove dialect: smb1 or encrypt)"))
    elif allow_ntlmv1:
        raise ValueError(f"{prefix}allow_ntlmv1 applies only to dialect: smb1 (SMB 2/3 always logs on with NTLMv2)")


class SmbSettings(Strict):
    """An SMB connection: SMB 2/3 (smbprotocol) by default, SMB1 (impacket) with `dialect: smb1`.
    Signing is required unless switched off."""

    host: str = Field(description="the server's DNS name or address")
    port: Port = Field(default=445, description="the TCP port")
    username: str = Field(description="the account, as user or DOMAIN\\user")
    password: Password = Field(description="where the password comes from: {env: VARIABLE}, {file: PATH} or "
                               "{prompt: true}")
    domain: str | None = Field(default=None, description="the account's domain, when the username does not name it")
    require_signing: bool = Field(default=True, description="refuse a session the server does not sign")
    encrypt: bool = Field(default=False, description="require SMB 3 encryption")
    timeout: Timeout = 30.0
    dialect: Dialect = "smb2"
    allow_ntlmv1: bool = Field(default=False, description="SMB1 only: allow LM/NTLMv1 logons (Windows NT 4.0)")

    @model_validator(mode="after")
    def _dialect_settings(self) -> "SmbSettings":
        check_dialect_settings(self.dialect, self.encrypt, self.allow_ntlmv1)
        return self

    @property
    def smb1(self) -> bool:
        return self.dialect in SMB1_DIALECTS


class SmbFiles(SmbSettings, TransportSettings):
    transport: Literal["smb"] = Field(description="smb")
    share: Annotated[str, matching(r"[^\\/:*?\"<>|]{1,80}", "share {v!r} must be a share name such as SMS_SHRC (no "
                                   "slashes)")] = Field(description="the share that is the SMS root, SMS_SHRx")

    def reaches(self, server: Any) -> list[tuple[str, int]]:
        return [(self.host, self.port)]

    def implementation(self, server: Any) -> str:
        return "smb1" if self.smb1 else "smb"


TRANSPORT = Transport(
    "smb", "a Windows share over SMB 2/3, or SMB1 with dialect: smb1", files=SmbFiles,
    implementations={
        # FSCTL_SRV_COPYCHUNK copies on the server; FileLinkInformation makes hard links; FLUSH after an append
        # (compounded with its WRITE: records grouped in one append cost one round trip); requests pipelined
        "smb": Implementation("deployer.targets.smb", frozenset({HARD_LINK, SERVER_COPY, DURABLE_APPEND, GROUPED_APPEND,
                                                                 RENAME_MANY, DEFERRED_WRITES})),
        # SMB1 has no server-side copy (the bytes make a round trip) and deployer makes no hard links over it;
        # a WRITE_ANDX is write-through (one round trip, durable, for records grouped), requests pipelined by Mid
        "smb1": Implementation("deployer.targets.smb1", frozenset({DURABLE_APPEND, GROUPED_APPEND, RENAME_MANY,
                                                                   DEFERRED_WRITES})),
    },
    labels={"files": "SMB 2/3"},
)
