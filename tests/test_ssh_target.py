"""The SSH transports' own behaviour: host keys, authentication, sc.exe's output, time limits,
and the SFTP details the conformance suite does not reach."""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import leakcheck
import paramiko
import pytest
import yaml
from conftest import Workspace
from servers.sshd import SshTestServer

from deployer.errors import ExitCode, InputError
from deployer.model.inventory import load_inventory
from deployer.targets import scexe
from deployer.targets.base import ConnectionLost, DiskFull, ServiceError, TargetError, TransportTimeout
from deployer.targets.connect import connect
from deployer.targets.sftp import SftpFiles
from deployer.targets.sftpsession import SftpSession
from deployer.targets.ssh import ScServices
from deployer.targets.sshconn import HostKeyChanged, HostKeyUnknown, SshAuthFailed, SshConnectError


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", str(path)], check=True,
                   capture_output=True)
    return path


def public_line(path: Path) -> tuple[str, str]:
    kind, b64 = path.with_suffix(".pub").read_text().split()[:2]
    return kind, b64


# --- host keys ------------------------------------------------------------------------------------


def test_an_unknown_host_key_is_refused_by_default_with_a_way_forward(sshd: SshTestServer, tmp_path: Path):
    known = tmp_path / "known_hosts"
    with pytest.raises(HostKeyUnknown) as e:
        sshd.connection(known_hosts=str(known)).transport()
    msg = str(e.value)
    assert sshd.host_key.fingerprint in msg  # what to compare with the server's administrator
    assert f"ssh-keyscan -p {sshd.port} -t ssh-ed25519 127.0.0.1 >> {known}" in msg
    assert "trust_on_first_use: true" in msg
    assert e.value.exit_code == ExitCode.BAD_INPUT  # nothing was touched
    assert not known.exists()


def test_trust_on_first_use_records_the_key_once(sshd: SshTestServer, tmp_path: Path):
    known = tmp_path / "new-dir" / "known_hosts"
    conn = sshd.connection(known_hosts=str(known), trust_on_first_use=True)
    assert conn.run("true")[0] == 0
    conn.close()
    line = f"[127.0.0.1]:{sshd.port} ssh-ed25519 {sshd.host_key.get_base64()}\n"
    assert known.read_text() == line
    assert stat.S_IMODE(known.stat().st_mode) == 0o600
    # now it is known: strict checking accepts it, and a second first use adds nothing
    sshd.connection(known_hosts=str(known)).transport()
    sshd.connection(known_hosts=str(known), trust_on_first_use=True).transport()
    assert known.read_text() == line


def test_a_changed_key_is_refused_even_with_trust_on_first_use(sshd: SshTestServer, tmp_path: Path):
    kind, other = public_line(keygen(tmp_path / "impostor"))
    known = tmp_path / "known_hosts"
    known.write_text(f"# kept as is\n[127.0.0.1]:{sshd.port} {kind} {other}\n")
    before = known.read_text()
    with pytest.raises(HostKeyChanged) as e:
        sshd.connection(known_hosts=str(known), trust_on_first_use=True).transport()
    msg = str(e.value)
    assert "has changed" in msg and sshd.host_key.fingerprint in msg
    assert "ssh-keygen -R" in msg and "trust_on_first_use never replaces a recorded key" in msg
    assert known.read_text() == before


def test_a_recorded_key_of_another_type_counts_as_changed(sshd: SshTestServer, tmp_path: Path):
    kind, other = public_line(keygen(tmp_path / "ecdsa", "ecdsa"))
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {kind} {other}\n")
    with pytest.raises(HostKeyChanged):
        sshd.connection(known_hosts=str(known), trust_on_first_use=True).transport()


def test_hashed_entries_are_understood_and_revoked_keys_refused(sshd: SshTestServer, tmp_path: Path):
    name = f"[127.0.0.1]:{sshd.port}"
    entry = f"{paramiko.HostKeys.hash_host(name)} ssh-ed25519 {sshd.host_key.get_base64()}\n"
    known = tmp_path / "known_hosts"
    known.write_text(entry)
    sshd.connection(known_hosts=str(known)).transport()  # `ssh-keygen -H` style entries work
    known.write_text(entry + f"@revoked * ssh-ed25519 {sshd.host_key.get_base64()}\n")
    with pytest.raises(HostKeyChanged, match="@revoked"):
        sshd.connection(known_hosts=str(known)).transport()


