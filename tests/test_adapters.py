"""The library adapters (deployer/targets/adapters/): each refuses an untested version of its
library with one clear error, at import, and nothing else in deployer reaches into the
libraries' internals."""

from __future__ import annotations

import importlib
import re
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, Workspace
from deployer.errors import ExitCode, SetupError, UnsupportedLibrary
from deployer.targets import adapters

ADAPTERS = {  # adapter module -> (distribution, versions outside its tested range)
    "deployer.targets.adapters.smbprotocol_internals": ("smbprotocol", ["1.18.0", "1.12.9", "2.0.0"]),
    "deployer.targets.adapters.paramiko_internals": ("paramiko", ["5.2.0", "6.0.0", "3.3.2", "2.12.0"]),
    "deployer.targets.adapters.impacket_internals": ("impacket", ["0.14.0", "0.12.0", "0.9.24", "1.0.0"]),
    "deployer.targets.adapters.impacket_scmr": ("impacket", ["0.14.0", "0.12.0", "0.9.24", "1.0.0"]),
    "deployer.targets.adapters.impacket_pipeline": ("impacket", ["0.14.0", "0.12.0", "0.9.24", "1.0.0"]),
}
# the name under which each adapter keeps the installed version it accepted
VERSION_ATTR = {"deployer.targets.adapters.impacket_internals": "IMPACKET_VERSION"}


def _accepted(adapter) -> str:
    return getattr(adapter, VERSION_ATTR.get(adapter.__name__, "VERSION"))


def test_every_adapter_module_is_covered():
    """An adapter added to deployer/targets/adapters/ is refused-version tested and pin-checked here too."""
    found = {f"deployer.targets.adapters.{p.stem}" for p in (ROOT / "deployer" / "targets" / "adapters").glob("*.py")
             if p.stem != "__init__"}
    assert found == set(ADAPTERS)


def _fresh_import(monkeypatch: pytest.MonkeyPatch, module: str):
    """Import `module` anew (the original comes back, in sys.modules and its package, after the test)."""
    short = module.rsplit(".", 1)[1]
    monkeypatch.setattr(adapters, short, getattr(adapters, short, None), raising=False)
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_an_untested_library_version_is_refused_at_import_with_the_tested_range(monkeypatch, module):
    distribution, untested = ADAPTERS[module]
    tested = str(importlib.import_module(module).TESTED)
    for version in untested:
        monkeypatch.setattr(adapters, "installed_version", lambda d, v=version: v if d == distribution else "0")
        with pytest.raises(UnsupportedLibrary) as e:
            _fresh_import(monkeypatch, module)
        err = e.value
        assert isinstance(err, SetupError) and err.exit_code == ExitCode.BAD_INPUT
        assert (err.distribution, err.installed, err.tested) == (distribution, version, tested)
        assert str(err).startswith(f"{distribution} {version} is installed, but deployer was tested with "
                                   f"{distribution} {tested} only (")
        assert str(err).endswith(f"Install a tested version: pip install '{distribution}{tested}'")


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_the_installed_version_and_the_edges_of_the_range_are_accepted(monkeypatch, module):
    distribution, _ = ADAPTERS[module]
    adapter = importlib.import_module(module)
    assert _accepted(adapter) == adapters.installed_version(distribution)
    low = ".".join(map(str, adapter.TESTED.lowest))
    last = f"{adapter.TESTED.below[0]}.{adapter.TESTED.below[1] - 1}.99"
    for version in (low, last, low + "rc1"):
        monkeypatch.setattr(adapters, "installed_version", lambda d, v=version: v)
        assert _accepted(_fresh_import(monkeypatch, module)) == version


def test_a_version_that_cannot_be_read_is_refused(monkeypatch):
    monkeypatch.setattr(adapters, "installed_version", lambda d: "unknown")
    with pytest.raises(UnsupportedLibrary, match="paramiko unknown is installed"):
        _fresh_import(monkeypatch, "deployer.targets.adapters.paramiko_internals")


def test_release_numbers():
    assert adapters.release("5.1.0") == (5, 1, 0)
    assert adapters.release("1.17") == (1, 17, 0)
    assert adapters.release("5.2.0rc1") == (5, 2, 0)
    assert adapters.release("3.4.0.post1") == (3, 4, 0)
    assert adapters.release("1.17.0.1") == (1, 17, 0, 1)
    assert adapters.release("dev") is None


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_the_pin_in_pyproject_is_the_adapters_tested_range(module):
    distribution, _ = ADAPTERS[module]
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d[len(distribution):] for d in deps if re.match(rf"{distribution}\b(?!-)", d)]
    assert pins == [str(importlib.import_module(module).TESTED)]


def test_no_module_outside_the_adapters_touches_the_libraries_internals():
    """The private names each adapter owns appear in no other module of deployer."""
    owned = [r"_t_exc\b", r"_check_worker_running\b", r"\._sock\b", r"_sock_lock\b", r"\bsequence_window\b",
             r"\bsequence_lock\b", r"\boutstanding_requests\b", r"\bsigning_required\s*=",
             r"\b_send_version\b", r"\b_convert_status\b", r"\b_async_request\b", r"\b_read_response\b",
             r"\b_async_response\b", r"\._request\(", r"\b_from_msg\b", r"\b_send_packet\b", r"\b_read_packet\b",
             r"Failed to connect", r"Connection timeout of ",
             # impacket's SMB1 signing state, negotiate answer and session (impacket_internals)
             r"\b_SignatureEnabled\b", r"\b_SignatureRequired\b", r"\b_SignSequenceNumber\b",
             r"\b_SigningSessionKey\b", r"\b_SigningChallengeResponse\b", r"\b_dialects_parameters\b",
             r"\._sess\b", r"\._uid\b"]
    offenders = []
    for path in sorted((ROOT / "deployer").rglob("*.py")):
        if path.parent.name == "adapters":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {p}" for p in owned if re.search(p, text)]
    assert offenders == []


