r"""impacket's MS-SCMR (\\pipe\\svcctl over an SMB1 session), for smb1scmr.py: the RPC calls and
constants the SMB1 service transport uses, checked against impacket's tested range (the
one impacket_internals.py keeps, in step with pyproject.toml) when it is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import require
from .impacket_internals import TESTED, SMBConnection

VERSION = require("impacket", TESTED, "the SMB1 service transport calls its MS-SCMR")

# impacket imported only after the check: an untested release fails with the message above
from impacket.dcerpc.v5 import scmr, transport  # noqa: E402
from impacket.dcerpc.v5.rpcrt import DCERPCException  # noqa: E402

RPC_ERRORS: tuple[type[Exception], ...] = (DCERPCException,)
# the access rights and controls smb1scmr asks for (MS-SCMR 2.2.x), as impacket names them
QUERY, START, STOP, USER_CONTROL = (scmr.SERVICE_QUERY_STATUS, scmr.SERVICE_START, scmr.SERVICE_STOP,
                                    scmr.SERVICE_USER_DEFINED_CTRL)
CONTROL_STOP, ACCEPT_STOP = scmr.SERVICE_CONTROL_STOP, scmr.SERVICE_ACCEPT_STOP
STATES = {scmr.SERVICE_STOPPED: "stopped", scmr.SERVICE_START_PENDING: "start_pending",
          scmr.SERVICE_STOP_PENDING: "stop_pending", scmr.SERVICE_RUNNING: "running",
          scmr.SERVICE_CONTINUE_PENDING: "continue_pending", scmr.SERVICE_PAUSE_PENDING: "pause_pending",
          scmr.SERVICE_PAUSED: "paused"}


@dataclass
class ScmrBinding:
    dce: Any
    scm: bytes


def scmr_bind(connection: SMBConnection, host: str, port: int) -> ScmrBinding:
    rpc = transport.SMBTransport(host, port, r"\svcctl", smb_connection=connection)
    dce = rpc.get_dce_rpc()
    dce.connect()
    dce.bind(scmr.MSRPC_UUID_SCMR)
    scm = scmr.hROpenSCManagerW(dce, f"{host}\x00", "ServicesActive\x00", scmr.SC_MANAGER_CONNECT)["lpScHandle"]
    return ScmrBinding(dce, scm)


def open_service(b: ScmrBinding, name: str, access: int) -> bytes:
    return scmr.hROpenServiceW(b.dce, b.scm, f"{name}\x00", access)["lpServiceHandle"]


def query_status(b: ScmrBinding, handle: bytes) -> dict[str, int]:
    s = scmr.hRQueryServiceStatus(b.dce, handle)["lpServiceStatus"]
    return {"state": s["dwCurrentState"], "accepted": s["dwControlsAccepted"], "win32_exit_code": s["dwWin32ExitCode"],
            "service_exit_code": s["dwServiceSpecificExitCode"]}


def control(b: ScmrBinding, handle: bytes, code: int) -> None:
    scmr.hRControlService(b.dce, handle, code)


def start(b: ScmrBinding, handle: bytes) -> None:
    scmr.hRStartServiceW(b.dce, handle)


def close_handle(b: ScmrBinding, handle: bytes) -> None:
    scmr.hRCloseServiceHandle(b.dce, handle)


def scmr_error_code(exc: Exception) -> int | None:
    """The Windows error a SCMR call answered, or None for a transport-level failure."""
    if isinstance(exc, scmr.DCERPCSessionError):
        return exc.get_error_code() & 0xFFFFFFFF
    return None