# --- authentication -------------------------------------------------------------------------------


def ssh_site(ws: Workspace, sshd: SshTestServer, **auth: object) -> Path:
    conn = {**sshd.settings("DEMOSRV"), "key_file": None, **auth}
    inv = {"sites": {"SSHAUTH": {"code": "DMO", "servers": {"DEMOSRV": {
        "role": "site_server", "platform": "x86",
        "files": {"transport": "ssh", "root": str(ws.server("DEMOSRV")), **conn},
        "services": {"transport": "ssh", **conn}}}}}}
    path = ws.path / "ssh-auth.yaml"
    path.write_text(yaml.safe_dump(inv))
    return path


def test_a_wrong_password_fails_without_showing_it(ws: Workspace, sshd: SshTestServer, monkeypatch, caplog):
    password = leakcheck.register(f"wrong-{uuid.uuid4().hex}")
    monkeypatch.setenv("DEPLOYER_TEST_SSH_PASSWORD", password)
    inventory = ssh_site(ws, sshd, password={"env": "DEPLOYER_TEST_SSH_PASSWORD"})
    caplog.set_level(logging.DEBUG)
    with connect(load_inventory(inventory).site("SSHAUTH")) as conn, pytest.raises(SshAuthFailed) as e:
        conn.site_server.files.stat("Site.srv")
    msg = str(e.value)
    assert f"authentication as {sshd.user}@127.0.0.1:{sshd.ports['DEMOSRV']} failed with password" in msg
    assert "environment variable DEPLOYER_TEST_SSH_PASSWORD" in msg
    assert password not in msg and password not in caplog.text
    # and through the CLI: exit 2 (nothing touched); leakcheck scans its output at the end
    r = ws.cli("verify", ws.path / "manifests" / "q241656.yaml", "--site", "SSHAUTH", "-i", inventory)
    assert r.code == 2, r.text
    assert "authentication" in r.text and password not in r.text


def test_a_key_the_server_does_not_know_is_named_in_the_failure(sshd: SshTestServer, tmp_path: Path):
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(SshAuthFailed, match=f"key file {stranger}"):
        sshd.connection(key_file=str(stranger)).transport()


def test_an_encrypted_key_without_its_passphrase_is_bad_input(sshd: SshTestServer, tmp_path: Path):
    locked = keygen(tmp_path / "locked", passphrase="correct horse battery")
    with pytest.raises(InputError, match="is encrypted"):
        sshd.connection(key_file=str(locked)).transport()


def test_no_credentials_at_all_is_bad_input(sshd: SshTestServer):
    with pytest.raises(InputError, match="give key_file:, password: or allow_agent: true"):
        sshd.connection(key_file=None)


def test_files_and_services_of_a_server_share_one_connection(ws: Workspace, sshd: SshTestServer):
    inventory = ssh_site(ws, sshd, key_file=str(sshd.client_key))
    sshd.serve_site(ws.site)
    with connect(load_inventory(inventory).site("SSHAUTH")) as conn:
        ep = conn.site_server
        assert ep.files.conn is ep.services.conn  # type: ignore[attr-defined]
        assert ep.files.stat("SITE.SRV").is_dir
        assert ep.services.query("SMS_EXECUTIVE").state == "running"
        assert ep.files.conn.generation == 1  # type: ignore[attr-defined]


# --- sc.exe's output --------------------------------------------------------------------------------

CRLF = "\r\n"
QUERY_RUNNING = CRLF.join([
    "", "SERVICE_NAME: SMS_EXECUTIVE",
    "        TYPE               : 10  WIN32_OWN_PROCESS  ",
    "        STATE              : 4  RUNNING ",
    "                                (STOPPABLE, NOT_PAUSABLE, ACCEPTS_SHUTDOWN)",
    "        WIN32_EXIT_CODE    : 0  (0x0)",
    "        SERVICE_EXIT_CODE  : 0  (0x0)",
    "        CHECKPOINT         : 0x0",
    "        WAIT_HINT          : 0x0", ""])
QUERY_STOPPED = CRLF.join([
    "", "SERVICE_NAME: SMS_EXECUTIVE",
    "        TYPE               : 10  WIN32_OWN_PROCESS  ",
    "        STATE              : 1  STOPPED ",
    "        WIN32_EXIT_CODE    : 1077  (0x435)",
    "        SERVICE_EXIT_CODE  : 0  (0x0)",
    "        CHECKPOINT         : 0x0",
    "        WAIT_HINT          : 0x0", ""])
