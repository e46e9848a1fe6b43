r"""ServiceTransport over MS-SCMR on \pipe\svcctl (pypsexec's SCMRApi), on the server's SMB session.

When the server's files are on SMB, the service transport rides on the same SmbLink (one
logon, one TCP connection); otherwise it opens its own from the scmr spec. Each RPC is an
SMB operation bounded by the spec's timeout. What stop, start, control and their waits do,
and the Windows answers they keep to, is scmr_ops.py's, shared with SMB1.
"""

from __future__ import annotations

from typing import Any

from pypsexec.exceptions import PypsexecException, SCMRException
from pypsexec.scmr import ControlCode, CurrentState, DesiredAccess, SCMRApi
from pypsexec.scmr import ControlsAccepted as Accepts

from .base import RUNNING, STOPPED, ServiceStatus, TargetError, service_error
from .connect import ConnectContext, register_services
from .smb import shared_link
from .scmr_ops import ScmrOperations
from .scmr_settings import scmr_settings
from .smbconn import SmbLink, SmbOptions

STATES = {
    CurrentState.SERVICE_STOPPED: STOPPED,
    CurrentState.SERVICE_START_PENDING: "start_pending",
    CurrentState.SERVICE_STOP_PENDING: "stop_pending",
    CurrentState.SERVICE_RUNNING: RUNNING,
    CurrentState.SERVICE_CONTINUE_PENDING: "continue_pending",
    CurrentState.SERVICE_PAUSE_PENDING: "pause_pending",
    CurrentState.SERVICE_PAUSED: "paused",
}


class ScmrServiceTransport(ScmrOperations):
    QUERY = DesiredAccess.SERVICE_QUERY_STATUS
    STOP = DesiredAccess.SERVICE_STOP
    START = DesiredAccess.SERVICE_START
    USER_CONTROL = DesiredAccess.SERVICE_USER_DEFINED_CONTROL

    def __init__(self, server: str, link: SmbLink, *, timeout: float | None = None, owns_link: bool = False):
        super().__init__(server, link, timeout=timeout, owns_link=owns_link)
        self._api: SCMRApi | None = None
        self._scm: bytes | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _rpc(self) -> SCMRApi:
        """The bound svcctl pipe and SCM handle of the current session (inside an op)."""
        if self._api is None or self._generation != self.link.generation:
            self._handles.clear()
            api = SCMRApi(self.link.session)
            with self.link.signed_tree_connects():  # SCMRApi.open() connects to IPC$
                api.open()
            self._scm = api.open_sc_manager_w(self.link.options.host, None, DesiredAccess.SC_MANAGER_CONNECT)
            self._api, self._generation = api, self.link.generation
        return self._api

    def _call(self, name: str, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except SCMRException as exc:
            raise service_error(exc.return_code, name, self.server, action) from None
        except PypsexecException as exc:  # a malformed or fault answer on the RPC level
            raise TargetError(f"{action} {name}: the service control manager answered: {exc}",
                              server=self.server) from exc

    def _handle(self, name: str, access: int, action: str) -> bytes:
        api = self._rpc()
        key = (name.casefold(), access)
        if key not in self._handles:
            self._handles[key] = self._call(name, action, api.open_service_w, self._scm, name, access)
        return self._handles[key]

    def _status(self, name: str, handle: bytes, action: str) -> ServiceStatus:
        raw = self._call(name, action, self._rpc().query_service_status, handle)
        state = STATES.get(raw["current_state"].get_value(), "unknown")
        accepts = raw["controls_accepted"].get_value()
        extra = {"win32_exit_code": str(raw["win32_exit_code"].get_value()),
                 "service_exit_code": str(raw["service_specified_exit_code"].get_value())}
        return ServiceStatus(name, state, None, bool(accepts & Accepts.SERVICE_ACCEPT_STOP), extra)

    def _send_stop(self, name: str, handle: bytes) -> None:
        self._call(name, "stop", self._rpc().control_service, handle, ControlCode.SERVICE_CONTROL_STOP)

    def _send_start(self, name: str, handle: bytes) -> None:
        self._call(name, "start", self._rpc().start_service_w, handle)

    def _send_control(self, name: str, handle: bytes, code: int) -> None:
        self._call(name, f"control {code}", self._rpc().control_service, handle, code)

    def close(self) -> None:
        api, self._api = self._api, None
        try:
            if api is not None and self.link.is_current(self._generation):  # never reconnect just to close
                with self._op("close the service control manager"):
                    for handle in [*self._handles.values(), self._scm]:
                        try:
                            api.close_service_handle_w(handle)
                        except SCMRException:
                            pass
                    api.close()
        except TargetError:
            pass  # closing is best effort: the session's end releases the handles anyway
        finally:
            self._handles.clear()
            if self._owns_link:
                self.link.close()


# --- from the inventory ------------------------------------------------------------------


@register_services("scmr")
def _scmr_services(ctx: ConnectContext, files: Any) -> ScmrServiceTransport:
    cfg = scmr_settings(ctx)
    options = SmbOptions(cfg.host, cfg.port, cfg.username, cfg.pick("domain"), cfg.pick("require_signing"),
                         cfg.pick("encrypt"))
    password, timeout = cfg.password, cfg.timeout
    link = shared_link(ctx, options, password, timeout)
    return ScmrServiceTransport(ctx.name, link, timeout=timeout)
