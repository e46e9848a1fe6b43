"""Commands over an SSH connection (sc.exe): one exec channel each, in as few round trips as SSH allows.

An SSH exec channel runs one command and cannot be used again, so each command needs a channel:
its open costs a round trip. The next command's channel is opened ahead, in the background,
right after a command ends, so that round trip overlaps what deployer does meanwhile; and once
the server has confirmed one exec on a connection, later execs are sent without asking it to
confirm (RFC 4254 want-reply false): the command and its output then cost one round trip.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Callable, ContextManager

import paramiko

from .adapters.paramiko_internals import exec_without_reply
from .base import ConnectionLost, TargetError, TransportTimeout

if TYPE_CHECKING:
    from .sshconn import Watchdog
    from .traffic import Meter


class CommandRunner:
    """SshConnection's commands; the connection supplies the channel, its time limits and meter."""

    server: str
    where: str
    timeout: float
    _transport: "paramiko.Transport | None"
    generation: int
    meter: "Meter"
    _exec_accepted: int
    _spare: "tuple[int, Future[paramiko.Channel]] | None"
    _spare_lock: threading.Lock

    def open_channel(self, what: str) -> paramiko.Channel:
        raise NotImplementedError

    def bounded(self, what: str, expire: Callable[[], None], seconds: float | None = None
                ) -> "ContextManager[Watchdog]":
        raise NotImplementedError

    def _channel_for(self, what: str) -> tuple[paramiko.Channel, bool]:
        """A channel for one command: the one opened ahead if it is there (and of this connection),
        else a new one; and whether deployer waited for the server's answer to its open."""
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None:
            generation, future = spare
            ready = future.done()
            try:
                chan = future.result(timeout=self.timeout)
            except FutureTimeout:  # one time limit, as a channel opened now would have
                raise TransportTimeout(f"{what}: no SSH channel from {self.where} within {self.timeout:g} s",
                                       server=self.server) from None
            except TargetError:
                transport = self._transport
                if generation == self.generation and transport is not None and transport.is_active():
                    raise  # the server is there and opened no channel: asking again would wait as long
                chan = None  # the connection dropped meanwhile: a new channel reconnects
            if chan is not None and generation == self.generation and chan.active and not chan.closed:
                return chan, not ready
            if chan is not None:
                chan.close()
        return self.open_channel(what), True

    def _open_ahead(self) -> None:
        """Open the next command's channel now, in the background: its open's round trip then
        overlaps what deployer does meanwhile, and the next sc.exe costs one round trip. An SSH
        exec channel runs one command, so a channel is never used twice."""
        with self._spare_lock:
            if self._spare is not None:
                return
            future: Future[paramiko.Channel] = Future()
            self._spare = (self.generation, future)

        transport = self._transport  # never reconnects from the background: close() may run meanwhile

        def opening() -> None:
            try:
                if transport is None or not transport.is_active():
                    raise ConnectionLost(f"the next command: the SSH connection to {self.where} is closed",
                                         server=self.server)
                chan = transport.open_session(timeout=self.timeout)
                chan.settimeout(self.timeout)
                future.set_result(chan)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                future.set_exception(ConnectionLost(f"the next command: cannot open an SSH channel to {self.where} "
                                                    f"({exc})", server=self.server))
            except BaseException as exc:  # noqa: BLE001 - handed to the command that takes the channel
                future.set_exception(exc)
        threading.Thread(target=opening, name=f"ssh-channel-ahead-{self.server}", daemon=True).start()

    def run(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        """Run a command on the server; its exit code and output (stdout and stderr together)."""
        limit = timeout if timeout is not None else self.timeout
        chan, waited = self._channel_for(f"`{command}`")
        generation = self.generation
        # the channel's open waits for the server unless it was opened ahead; the exec too the first
        # time on a connection (a server that refuses exec says so only when asked), then it goes
        # out with the output's wait
        confirmed = self._exec_accepted != generation
        for _ in range(int(waited) + int(confirmed)):
            self.meter.exchange(1)
        try:
            with self.bounded(f"`{command}`", chan.close, limit) as dog:
                chan.set_combine_stderr(True)
                if confirmed:
                    chan.exec_command(command)
                    self._exec_accepted = generation
                else:
                    exec_without_reply(chan, command)
                chan.shutdown_write()  # nothing to say on stdin: a command that reads it gets EOF
                out = bytearray()
                while chunk := chan.recv(65536):
                    out += chunk
                code = chan.recv_exit_status()
                self.meter.exchange(0)
                if dog.fired:
                    raise TransportTimeout(f"`{command}` did not finish within {limit:g} s", server=self.server)
            # no exit status and no end of output from the server: the channel went with its
            # connection (a command killed on a live one still ends with the server's EOF)
            lost = code == -1 and not chan.eof_received
        finally:
            chan.close()
        if lost:
            raise ConnectionLost(f"`{command}`: the SSH connection to {self.where} was lost before the command "
                                 "ended (it may or may not have run)", server=self.server)
        self._open_ahead()
        # sc.exe writes the console's OEM code page; only its ASCII labels and numbers are parsed
        return code, out.decode("utf-8", errors="replace")