START_PENDING = CRLF.join([
    "", "SERVICE_NAME: SMS_EXECUTIVE",
    "        TYPE               : 10  WIN32_OWN_PROCESS  ",
    "        STATE              : 2  START_PENDING ",
    "                                (NOT_STOPPABLE, NOT_PAUSABLE, IGNORES_SHUTDOWN)",
    "        WIN32_EXIT_CODE    : 0  (0x0)",
    "        SERVICE_EXIT_CODE  : 0  (0x0)",
    "        CHECKPOINT         : 0x0",
    "        WAIT_HINT          : 0x7d0",
    "        PID                : 2312",
    "        FLAGS              : ", ""])


def failure(api: str, code: int, text: str, word: str = "FAILED") -> str:
    return f"[SC] {api} {word} {code}:{CRLF}{CRLF}{text}{CRLF}{CRLF}"


def test_status_blocks_are_read_from_the_labels_and_numbers():
    running = scexe.parse_status(QUERY_RUNNING)
    assert (running.name, running.state, running.flags[0]) == ("SMS_EXECUTIVE", "running", "STOPPABLE")
    assert running.to_status().accepts_stop
    stopped = scexe.parse_status(QUERY_STOPPED)
    assert stopped.state == "stopped" and stopped.flags == () and stopped.win32_exit_code == 1077
    assert not stopped.to_status().accepts_stop
    pending = scexe.parse_status(START_PENDING)
    assert pending.state == "start_pending" and pending.wait_hint_ms == 2000
    assert pending.to_status().extra["pid"] == "2312"
    assert scexe.parse_status("") is None and scexe.parse_status("SERVICE_NAME: X\r\n") is None


@pytest.mark.parametrize("output, code, meaning", [
    (failure("EnumQueryServicesStatus:OpenService", 1060, "The specified service does not exist as an installed "
             "service."), 1060, "does not exist as an installed service"),
    (failure("OpenService", 1060, "The specified service does not exist as an installed service."), 1060,
     "does not exist as an installed service"),
    (failure("ControlService", 1062, "The service has not been started."), 1062, "has not been started"),
    (failure("StartService", 1056, "An instance of the service is already running."), 1056, "already running"),
    (failure("ControlService", 1052, "The requested control is not valid for this service."), 1052,
     "not valid for this service"),
    (failure("ControlService", 87, "The parameter is incorrect."), 87, "parameter is incorrect"),
    (failure("OpenSCManager", 5, "Access is denied."), 5, "access denied"),
    # a German server: the word and the text are translated, the code is not
    (failure("OpenService", 1060, "Der angegebene Dienst ist kein installierter Dienst.", "FEHLER"), 1060,
     "does not exist as an installed service"),
    # a code deployer has no sentence for: sc.exe's own text is used
    (failure("StartService", 2, "The system cannot find the file specified."), 2,
     "The system cannot find the file specified"),
])
def test_sc_failures_become_service_errors_with_the_windows_code(output: str, code: int, meaning: str):
    assert scexe.parse_failure(output).code == code
    with pytest.raises(ServiceError) as e:
        scexe.result(output, code, "SMS_EXECUTIVE", "DEMOSRV", "stop", "sc.exe stop SMS_EXECUTIVE")
    assert e.value.winerror == code
    assert meaning in str(e.value) and "SMS_EXECUTIVE" in str(e.value) and "DEMOSRV" in str(e.value)


def test_a_missing_sc_command_says_what_to_configure():
    out = "'sc.exe' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    with pytest.raises(TargetError, match=r"set services: \{sc: \.\.\.\}") as e:
        scexe.result(out, 9009, "SMS_EXECUTIVE", "DEMOSRV", "query", "sc.exe query SMS_EXECUTIVE")
    assert not isinstance(e.value, ServiceError)


@pytest.mark.parametrize("name", ["A&B", "two words", "$(reboot)", "a;b", "-h", ".hidden", "", 'q"uote', "a|b",
                                  "%PATH%", "a^b", "MSSQL$SQLEXPRESS", "x" * 257])
def test_service_names_that_a_shell_could_read_differently_are_refused(name: str):
    with pytest.raises(InputError, match="cannot be passed to sc.exe safely"):
        scexe.command("sc.exe", "query", name)


