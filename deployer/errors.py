"""Typed errors and the exit codes they map to: one tree, caught at the depth a caller needs.

Every error a user can see carries a message that says what is wrong and what to do.
The CLI maps each class to one exit code (`exit_code`); nothing else decides exit codes.
Each condition has exactly one class: transports translate what their protocol says
(NTSTATUS, SFTP status, errno, sc.exe output, a library's exception) into these, so a
caller never needs to know which transport raised.

    DeployerError                          any error deployer reports (never a traceback)
    |-- InputError                       2  bad input; .location (file:line:column), .field
    |   |-- InputErrors                     several input problems found in one pass
    |   |-- StalePlanError                  a saved plan no longer matches (or was edited)
    |   |-- SiteLockedError                 another run holds the site's lock
    |   `-- (kbimport) ArticleError         a KB article that cannot be read as a table
    |-- SetupError                       2  this machine's installation cannot run deployer
    |   `-- UnsupportedLibrary              a library outside the range deployer was tested with
    |-- TargetError                      1  a server refused or failed an operation;
    |   |                                   .winerror (Windows error code), .server, .path
    |   |-- NotFound                     (2)  ERROR_FILE_NOT_FOUND
    |   |   `-- PathNotFound             (3)  ERROR_PATH_NOT_FOUND
    |   |-- NotADirectory              (267)  ERROR_DIRECTORY
    |   |-- AlreadyExists              (183)  ERROR_ALREADY_EXISTS
    |   |-- AccessDenied                 (5)  ERROR_ACCESS_DENIED
    |   |   `-- AuthenticationFailed (1326) 2  logon refused (SMB and SSH): check the credentials
    |   |-- SharingViolation            (32)  ERROR_SHARING_VIOLATION: the file is in use
    |   |-- DiskFull                   (112)  ERROR_DISK_FULL
    |   |-- ServiceError        (1052, 1053, 1056, 1060, 1062, ...)  the Service Control Manager's
    |   |-- ProtocolMismatch          (50) 2  client and server do not meet: a configuration problem
    |   |   |-- DialectMismatch             SMB 2/3 against an SMB1-only server, or the reverse, or no SMB
    |   |   `-- SigningUnavailable          the server cannot sign as the inventory requires (SMB1)
    |   |-- HostKeyError                  2  the server's identity cannot be trusted (SSH)
    |   |   |-- HostKeyUnknown              not in known_hosts
    |   |   `-- HostKeyChanged              differs from known_hosts, or @revoked
    |   `-- NetworkError                    the server did not answer or went away: a rollback
    |       |                               asks it nothing more, `deployer recover` finishes later
    |       |-- TransportTimeout      (1460)  ERROR_TIMEOUT: no answer within the server's `timeout`
    |       `-- ConnectionLost          (64)  ERROR_NETNAME_DELETED: the connection went away
    |           `-- ConnectFailed     (1231)  no connection at all: 1225 refused, 53 name unknown
    |-- BrokerUnreachable                1  the workers' broker (Redis) cannot be reached; nothing sent
    |-- PayloadUnverifiable              1  a hotfix file's bytes do not hash to its name (workers)
    `-- RunOutcome                          how a run ended, when not done
        |-- ApplyFailed                  1  failed, and every change was rolled back (verified)
        |-- VerificationMismatch         3  files do not match the manifest
        `-- RestoreFailed                4  failed, and the rollback did not complete

`targets.base` re-exports the TargetError classes (transports import them from there);
`smbconn.AuthenticationFailed`, `sshconn.SshAuthFailed` and `sshconn.SshConnectError` are
the same classes under their former names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # done, or nothing to do
    FAILED_RESTORED = 1  # the run failed and the site was restored
    BAD_INPUT = 2  # bad input or usage; nothing was touched
    MISMATCH = 3  # verification found files that do not match, or could not check some (INCOMPLETE)
    NOT_RESTORED = 4  # the site could not be restored; the journal says what to do
    # `plan --detailed-exitcode`: Terraform's -detailed-exitcode answers 2 for "changes
    # pending", but 2 is deployer's bad input, so pending changes take the next free code
    CHANGES_PENDING = 5
    INCOMPLETE = 6  # preflight: no check failed, but some could not be made on this target


# What each code means, as --help and docs/reference/exit-codes.md say it.
EXIT_MEANINGS: dict[int, str] = {
    0: "done (or nothing to do)",
    1: "the run failed and the site was restored, or a server could not be reached and nothing was changed",
    2: "bad input or usage (credentials and host keys included), nothing touched",
    3: "verification found files that do not match, or could not check some (NOT VERIFIED: the outcome is "
       "INCOMPLETE, never PASSED)",
    4: "the site could not be restored (the journal says what to do)",
    5: "with --detailed-exitcode: the plan has actions to apply (changes pending)",
    6: "preflight: no check failed, but some could not be checked on this target (INCOMPLETE)",
}


def exit_help(*codes: int, meanings: dict[int, str] | None = None) -> str:
    """The `Exit codes: ...` line of a command's help: only the codes it can return."""
    table = {**EXIT_MEANINGS, **(meanings or {})}
    return "Exit codes: " + "; ".join(f"{int(c)} {table[int(c)]}" for c in codes) + "."


EXIT_CODES_HELP = exit_help(*ExitCode)


