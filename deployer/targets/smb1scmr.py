r"""ServiceTransport over MS-SCMR on \pipe\svcctl, on the server's SMB1 session (impacket's scmr).

The SMB1 case of scmr_ops.ScmrOperations, as scmr.py is the SMB 2/3 one: the same operations,
errors and Windows answers; here only impacket's RPC calls (adapters/impacket_scmr.py).
"""

from __future__ import annotations

from typing import Any

from .adapters import impacket_scmr as lib
from .connect import ConnectContext, register_services
from .scmr_ops import ScmrOperations
from .scmr_settings import scmr_settings
from .smb1conn import Smb1Link, Smb1Options
from .smbshare import shared_link


class Smb1ScmrServiceTransport(ScmrOperations):
    QUERY, STOP, START, USER_CONTROL = lib.QUERY, lib.STOP, lib.START, lib.USER_CONTROL
    RPC_ERRORS = lib.RPC_ERRORS

    link: Smb1Link

    # --- impacket's calls -------------------------------------------------------------------

    def _error_code(self, exc: Exception) -> int | None:
        return lib.scmr_error_code(exc)

    def _bind(self) -> lib.ScmrBinding:
        return lib.scmr_bind(self.link.high, self.link.options.host, self.link.options.port)

    def _open_service(self, b: lib.ScmrBinding, name: str, access: int) -> bytes:
        return lib.open_service(b, name, access)

    def _query(self, b: lib.ScmrBinding, handle: bytes) -> tuple[str, bool, int, int]:
        raw = lib.query_status(b, handle)
        return (lib.STATES.get(raw["state"], "unknown"), bool(raw["accepted"] & lib.ACCEPT_STOP),
                raw["win32_exit_code"], raw["service_exit_code"])

    def _control(self, b: lib.ScmrBinding, handle: bytes, code: int) -> None:
        lib.control(b, handle, code)

    def _start(self, b: lib.ScmrBinding, handle: bytes) -> None:
        lib.start(b, handle)

    def _close_handle(self, b: lib.ScmrBinding, handle: bytes | None) -> None:
        lib.close_handle(b, b.scm if handle is None else handle)

    def _unbind(self, b: lib.ScmrBinding) -> None:
        b.dce.disconnect()


@register_services("scmr/smb1")
def smb1_services(ctx: ConnectContext, files: Any) -> Smb1ScmrServiceTransport:
    """scmr services of a server whose SMB connection is SMB1: on the files' session when they share a host."""
    cfg = scmr_settings(ctx)
    options = Smb1Options(cfg.host, cfg.port, cfg.username, cfg.pick("domain"), cfg.pick("require_signing"),
                          bool(cfg.pick("allow_ntlmv1")))
    return Smb1ScmrServiceTransport(ctx.name, shared_link(ctx, Smb1Link, options, cfg.password, cfg.timeout),
                                    timeout=cfg.timeout)
