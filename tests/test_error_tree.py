"""One error tree (deployer/errors.py): one class per condition whatever the transport, the
drawing in the module's docstring complete, and exit codes by branch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import socket

import pytest

from deployer import errors
from deployer.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionLost,
    DeployerError,
    ExitCode,
    HostKeyError,
    InputError,
    NetworkError,
    RunOutcome,
    TargetError,
    TransportTimeout,
)
from deployer.model.secrets import Secret
from deployer.targets import base, smbconn, sshconn
from deployer.targets.smbconn import SmbLink, SmbOptions

def _all_errors() -> set[type[DeployerError]]:
    """Every DeployerError class, once the CLI and every transport module are imported."""
    import deployer.targets

    importlib.import_module("deployer.cli")
    importlib.import_module("deployer.kbimport")
    for info in pkgutil.walk_packages(deployer.targets.__path__, "deployer.targets."):
        importlib.import_module(info.name)
    seen: set[type[DeployerError]] = set()
    todo = [DeployerError]
    while todo:
        cls = todo.pop()
        seen.add(cls)
        todo += cls.__subclasses__()
    return seen


def test_every_server_error_and_run_outcome_is_defined_in_the_one_tree():
    """Transports translate into errors.py's classes; only input errors may specialise elsewhere
    (a KB article's table error still is an InputError with its location)."""
    elsewhere = sorted(f"{c.__module__}.{c.__qualname__}" for c in _all_errors()
                       if c.__module__ != "deployer.errors" and not issubclass(c, InputError))
    assert elsewhere == []


def test_the_drawn_tree_names_every_class_of_errors_py_under_its_parent():
    doc = errors.__doc__
    drawn = {}  # name -> parent, from the indentation of the drawing
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*(?:[|`]-- |[| ]   )*)(?:[|`]-- )?(\(\w+\) )?([A-Z]\w+)\b", line)
        if not m or not line.startswith("    ") or m.group(3) == "Every":
            continue
        depth = len(m.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[m.group(3)] = stack[-1][1] if stack else None
        stack.append((depth, m.group(3)))
    defined = {name: cls for name, cls in vars(errors).items()
               if inspect.isclass(cls) and issubclass(cls, DeployerError) and cls.__module__ == "deployer.errors"}
    assert set(defined) <= set(drawn), set(defined) - set(drawn)
    for name, cls in defined.items():
        parent = drawn[name]
        assert (parent is None) == (cls is DeployerError), name
        if parent is not None:
            assert cls.__bases__[0].__name__ == parent, (name, parent)


def test_one_class_per_condition_whatever_the_transport():
    assert smbconn.AuthenticationFailed is sshconn.SshAuthFailed is base.AuthenticationFailed is AuthenticationFailed
    assert sshconn.SshConnectError is ConnectFailed
    assert issubclass(ConnectFailed, ConnectionLost) and issubclass(ConnectionLost, NetworkError)
    assert issubclass(TransportTimeout, NetworkError)
    assert issubclass(sshconn.HostKeyUnknown, HostKeyError) and issubclass(sshconn.HostKeyChanged, HostKeyError)
    for name in ("NotFound", "PathNotFound", "AccessDenied", "SharingViolation", "DiskFull", "ServiceError",
                 "TargetError", "TransportTimeout", "ConnectionLost"):
        assert getattr(base, name) is getattr(errors, name)


@pytest.mark.parametrize("cls, code", [
    (InputError, 2), (errors.SetupError, 2), (errors.UnsupportedLibrary, 2), (TargetError, 1),
    (NetworkError, 1), (ConnectFailed, 1), (AuthenticationFailed, 2), (HostKeyError, 2),
    (errors.ApplyFailed, 1), (errors.VerificationMismatch, 3), (errors.RestoreFailed, 4),
])
def test_exit_codes_by_branch(cls, code):
    assert cls.exit_code == ExitCode(code)
    if issubclass(cls, RunOutcome):
        assert not issubclass(cls, TargetError)


def _refusing_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    return s, s.getsockname()[1]


def test_a_refused_connection_is_the_same_error_over_smb_and_over_ssh(sshd):
    s, port = _refusing_port()
    with s:
        link = SmbLink("SMBSRV", SmbOptions("127.0.0.1", port, "user", None, True, False), Secret("x"), timeout=5)
        try:
            with pytest.raises(ConnectFailed) as smb:
                with link.op("connect"):
                    pass
        finally:
            link.close()
        with pytest.raises(ConnectFailed) as ssh:
            sshd.connection(port=port).transport()
    for e in (smb.value, ssh.value):
        assert type(e) is ConnectFailed and e.winerror == 1225 and "refused" in str(e).lower()
        assert isinstance(e, ConnectionLost) and e.exit_code == ExitCode.FAILED_RESTORED