def test_impacket_is_imported_by_its_adapter_only():
    """impacket is checked against its tested range when its adapter is imported: a module that
    imported impacket itself would bypass that check."""
    import ast

    offenders = []
    for path in sorted((ROOT / "deployer").rglob("*.py")):
        if path.parent.name == "adapters":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                          if n.split(".")[0] == "impacket"]
    assert offenders == []


# --- what a user sees ---------------------------------------------------------------------------------


def _ssh_site(ws: Workspace, tmp_path: Path) -> None:
    """DEMOSRV reached over SSH (at an address nothing listens on: the refusal comes first)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inv = yaml.safe_load(ws.inventory.read_text())
    ssh = {"transport": "ssh", "host": "127.0.0.1", "port": port, "username": "nobody",
           "key_file": str(tmp_path / "no-key"), "known_hosts": str(tmp_path / "known_hosts")}
    inv["sites"]["DEMO"]["servers"]["DEMOSRV"].update(
        files={**ssh, "root": str(ws.server("DEMOSRV"))}, services=ssh)
    ws.inventory.write_text(yaml.safe_dump(inv))


def _deployer_with(fake: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter whose package metadata reports `fake` versions."""
    code = ("import importlib.metadata as m, sys\n"
            f"fake = {fake!r}\n"
            "real = m.version\n"
            "m.version = lambda d: fake.get(d) or real(d)\n"
            "from deployer.cli import main\n"
            f"sys.argv = ['deployer', *{list(args)!r}]\n"
            "main()\n")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_cli_refuses_an_untested_paramiko_for_an_ssh_server_without_a_traceback(ws: Workspace, tmp_path):
    _ssh_site(ws, tmp_path)
    before = ws.state()
    r = _deployer_with({"paramiko": "6.0.0"}, "apply", str(ws.playbook), "--site", "DEMO", "--yes", cwd=ws.path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "paramiko 6.0.0 is installed, but deployer was tested with paramiko >=3.4,<5.2 only" in r.stderr
    assert "pip install 'paramiko>=3.4,<5.2'" in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert ws.state() == before


def test_an_untested_smbprotocol_does_not_stop_an_ssh_or_mock_site(ws: Workspace, tmp_path):
    r = _deployer_with({"smbprotocol": "1.18.0"}, "plan", str(ws.playbook), "--site", "DEMO", cwd=ws.path)
    assert r.returncode == 0, r.stdout + r.stderr
    _ssh_site(ws, tmp_path)
    r = _deployer_with({"smbprotocol": "1.18.0"}, "plan", str(ws.playbook), "--site", "DEMO", cwd=ws.path)
    assert "smbprotocol" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert r.returncode == 1 and "refused the connection" in r.stderr  # it got as far as connecting


# --- the internals are still there ------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"require_signing": False}])
def test_the_smb_fast_write_path_is_taken_with_the_installed_smbprotocol(samba, options):
    """A version that moved an internal would quietly fall back to the slow library path."""
    from servers.samba import SHARE

    from deployer.targets.adapters import smbprotocol_internals as internals
    from deployer.targets.smbfast import FastWriter

    link = samba.link(**options)
    try:
        with link.op("connect"):
            conn = link.connection
            assert internals.alive(conn) and internals.usable(conn)
            assert FastWriter.usable(link, link.tree(SHARE))
            assert internals.available_credits(conn) >= 512  # the window asked for at connect
    finally:
        link.close()
    assert not internals.alive(link._conn)


def test_the_sftp_hooks_work_with_the_installed_paramiko(sshd, tmp_path):
    """The server's extensions are read, an error keeps its SFTP status code, pipelined answers all come back."""
    from paramiko.sftp import CMD_LSTAT, SFTP_FLAG_CREATE, SFTP_FLAG_READ, SFTP_FLAG_WRITE, SFTP_NO_SUCH_FILE

    from deployer.targets.sftpsession import SftpSession, SftpStatusError

    conn = sshd.connection()
    try:
        chan = conn.open_channel("SFTP")
        chan.invoke_subsystem("sftp")
        sftp = SftpSession(chan)
        assert {"posix-rename@openssh.com", "fsync@openssh.com"} <= set(sftp.extensions)
        with pytest.raises(SftpStatusError) as e:
            sftp.request(CMD_LSTAT, str(tmp_path / "missing"))
        assert e.value.code == SFTP_NO_SUCH_FILE
        data = bytes(range(256)) * 4096 * 3  # 3 MiB: many requests in flight
        handle = sftp.open_handle(str(tmp_path / "f.bin"), SFTP_FLAG_CREATE | SFTP_FLAG_WRITE | SFTP_FLAG_READ)
        try:
            assert sftp.write_pipelined(handle, [data]) == len(data)
            assert sftp.fstat_handle(handle).st_size == len(data)
            assert b"".join(sftp.read_pipelined(handle, len(data), 1 << 20)) == data
        finally:
            sftp.close_handle(handle)
        sftp.close()
    finally:
        conn.close()
