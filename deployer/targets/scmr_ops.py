r"""What both MS-SCMR service transports do the same way, whichever SMB dialect carries the
RPC (scmr.py over SMB 2/3 with pypsexec, smb1scmr.py over SMB1 with impacket).

Windows' answers are the contract: 1060 unknown service, 1062 stop of a stopped service,
1056 start of a running one, 1052 a control code the service does not accept. Samba's SCM
stops a stopped service without complaint, so stop() asks for the state first and answers
1062 itself, as Windows would. SCMR has no wait: stop and start poll QueryServiceStatus
until the final state, up to the step's timeout (1053 after that).

A transport supplies the access rights' values, `_handle` (a service handle with those
rights), `_status` (QueryServiceStatus as a ServiceStatus) and the three calls below.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from .base import RUNNING, STOPPED, ServicePoll, ServiceStatus, TargetError, service_error

POLL_FIRST, POLL_MAX = 0.05, 1.0  # QueryServiceStatus polling: back off from 50 ms


class ScmrOperations:
    QUERY: int
    STOP: int
    START: int
    USER_CONTROL: int  # codes 128-255 need SERVICE_USER_DEFINED_CONTROL on the handle, or the SCM answers 5

    def __init__(self, server: str, link: Any, *, timeout: float | None = None, owns_link: bool = False):
        self.server = server
        self.link = link
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self._generation = -1
        self._handles: dict[tuple[str, int], bytes] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server}, {self.link.options.where})"

    def _op(self, what: str) -> AbstractContextManager[Any]:
        return self.link.op(what, None, self.timeout, server=self.server)

    # --- what a transport supplies ----------------------------------------------------------

    def _handle(self, name: str, access: int, action: str) -> bytes:
        raise NotImplementedError

    def _status(self, name: str, handle: bytes, action: str) -> ServiceStatus:
        raise NotImplementedError

    def _send_stop(self, name: str, handle: bytes) -> None:
        raise NotImplementedError

    def _send_start(self, name: str, handle: bytes) -> None:
        raise NotImplementedError

    def _send_control(self, name: str, handle: bytes, code: int) -> None:
        raise NotImplementedError

    # --- ServiceTransport -------------------------------------------------------------------

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
            poll.pause(name, st.state, self.server, action)  # SCMR notifies only via RNotifyServiceStatusChange

    def query(self, name: str) -> ServiceStatus:
        with self._op(f"query {name}"):
            return self._status(name, self._handle(name, self.QUERY, "query"), "query")

    def stop(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        access = self.QUERY | self.STOP
        with self._op(f"stop {name}"):
            handle = self._handle(name, access, "stop")
            st = self._status(name, handle, "stop")
            if st.state == STOPPED:
                raise service_error(1062, name, self.server, "stop")
            if st.state != "stop_pending":
                self._send_stop(name, handle)
        return self._wait(name, access, STOPPED, timeout, "stop")

    def start(self, name: str, timeout: float = 60.0) -> ServiceStatus:
        access = self.QUERY | self.START
        with self._op(f"start {name}"):
            self._send_start(name, self._handle(name, access, "start"))
        return self._wait(name, access, RUNNING, timeout, "start")

    def control(self, name: str, code: int) -> None:
        access = self.QUERY | self.USER_CONTROL
        with self._op(f"control {code} {name}"):
            self._send_control(name, self._handle(name, access, f"control {code}"), code)
