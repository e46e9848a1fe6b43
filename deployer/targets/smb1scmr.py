r"""ServiceTransport over MS-SCMR on \pipe\svcctl, on the server's SMB1 session (impacket's scmr).

The SMB1 counterpart of scmr.py: the same operations and Windows answers (scmr_ops.py), over
impacket's RPC.
"""

from __future__ import annotations

from typing import Any

from .adapters import impacket_internals as lib
from .base import ServiceStatus, TargetError, service_error
from .connect import ConnectContext, register_services
from .smb1 import shared_link
from .scmr_ops import ScmrOperations
from .scmr_settings import scmr_settings
from .smb1conn import Smb1Link, Smb1Options



class Smb1ScmrServiceTransport(ScmrOperations):
    QUERY = lib.SERVICE_QUERY_STATUS
    STOP = lib.SERVICE_STOP
    START = lib.SERVICE_START
    USER_CONTROL = lib.SERVICE_USER_DEFINED_CONTROL

    def __init__(self, server: str, link: Smb1Link, *, timeout: float | None = None, owns_link: bool = False):
        super().__init__(server, link, timeout=timeout, owns_link=owns_link)
        self._rpc: lib.ScmrBinding | None = None

    def _binding(self) -> lib.ScmrBinding:
        if self._rpc is None or self._generation != self.link.generation:
            self._handles.clear()
            self._rpc = None
            try:
                self._rpc = lib.scmr_bind(self.link.high, self.link.options.host, self.link.options.port)
            except lib.RPC_ERRORS as exc:
                code = lib.scmr_error_code(exc)
                if code is not None:
                    raise service_error(code, "the service control manager", self.server, "open") from None
                raise TargetError(f"open the service control manager: {exc}", server=self.server) from exc
            self._generation = self.link.generation
        return self._rpc

    def _call(self, name: str, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except lib.RPC_ERRORS as exc:
            code = lib.scmr_error_code(exc)
            if code is not None:
                raise service_error(code, name, self.server, action) from None
            raise TargetError(f"{action} {name}: the service control manager answered: {exc}",
                              server=self.server) from exc

    def _handle(self, name: str, access: int, action: str) -> bytes:
        b = self._binding()
        key = (name.casefold(), access)
        if key not in self._handles:
            self._handles[key] = self._call(name, action, lib.open_service, b, name, access)
        return self._handles[key]

    def _status(self, name: str, handle: bytes, action: str) -> ServiceStatus:
        raw = self._call(name, action, lib.query_status, self._binding(), handle)
        state = lib.STATES.get(raw["state"], "unknown")
        extra = {"win32_exit_code": str(raw["win32_exit_code"]), "service_exit_code": str(raw["service_exit_code"])}
        return ServiceStatus(name, state, None, bool(raw["accepted"] & lib.SERVICE_ACCEPT_STOP), extra)

    def _send_stop(self, name: str, handle: bytes) -> None:
        self._call(name, "stop", lib.control, self._binding(), handle, lib.SERVICE_CONTROL_STOP)

    def _send_start(self, name: str, handle: bytes) -> None:
        self._call(name, "start", lib.start, self._binding(), handle)

    def _send_control(self, name: str, handle: bytes, code: int) -> None:
        self._call(name, f"control {code}", lib.control, self._binding(), handle, code)

    def close(self) -> None:
        b, self._rpc = self._rpc, None
        try:
            if b is not None and self.link.is_current(self._generation):
                with self._op("close the service control manager"):
                    for handle in [*self._handles.values(), b.scm]:
                        try:
                            lib.close_handle(b, handle)
                        except lib.RPC_ERRORS:
                            pass
                    b.dce.disconnect()
        except (TargetError, *lib.RPC_ERRORS):
            pass  # best effort: the session's end releases the handles anyway
        finally:
            self._handles.clear()
            if self._owns_link:
                self.link.close()


@register_services("scmr/smb1")
def smb1_services(ctx: ConnectContext, files: Any) -> Smb1ScmrServiceTransport:
    """scmr services of a server whose SMB connection is SMB1: on the files' session when they share a host."""
    cfg = scmr_settings(ctx)
    options = Smb1Options(cfg.host, cfg.port, cfg.username, cfg.pick("domain"), cfg.pick("require_signing"),
                          bool(cfg.pick("allow_ntlmv1")))
    password, timeout = cfg.password, cfg.timeout
    link = shared_link(ctx, options, password, timeout)
    return Smb1ScmrServiceTransport(ctx.name, link, timeout=timeout)