def test_command_lines():
    assert scexe.command("sc.exe", "control", "SMS_SITE_CONFIG_MANAGER", 194) == \
        "sc.exe control SMS_SITE_CONFIG_MANAGER 194"
    assert scexe.command(r"C:\Windows\System32\sc.exe", "query", "W3SVC.x-1") == \
        r"C:\Windows\System32\sc.exe query W3SVC.x-1"


class ScriptedSc:
    """A connection whose sc.exe answers from a script: (exit code, output) per command."""

    def __init__(self, *answers: tuple[int, str] | str):
        self.answers = [a if isinstance(a, tuple) else (0, a) for a in answers]
        self.lines: list[str] = []

    def run(self, line: str, timeout: float | None = None) -> tuple[int, str]:
        self.lines.append(line)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def block(state: str, number: int, exit_code: int = 0) -> str:
    return QUERY_RUNNING.replace("4  RUNNING", f"{number}  {state}").replace(
        "WIN32_EXIT_CODE    : 0  (0x0)", f"WIN32_EXIT_CODE    : {exit_code}  (0x{exit_code:x})")


def test_stop_polls_until_the_service_has_stopped():
    sc = ScriptedSc(block("STOP_PENDING", 3), block("STOP_PENDING", 3), block("STOPPED", 1))
    assert ScServices("DEMOSRV", sc).stop("SMS_EXECUTIVE", 10).state == "stopped"  # type: ignore[arg-type]
    assert sc.lines == ["sc.exe stop SMS_EXECUTIVE", "sc.exe query SMS_EXECUTIVE", "sc.exe query SMS_EXECUTIVE"]


def test_a_service_that_dies_while_starting_reports_its_exit_code():
    sc = ScriptedSc(START_PENDING, block("STOPPED", 1, exit_code=1067))
    with pytest.raises(ServiceError) as e:
        ScServices("DEMOSRV", sc).start("SMS_EXECUTIVE", 10)  # type: ignore[arg-type]
    assert e.value.winerror == 1067 and "stopped while starting" in str(e.value)


def test_a_service_that_never_stops_times_out_with_1053():
    sc = ScriptedSc(block("STOP_PENDING", 3))
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as e:
        ScServices("DEMOSRV", sc).stop("SMS_EXECUTIVE", 0.3)  # type: ignore[arg-type]
    assert e.value.winerror == 1053 and "still stop_pending after 0.3 s" in str(e.value)
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("code", [1, 127, 256])
def test_only_user_defined_codes_are_sent(code: int):
    sc = ScriptedSc(QUERY_RUNNING)
    with pytest.raises(ServiceError) as e:
        ScServices("DEMOSRV", sc).control("SMS_EXECUTIVE", code)  # type: ignore[arg-type]
    assert e.value.winerror == 87 and sc.lines == []


# --- time limits --------------------------------------------------------------------------------------


def test_a_server_that_never_says_hello_times_out(sshd: SshTestServer):
    with socket.socket() as silent:  # accepts TCP connections (backlog) and never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        conn = sshd.connection(port=silent.getsockname()[1], timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(TransportTimeout, match="within 0.5 s"):
            conn.transport()
        assert time.monotonic() - t0 < 3


def test_a_refused_connection_says_so(sshd: SshTestServer):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(SshConnectError, match="refused the connection") as e:
            sshd.connection(port=port).transport()
    assert e.value.winerror == 1225


