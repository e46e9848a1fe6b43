r"""ServiceTransport over MS-SCMR on \pipe\svcctl (pypsexec's SCMRApi), on the server's SMB session.

When the server's files are on SMB, the service transport rides on the same SmbLink (one
logon, one TCP connection); otherwise it opens its own from the scmr spec. Each RPC is an
SMB operation bounded by the spec's timeout. What stop, start, control and their waits do,
and the Windows answers they keep to, is scmr_ops.py's, shared with SMB1.
"""

from __future__ import annotations

from typing import Any

from pypsexec.exceptions import PypsexecException, SCMRException
from pypsexec.scmr import CurrentState, DesiredAccess, SCMRApi
from pypsexec.scmr import ControlsAccepted as Accepts

from .base import RUNNING, STOPPED
from .connect import ConnectContext, register_services
from .scmr_ops import ScmrOperations
from .scmr_settings import scmr_settings
from .smbconn import SmbLink, SmbOptions
from .smbshare import shared_link

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
    RPC_ERRORS = (PypsexecException,)  # SCMRException: the SCM's answer; the rest: a fault on the RPC level

    link: SmbLink

    def __init__(self, server: str, link: SmbLink, *, timeout: float | None = None, owns_link: bool = False):
        super().__init__(server, link, timeout=timeout, owns_link=owns_link)
        self._scm: bytes | None = None

    # --- pypsexec's calls -------------------------------------------------------------------

    def _error_code(self, exc: Exception) -> int | None:
        return exc.return_code if isinstance(exc, SCMRException) else None

    def _bind(self) -> SCMRApi:
        api = SCMRApi(self.link.session)
        with self.link.signed_tree_connects():  # SCMRApi.open() connects to IPC$
            api.open()
        self._scm = api.open_sc_manager_w(self.link.options.host, None, DesiredAccess.SC_MANAGER_CONNECT)
        return api

    def _open_service(self, api: SCMRApi, name: str, access: int) -> bytes:
        return api.open_service_w(self._scm, name, access)

    def _query(self, api: SCMRApi, handle: bytes) -> tuple[str, bool, int, int]:
        raw = api.query_service_status(handle)
        return (STATES.get(raw["current_state"].get_value(), "unknown"),
                bool(raw["controls_accepted"].get_value() & Accepts.SERVICE_ACCEPT_STOP),
                raw["win32_exit_code"].get_value(), raw["service_specified_exit_code"].get_value())

    def _control(self, api: SCMRApi, handle: bytes, code: int) -> None:
        api.control_service(handle, code)

    def _start(self, api: SCMRApi, handle: bytes) -> None:
        api.start_service_w(handle)

    def _close_handle(self, api: SCMRApi, handle: bytes | None) -> None:
        api.close_service_handle_w(self._scm if handle is None else handle)

    def _unbind(self, api: SCMRApi) -> None:
        api.close()


# --- from the inventory ------------------------------------------------------------------


@register_services("scmr")
def _scmr_services(ctx: ConnectContext, files: Any) -> ScmrServiceTransport:
    cfg = scmr_settings(ctx)
    options = SmbOptions(cfg.host, cfg.port, cfg.username, cfg.pick("domain"), cfg.pick("require_signing"),
                         cfg.pick("encrypt"))
    return ScmrServiceTransport(ctx.name, shared_link(ctx, SmbLink, options, cfg.password, cfg.timeout),
                                timeout=cfg.timeout)
