r"""What both MS-SCMR service transports do the same way, whichever SMB dialect carries the
RPC (scmr.py over SMB 2/3 with pypsexec, smb1scmr.py over SMB1 with impacket).

Windows' answers are the contract: 1060 unknown service, 1062 stop of a stopped service,
1056 start of a running one, 1052 a control code the service does not accept. Samba's SCM
stops a stopped service without complaint, so stop() asks for the state first and answers
1062 itself, as Windows would. SCMR has no wait: stop and start poll QueryServiceStatus
until the final state, up to the step's timeout (1053 after that).

Binding the pipe, opening handles, turning the RPC's errors into Windows errors and closing
are here too. A transport supplies the access rights' values, its library's errors
(`RPC_ERRORS`, `_error_code`) and the RPC calls (`_bind`, `_open_service`, `_query`,
`_control`, `_start`, `_close_handle`, `_unbind`).
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
    CONTROL_STOP = 1  # SERVICE_CONTROL_STOP

    def __init__(self, server: str, link: Any, *, timeout: float | None = None, owns_link: bool = False):
        self.server = server
        self.link = link
        self.timeout = timeout or link.timeout
        self._owns_link = owns_link
        self._generation = -1
        self._handles: dict[tuple[str, int], bytes] = {}
        self._bound: Any = None  # the library's binding to \\pipe\\svcctl (with its SCM handle) and the session's

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.server}, {self.link.options.where})"

    def _op(self, what: str) -> AbstractContextManager[Any]:
        return self.link.op(what, None, self.timeout, server=self.server)

    # --- what a transport supplies ----------------------------------------------------------

    RPC_ERRORS: tuple[type[Exception], ...] = ()

    def _error_code(self, exc: Exception) -> int | None:
        """The Windows error an RPC call answered, or None for a failure on the RPC level."""
        raise NotImplementedError

    def _bind(self) -> Any:
        """Bind \\pipe\\svcctl on the link's current session and open the SCM (inside an op)."""
        raise NotImplementedError

    def _open_service(self, bound: Any, name: str, access: int) -> bytes:
        raise NotImplementedError

    def _query(self, bound: Any, handle: bytes) -> tuple[str, bool, int, int]:
        """QueryServiceStatus: (state, accepts stop, Win32 exit code, service exit code)."""
        raise NotImplementedError

    def _control(self, bound: Any, handle: bytes, code: int) -> None:
        raise NotImplementedError

    def _start(self, bound: Any, handle: bytes) -> None:
        raise NotImplementedError

    def _close_handle(self, bound: Any, handle: bytes | None) -> None:
        """Close a service handle, or the SCM's when `handle` is None."""
        raise NotImplementedError

    def _unbind(self, bound: Any) -> None:
        raise NotImplementedError

    # --- the RPC ----------------------------------------------------------------------------

    def _call(self, name: str, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self.RPC_ERRORS as exc:
            code = self._error_code(exc)
            if code is not None:
                raise service_error(code, name, self.server, action) from None
            raise TargetError(f"{action} {name}: the service control manager answered: {exc}",
                              server=self.server) from exc

    def _binding(self) -> Any:
        """The bound pipe of the current session; bound again after a reconnect (the handles went with it)."""
        if self._bound is None or self._generation != self.link.generation:
            self._handles.clear()
            self._bound = None
            # an SCM that refuses us says so as a Windows error, on either dialect
            self._bound = self._call("the service control manager", "open", self._bind)
            self._generation = self.link.generation
        return self._bound

    def _handle(self, name: str, access: int, action: str) -> bytes:
        bound = self._binding()
        key = (name.casefold(), access)
        if key not in self._handles:
            self._handles[key] = self._call(name, action, self._open_service, bound, name, access)
        return self._handles[key]

    def _status(self, name: str, handle: bytes, action: str) -> ServiceStatus:
        state, stoppable, win32, specific = self._call(name, action, self._query, self._binding(), handle)
        extra = {"win32_exit_code": str(win32), "service_exit_code": str(specific)}
        return ServiceStatus(name, state, None, stoppable, extra)

    def _send_stop(self, name: str, handle: bytes) -> None:
        self._call(name, "stop", self._control, self._binding(), handle, self.CONTROL_STOP)

    def _send_start(self, name: str, handle: bytes) -> None:
        self._call(name, "start", self._start, self._binding(), handle)

    def _send_control(self, name: str, handle: bytes, code: int) -> None:
        self._call(name, f"control {code}", self._control, self._binding(), handle, code)

    def close(self) -> None:
        bound, self._bound = self._bound, None
        try:
            if bound is not None and self.link.is_current(self._generation):  # never reconnect just to close
                with self._op("close the service control manager"):
                    for handle in [*self._handles.values(), None]:
                        try:
                            self._close_handle(bound, handle)
                        except self.RPC_ERRORS:
                            pass
                    self._unbind(bound)
        except (TargetError, *self.RPC_ERRORS):
            pass  # closing is best effort: the session's end releases the handles anyway
        finally:
            self._handles.clear()
            if self._owns_link:
                self.link.close()

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