def test_a_command_that_never_finishes_times_out(sshd: SshTestServer, tmp_path: Path):
    # prints forever (so only the overall limit can stop it) and ends itself on the next
    # write once the channel is gone
    forever = tmp_path / "sc-forever"
    forever.write_text("#!/bin/sh\nwhile :; do echo waiting; sleep 0.1; done\n")
    forever.chmod(0o755)
    conn = sshd.connection("TESTSRV", timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(TransportTimeout, match="did not finish within 0.5 s|not finished within 0.5 s"):
        ScServices("TESTSRV", conn, str(forever)).query("SMS_EXECUTIVE")
    assert time.monotonic() - t0 < 3
    assert conn.run("echo still here")[1].strip() == "still here"  # the connection survives
    conn.close()


def test_a_connection_lost_during_a_command_is_a_lost_connection_not_an_exit_code(sshd: SshTestServer):
    """The server's end of the connection killed while a command runs (here by the command
    itself): no exit status comes, which is a lost connection (the command may or may not have
    run), not sc.exe's failure with exit code -1; whether the exec was confirmed (the first on a
    connection) or sent without asking (the later ones). A command killed on a live connection
    still answers with its code."""
    conn = sshd.connection("TESTSRV", timeout=5)
    try:
        for _ in range(2):
            with pytest.raises(ConnectionLost, match="was lost before the command ended"):
                conn.run("kill -9 $PPID")  # the first exec on this connection: confirmed
            assert conn.run("echo again") == (0, "again\n")  # reconnected
            with pytest.raises(ConnectionLost, match="was lost before the command ended"):
                conn.run("kill -9 $PPID")  # a later exec: sent without asking
            assert conn.run("true")[0] == 0
            assert conn.run("kill -9 $$") == (-1, "")  # the command killed, the connection alive
    finally:
        conn.close()


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def test_a_stalled_sftp_server_times_out_and_the_next_call_recovers(sshd: SshTestServer, tmp_path: Path):
    conn = sshd.connection(timeout=0.5)
    files = SftpFiles("SSHTEST", conn, str(tmp_path))
    files.write_file("BASE.DLL", [b"MZ"])
    # freeze the sshd processes serving this connection (children of our sshd) for a moment
    frozen = _descendants(sshd.pid)
    assert frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(TransportTimeout):
            files.stat("BASE.DLL")
        assert time.monotonic() - t0 < 3
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert files.stat("BASE.DLL").size == 2  # a new SFTP session on the same connection
    conn.close()


def test_a_dropped_connection_is_made_again(sshd: SshTestServer, tmp_path: Path):
    conn = sshd.connection()
    files = SftpFiles("SSHTEST", conn, str(tmp_path))
    files.write_file("A.DLL", [b"a"])
    conn.transport().close()  # the network goes away between two calls
    assert files.stat("a.dll").name == "A.DLL"
    assert conn.generation == 2
    conn.close()


# --- SFTP details -----------------------------------------------------------------------------------


def test_errors_of_pipelined_writes_are_not_lost(sshd: SshTestServer, monkeypatch):
    # /dev/full fails every write with ENOSPC; paramiko's SFTPFile.set_pipelined would close it
    # without an error
    conn = sshd.connection()
    dev = SftpFiles("SSHTEST", conn, "/dev")
    with pytest.raises(TargetError, match="failure") as e:
        dev.write_file("full", [b"x" * (1 << 20)])
    assert not isinstance(e.value, DiskFull)  # /dev itself has room: not called a full disk
    monkeypatch.setattr(SftpSession, "free_bytes", lambda self, path: 0)
    with pytest.raises(DiskFull) as e:
        dev.write_file("full", [b"x" * (1 << 20)])
    assert e.value.winerror == 112 and "not enough space" in str(e.value)
    conn.close()


def test_replace_and_copy_without_openssh_extensions(sshd: SshTestServer, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(SftpSession, "offers", lambda self, ext: False)  # a bare SFTP version 3 server
    conn = sshd.connection()
    files = SftpFiles("SSHTEST", conn, str(tmp_path))
    files.write_file("BASE.DLL", [b"old"])
    files.write_file("BASE.DLL.~new", [b"new" * 100_000])
    files.set_mtime("BASE.DLL.~new", 937_015_200 * 10**9)
    files.rename("base.dll.~new", "Base.dll", replace=True)  # two renames instead of one
    assert sorted(os.listdir(tmp_path)) == ["BASE.DLL"]
    assert (tmp_path / "BASE.DLL").read_bytes() == b"new" * 100_000
    files.copy("BASE.DLL", "COPY.DLL")  # streamed through deployer instead of copy-data
    assert (tmp_path / "COPY.DLL").read_bytes() == b"new" * 100_000
    assert (tmp_path / "COPY.DLL").stat().st_mtime_ns == 937_015_200 * 10**9
    conn.close()


def test_names_remembered_from_a_listing_are_checked_again(sshd: SshTestServer, tmp_path: Path):
    conn = sshd.connection()
    files = SftpFiles("SSHTEST", conn, str(tmp_path))
    files.write_file("BASE.DLL", [b"x"])
    assert files.stat("base.dll").name == "BASE.DLL"
    os.rename(tmp_path / "BASE.DLL", tmp_path / "Base.Dll")  # renamed behind deployer's back
    assert files.stat("base.dll").name == "Base.Dll"
    os.remove(tmp_path / "Base.Dll")
    assert files.stat("base.dll") is None
    assert not files.folds_case()  # a Linux host: the listing does the matching
    conn.close()


def test_an_sc_exe_command_costs_one_round_trip_once_the_server_has_accepted_an_exec(ws: Workspace,
                                                                                    sshd: SshTestServer,
                                                                                    tmp_path: Path,
                                                                                    monkeypatch):
    """Counted, never timed. The first command of a connection opens its channel and asks the
    server to confirm its exec (a server that refuses one says so only when asked): three round
    trips. After it, each command's channel was opened ahead, in the background, and its exec
    goes out without waiting for a confirmation: deployer waits once, for the output (was: open,
    exec confirmed, output: three each). On the wire (a proxy's turns) each command is then the
    open answered in the background and the output: two turns, one of them overlapped."""
    from servers.delay_proxy import DelayProxy

    from deployer.targets import sshconn
    from deployer.targets.ssh import ScServices

    opened_by: list[str] = []
    real_open = sshconn.SshConnection.open_channel

    def open_channel(self, what):
        import threading

        opened_by.append(threading.current_thread().name)
        return real_open(self, what)

    monkeypatch.setattr(sshconn.SshConnection, "open_channel", open_channel)
    sshd.serve_site(ws.site)
    proxy = DelayProxy(sshd.port, delay=0.001).start()
    conn = sshd.connection(port=proxy.port, trust_on_first_use=True, known_hosts=str(tmp_path / "known_hosts"))
    try:
        services = ScServices("SSHTEST", conn)
        assert services.query("SMS_EXECUTIVE").state == "running"  # connects; the exec confirmed once
        rt = sum(t.round_trips for t in conn.meter.by_server.values())
        before = proxy.stats().turns
        for _ in range(4):
            conn._spare[1].result(timeout=10)  # the engine did something else meanwhile: the open is answered
            assert services.query("SMS_EXECUTIVE").state == "running"
        conn._spare[1].result(timeout=10)
        with pytest.raises(ServiceError) as e:
            services.query("NO_SUCH_SERVICE")  # a failure is still read from the output
        assert e.value.winerror == 1060
        turns = proxy.stats().turns - before
        waited = sum(t.round_trips for t in conn.meter.by_server.values()) - rt
    finally:
        conn.close()
        proxy.stop()
    print("five sc.exe commands:", waited, "round trips waited for,", turns, "turns")
    main = [name for name in opened_by if not name.startswith("ssh-channel-ahead")]
    assert len(main) == 1, opened_by  # only the first command's channel was opened while deployer waited
    assert waited == 5, waited
    assert turns <= 5 * 2, turns


def test_a_channel_opened_ahead_never_outlives_its_connection(ws: Workspace, sshd: SshTestServer, tmp_path: Path):
    """The channel opened ahead for the next sc.exe command belongs to its connection: a link cut
    meanwhile makes the next command reconnect (as before, once), and a connection closed meanwhile
    is not opened again from the background."""
    from servers.delay_proxy import DelayProxy

    from deployer.targets.ssh import ScServices

    sshd.serve_site(ws.site)
    proxy = DelayProxy(sshd.port, delay=0.001).start()
    conn = sshd.connection(port=proxy.port, trust_on_first_use=True, known_hosts=str(tmp_path / "known_hosts"))
    try:
        services = ScServices("SSHTEST", conn)
        assert services.query("SMS_EXECUTIVE").state == "running"
        conn._spare[1].result(timeout=10)
        proxy.cut_after(0, stay_down=False)  # the next byte to the server cuts the link; it comes back
        conn.transport().send_ignore()  # a byte goes out: the link is cut under the spare channel
        deadline = time.monotonic() + 10
        while conn._transport is not None and conn._transport.is_active() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert services.query("SMS_EXECUTIVE").state == "running"  # reconnected, on a new channel
        assert (proxy.cuts, conn.generation) == (1, 2)
        conn._spare[1].result(timeout=10)
        conn.close()
        ahead = conn._spare
        assert ahead is None and conn._transport is None
        services_after = proxy.stats().connections
        conn._open_ahead()  # as a command ending just as the site closes would
        with pytest.raises(TargetError):
            conn._spare[1].result(timeout=10)
        assert conn._transport is None and proxy.stats().connections == services_after  # nothing reopened
    finally:
        conn.close()
        proxy.stop()
