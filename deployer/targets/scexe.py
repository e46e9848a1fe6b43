r"""Speaking to a Windows Service Control Manager through `sc.exe`: command lines and output.

sc.exe prints one of two things (CRLF line ends; the texts after the colons are localized,
the labels and numbers are not, so only those are parsed):

  a status block, for `query`, `stop`, `control` (and `start`, which adds PID and FLAGS):

        SERVICE_NAME: SMS_EXECUTIVE
                TYPE               : 10  WIN32_OWN_PROCESS
                STATE              : 4  RUNNING
                                        (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)
                WIN32_EXIT_CODE    : 0  (0x0)
                SERVICE_EXIT_CODE  : 0  (0x0)
                CHECKPOINT         : 0x0
                WAIT_HINT          : 0x0

  or a failure, the Win32 error code after FAILED and FormatMessage's text below it:

        [SC] OpenService FAILED 1060:

        The specified service does not exist as an installed service.

    (`query` says `[SC] EnumQueryServicesStatus:OpenService FAILED 1060:`, `start`
    `[SC] StartService: OpenService FAILED 1060:`; a stopped service's control is
    `[SC] ControlService FAILED 1062:`; a second start is `[SC] StartService FAILED 1056:`).
    sc.exe exits with that same code (0 on success), but a shell between may keep only its
    low 8 bits (1056 arrives as 32): the code is read from the text, never from the exit status.

Real output also carries trailing spaces (`SERVICE_NAME: X `, `TYPE : 10  WIN32_OWN_PROCESS  `,
`STATE : 4  RUNNING `, `FLAGS : `). tests/data/scexe/ holds published transcripts this parser
is tested against.

`stop` and `start` return as soon as the Service Control Manager accepted the request,
usually in STOP_PENDING or START_PENDING: waiting for the final state is the caller's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import InputError
from .base import SERVICE_ERRORS, ServiceError, ServiceStatus, TargetError, service_error

# SERVICE_STATUS.dwCurrentState
STATES = {1: "stopped", 2: "start_pending", 3: "stop_pending", 4: "running", 5: "continue_pending",
          6: "pause_pending", 7: "paused"}

# Service names deployer passes to a remote shell. Every one of these characters means
# nothing to cmd.exe, PowerShell (OpenSSH's other usual DefaultShell) or a POSIX shell, so
# the name needs no quoting anywhere; anything else is refused instead of escaped, because
# escaping correctly for an unknown one of those shells is not possible.
_SERVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,255}")

# One line: "[SC] <API> FAILED <code>:". "FAILED" itself is translated on localized Windows
# ("[SC] OpenService FEHLER 1060:", "... 失败 1060:"), the API may hold a space (`sc start` of a
# missing service says "[SC] StartService: OpenService FAILED 1060:") and a localized colon may
# have one before it ("1060 :"): the code is the number before the first colon that follows a word.
# Kept to one line ([ \t], [^\n]) so a SUCCESS line is never read together with the next one.
_FAILED = re.compile(r"^\[SC\][ \t]*(?P<api>[^\n]*?)[ \t]+(?P<word>[^\s]+)[ \t]+(?P<code>\d+)[ \t]*:(?P<rest>.*)",
                     re.S | re.M)
_FIELD = re.compile(r"^\s*(?P<key>[A-Z][A-Z0-9_]*)\s*:\s?(?P<value>.*?)\s*$")


def check_service_name(name: str) -> str:
    if not _SERVICE_NAME.fullmatch(name):
        raise InputError(f"service name {name!r} cannot be passed to sc.exe safely: deployer accepts service names "
                         "made of letters, digits, '_', '.' and '-' (not starting with '.' or '-')")
    return name


def command(sc: str, verb: str, name: str, code: int | None = None) -> str:
    """The command line, e.g. `sc.exe control SMS_SITE_CONFIG_MANAGER 194`.

    `sc` comes from the inventory and is used as written (an operator may give a full path,
    quoted for the server's shell); the arguments are checked, never quoted.
    """
    parts = [sc, verb, check_service_name(name)]
    if code is not None:
        parts.append(str(int(code)))
    return " ".join(parts)


@dataclass(frozen=True)
class ScFailure:
    api: str  # OpenService, ControlService, StartService, EnumQueryServicesStatus:OpenService ...
    code: int  # the Win32 error code
    message: str  # FormatMessage's text, in the server's language


@dataclass
class ScStatus:
    name: str
    state_code: int
    fields: dict[str, str] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        return STATES.get(self.state_code, f"state_{self.state_code}")

    @property
    def win32_exit_code(self) -> int:
        return _leading_int(self.fields.get("WIN32_EXIT_CODE", "0"))

    @property
    def service_exit_code(self) -> int:
        return _leading_int(self.fields.get("SERVICE_EXIT_CODE", "0"))

    @property
    def wait_hint_ms(self) -> int:
        return _leading_int(self.fields.get("WAIT_HINT", "0"))

    @property
    def pid(self) -> int | None:
        """The process id `queryex` and `start` print (0 for a kernel driver); None when not printed."""
        return _leading_int(self.fields["PID"]) if self.fields.get("PID", "").strip() else None

    def to_status(self) -> ServiceStatus:
        extra = {k.lower(): v for k, v in self.fields.items() if k not in ("SERVICE_NAME", "STATE")}
        return ServiceStatus(self.name, self.state, None, accepts_stop="STOPPABLE" in self.flags, extra=extra)


def _leading_int(text: str) -> int:
    m = re.match(r"\s*(0x[0-9A-Fa-f]+|\d+)", text)
    return int(m.group(1), 0) if m else 0


def parse_failure(output: str) -> ScFailure | None:
    m = _FAILED.search(output.replace("\r\n", "\n"))
    if not m:
        return None
    message = " ".join(line.strip() for line in m.group("rest").splitlines() if line.strip())
    return ScFailure(m.group("api").strip(), int(m.group("code")), message)


def parse_status(output: str) -> ScStatus | None:
    """The first SERVICE_NAME block of sc.exe's output, or None when there is none."""
    status: ScStatus | None = None
    lines = output.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        m = _FIELD.match(line)
        if not m:
            stripped = line.strip()
            if status is not None and stripped.startswith("(") and stripped.endswith(")") and not status.flags:
                status.flags = tuple(f.strip() for f in stripped[1:-1].split(","))
            continue
        key, value = m.group("key"), m.group("value")
        if key == "SERVICE_NAME":
            if status is not None:
                break  # a second block: only the first one is ours
            status = ScStatus(value, 0)
            continue
        if status is None:
            continue
        status.fields[key] = value
        if key == "STATE":
            status.state_code = _leading_int(value)
    if status is None or "STATE" not in status.fields:
        return None
    return status


def failure_error(failure: ScFailure, service: str, server: str | None, action: str) -> ServiceError:
    if failure.code in SERVICE_ERRORS:
        return service_error(failure.code, service, server, action)
    # Codes deployer has no sentence for (2: the service's executable is missing, ...):
    # sc.exe's own text, which FormatMessage wrote in the server's language, says it best.
    text = failure.message or f"sc.exe reported {failure.api} FAILED {failure.code}"
    return ServiceError(f"{action} {service}: {text.rstrip('.')}".strip(), server=server, winerror=failure.code)


def result(output: str, exit_code: int, service: str, server: str | None, action: str, shown: str) -> ScStatus | None:
    """Interpret one run of sc.exe: its status block, a ServiceError, or a TargetError for anything else.

    `shown` is the command as it may be shown to the operator (for messages).
    """
    failure = parse_failure(output)
    if failure is not None:
        raise failure_error(failure, service, server, action)
    status = parse_status(output)
    if exit_code == 0:
        return status
    if exit_code in (127, 9009):  # POSIX shells and cmd.exe: the command was not found
        raise TargetError(f"`{shown}` could not be run: the server has no such command ({_tail(output)}); set "
                          "services: {sc: ...} in the inventory to the path of sc.exe", server=server)
    raise TargetError(f"`{shown}` failed with exit code {exit_code} and no [SC] error: {_tail(output)}",
                      server=server, winerror=exit_code if 0 < exit_code < 0x10000 else None)


def _tail(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return (text[-limit:] if len(text) > limit else text) or "no output"