class DeployerError(Exception):
    exit_code: ExitCode = ExitCode.FAILED_RESTORED


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class InputError(DeployerError):
    """Bad input: a playbook, manifest, inventory, plan or argument is wrong. Nothing was touched."""

    exit_code = ExitCode.BAD_INPUT

    def __init__(self, message: str, location: Location | None = None, field: str | None = None):
        self.message = message
        self.location = location
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        prefix = f"{self.location}: " if self.location else ""
        field = f"{self.field}: " if self.field else ""
        return f"{prefix}{field}{self.message}"


class InputErrors(InputError):
    """Several input problems found in one pass, reported together."""

    def __init__(self, errors: list[InputError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class StalePlanError(InputError):
    """A saved plan no longer matches the target (or was edited): it is refused, untouched."""


class SiteLockedError(InputError):
    """Another run holds the site's lock."""


# --- setup ---------------------------------------------------------------------------------


class SetupError(DeployerError):
    """This machine's installation cannot run what was asked; nothing was touched."""

    exit_code = ExitCode.BAD_INPUT


class UnsupportedLibrary(SetupError):
    """An installed library is outside the version range deployer was tested with."""

    def __init__(self, distribution: str, installed: str, tested: str, why: str):
        self.distribution = distribution
        self.installed = installed
        self.tested = tested
        super().__init__(
            f"{distribution} {installed} is installed, but deployer was tested with {distribution} {tested} "
            f"only ({why}). Install a tested version: pip install '{distribution}{tested}'")


# --- servers -------------------------------------------------------------------------------


class TargetError(DeployerError):
    """A server refused or failed an operation. `winerror` is the Windows error code."""

    exit_code = ExitCode.FAILED_RESTORED
    winerror: int = 0
    label: str = "error"

    def __init__(self, message: str, *, server: str | None = None, path: str | None = None,
                 winerror: int | None = None):
        self.server = server
        self.path = path
        if winerror is not None:
            self.winerror = winerror
        self.detail = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.server and self.path:
            where = f"{self.server}: {self.path}: "
        elif self.server:
            where = f"{self.server}: "
        code = f" (Windows error {self.winerror})" if self.winerror else ""
        return f"{where}{self.detail}{code}"


class NotFound(TargetError):
    winerror = 2  # ERROR_FILE_NOT_FOUND (3 for a missing folder on the way)


class PathNotFound(NotFound):
    winerror = 3  # ERROR_PATH_NOT_FOUND


class NotADirectory(TargetError):
    winerror = 267  # ERROR_DIRECTORY: "The directory name is invalid"


class AlreadyExists(TargetError):
    winerror = 183  # ERROR_ALREADY_EXISTS (80 ERROR_FILE_EXISTS for CreateFile)


class AccessDenied(TargetError):
    winerror = 5


class AuthenticationFailed(AccessDenied):
    """The server refused the logon, whatever the protocol (SMB session setup, SSH userauth)."""

    winerror = 1326  # ERROR_LOGON_FAILURE: "The user name or password is incorrect"
    exit_code = ExitCode.BAD_INPUT  # configuration: the credentials


class SharingViolation(TargetError):
    winerror = 32  # ERROR_SHARING_VIOLATION: the file is in use by another process


class DiskFull(TargetError):
    winerror = 112  # ERROR_DISK_FULL


class ServiceError(TargetError):
    """A Service Control Manager error; winerror says which (1052, 1060, 1062, ...)."""


class ProtocolMismatch(TargetError):
    """The client's protocol and the server's do not meet: fix the inventory, nothing was touched."""

    exit_code = ExitCode.BAD_INPUT
    winerror = 50  # ERROR_NOT_SUPPORTED


class DialectMismatch(ProtocolMismatch):
    """SMB 2/3 met an SMB1-only server, SMB1 met a server with SMB1 disabled, or the port is not SMB."""


class SigningUnavailable(ProtocolMismatch):
    """The server offers no signing (SMB1) while the inventory requires it (the default)."""


class HostKeyError(TargetError):
    """The server's host key cannot be trusted; nothing was sent to it but the key exchange."""

    exit_code = ExitCode.BAD_INPUT  # configuration: known_hosts or trust_on_first_use


class HostKeyUnknown(HostKeyError):
    pass


class HostKeyChanged(HostKeyError):
    pass


class NetworkError(TargetError):
    """The server did not answer in time or the connection to it failed: it may be gone."""


class TransportTimeout(NetworkError):
    winerror = 1460  # ERROR_TIMEOUT


class ConnectionLost(NetworkError):
    winerror = 64  # ERROR_NETNAME_DELETED: "The specified network name is no longer available"


class ConnectFailed(ConnectionLost):
    """No connection could be made (refused, unreachable, unknown name, no session); nothing was touched."""

    winerror = 1231  # ERROR_NETWORK_UNREACHABLE; 1225 ERROR_CONNECTION_REFUSED, 53 ERROR_BAD_NETPATH


# --- run outcomes --------------------------------------------------------------------------


class BrokerUnreachable(DeployerError):
    """The workers' broker (Redis) cannot be reached: nothing was sent, no site was touched."""

    exit_code = ExitCode.FAILED_RESTORED


class PayloadUnverifiable(DeployerError):
    """A hotfix file from the broker's store does not hash to its name, or is not there (workers)."""


class RunOutcome(DeployerError):
    """How a run (or a verification) ended when it did not simply succeed."""


class ApplyFailed(RunOutcome):
    """A run failed and every change was rolled back (verified)."""

    exit_code = ExitCode.FAILED_RESTORED


class RestoreFailed(RunOutcome):
    """A run failed and the rollback did not complete: the site needs attention."""

    exit_code = ExitCode.NOT_RESTORED


class VerificationMismatch(RunOutcome):
    exit_code = ExitCode.MISMATCH
