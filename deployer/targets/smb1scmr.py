r"""ServiceTransport over MS-SCMR on \pipe\svcctl, on the server's SMB1 session (impacket's scmr).

The SMB1 counterpart of scmr.py, with the same contract: 1060 unknown service, 1062 stop
of a stopped service (asked first: Samba's SCM stops a stopped service without complaint),
1056 start of a running one, 1052 a control code the service does not accept; stop and
start poll QueryServiceStatus until the final state, up to the step's timeout (1053).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from .adapters import impacket_internals as lib
from .base import RUNNING, STOPPED, ServicePoll, ServiceStatus, TargetError, service_error
from .connect import ConnectContext, register_services
from .smb1 import shared_link
from .scmr_settings import scmr_settings
from .smb1conn import Smb1Link, Smb1Options

QUERY = lib.SERVICE_QUERY_STATUS
POLL_FIRST, POLL_MAX = 0.05, 1.0


class Smb1ScmrServiceTransport:
    def __init__(self, server: str, link: Smb1Link, *, timeout: float | None = None, owns_link: bool = False):
        self.server = server
        self.link = link
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self._rpc: lib.ScmrBinding | None = None
        self._generation = -1
        self._handles: dict[tuple[str, int], bytes] = {}

    def __repr__(self) -> str:
        return f"Smb1ScmrServiceTransport({self.server}, {self.link.options.where})"

    def _op(self, what: str) -> AbstractContextManager[Smb1Link]:
        return self.link.op(what, None, self.timeout, server=self.server)

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

    def _wait(self, name: str, access: int, want: str, timeout: float, action: str) -> ServiceStatus:
        poll = ServicePoll(timeout, first=POLL_FIRST, floor=POLL_FIRST, maximum=POLL_MAX)
        while True:
            with self._op(f"{action} {name}"):
                st = self._status(name, self._handle(name, access, action), action)
            if st.state == want:
                return st
            if want == RUNNING and st.state == STOPPED:
                code = int(st.extra["win32_exit_code"]) or 1053
                raise TargetError(f"{action} {name}: the service stopped while starting (exit code "
                                  f"{st.extra['win32_exit_code']}, service exit code {st.extra['service_exit_code']})",
                                  server=self.server, winerror=code)
            poll.pause(name, st.state, self.server, action)

    # --- ServiceTransport -------------------------------------------------------------------

    def query(self, name: str) -> ServiceStatus:
        with self._op(f"query {name}"):
            return self._status(name, self._handle(name, QUERY, "query"), "query")

    def stop(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        access = QUERY | lib.SERVICE_STOP
        with self._op(f"stop {name}"):
            handle = self._handle(name, access, "stop")
            st = self._status(name, handle, "stop")
            if st.state == STOPPED:
                raise service_error(1062, name, self.server, "stop")
            if st.state != "stop_pending":
                self._call(name, "stop", lib.control, self._binding(), handle, lib.SERVICE_CONTROL_STOP)
        return self._wait(name, access, STOPPED, timeout, "stop")

    def start(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        access = QUERY | lib.SERVICE_START
        with self._op(f"start {name}"):
            handle = self._handle(name, access, "start")
            self._call(name, "start", lib.start, self._binding(), handle)
        return self._wait(name, access, RUNNING, timeout, "start")

    def control(self, name: str, code: int) -> None:
        access = QUERY | lib.SERVICE_USER_DEFINED_CONTROL  # codes 128-255 need it, or the SCM answers 5
        with self._op(f"control {code} {name}"):
            handle = self._handle(name, access, f"control {code}")
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
