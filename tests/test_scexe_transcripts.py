"""deployer's sc.exe parser (targets/scexe.py) against published sc.exe output, and the SSH
suite's stand-in sc.exe (tests/fakes/sc.exe) against the same transcripts, line by line.

The transcripts (tests/data/scexe/, sources in its README) are what Windows printed, copied
as published; the stand-in must print the same lines with the same spacing for the same
outcome, so that what the SSH suite proves about deployer's handling of its output holds for
the real sc.exe."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from deployer.targets import scexe
from deployer.targets.base import ServiceError
from deployer.targets.ssh import ScServices
from servers.mock_target import make_mock_server

DATA = ROOT / "tests" / "data" / "scexe"
STAND_IN = ROOT / "tests" / "fakes" / "sc.exe"


def transcript(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def as_sent(text: str) -> list[str]:
    """The transcript as sc.exe sends it (CRLF line ends) and as published (LF)."""
    return [text, text.replace("\n", "\r\n")]


# --- the parser reads every transcript -----------------------------------------------------------

# file: (service, state, pid, win32 exit code, service exit code, wait hint ms, accepts stop)
STATUS = {
    "query-running-sshd.txt": ("sshd", "running", None, 0, 0, 0, True),
    "query-stopped-sshd.txt": ("sshd", "stopped", None, 1077, 0, 0, False),
    "query-stopped-trailing-spaces.txt": ("seclogon", "stopped", None, 1077, 0, 0, False),
    "start-pending-sshd.txt": ("sshd", "start_pending", 8240, 0, 0, 300, False),
    "start-pending-trailing-spaces.txt": ("AdvancedSystemCareService9", "start_pending", 2876, 0, 0, 2000, False),
    "start-pending-w32time.txt": ("w32time", "start_pending", 964, 0, 0, 2000, False),
    "start-pending-cloudflared.txt": ("cloudflared", "start_pending", 3548, 0, 0, 2000, False),
    "start-running-remote.txt": ("letmepwn", "running", 4516, 0, 0, 0, True),
    "stop-pending.txt": ("SystemExplorerHelpService", "stop_pending", None, 0, 0, 5000, True),
}

# file: (API as printed, Win32 code, a word of the message)
FAILURES = {
    "query-1060.txt": ("EnumQueryServicesStatus:OpenService", 1060, "does not exist"),
    "query-1060-zh-CN.txt": ("EnumQueryServicesStatus:OpenService", 1060, "指定的服务未安装"),
    "query-5.txt": ("EnumQueryServicesStatus:OpenService", 5, "Access is denied"),
    "start-1060.txt": ("StartService: OpenService", 1060, "does not exist"),
    "start-1060-learn-microsoft.txt": ("StartService: OpenService", 1060, "does not exist"),
    "start-1053.txt": ("StartService", 1053, "timely fashion"),
    "start-1056.txt": ("StartService", 1056, ""),
    "stop-1060.txt": ("OpenService", 1060, "does not exist"),
    "stop-1062.txt": ("ControlService", 1062, "has not been started"),
    "stop-1052.txt": ("ControlService", 1052, "not valid for this service"),
}


def test_every_transcript_is_listed_once():
    assert sorted(p.name for p in DATA.glob("*.txt")) == sorted([*STATUS, *FAILURES])
    readme = (DATA / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in [*STATUS, *FAILURES])  # each has its source


@pytest.mark.parametrize("name", sorted(STATUS))
def test_the_parser_reads_each_published_status_block(name: str):
    service, state, pid, exit_code, service_exit, wait_hint, accepts_stop = STATUS[name]
    for text in as_sent(transcript(name)):
        assert scexe.parse_failure(text) is None
        status = scexe.result(text, 0, service, "SRV", "query", "sc.exe query " + service)
        assert status is not None
        assert (status.name, status.state, status.pid) == (service, state, pid)
        assert (status.win32_exit_code, status.service_exit_code, status.wait_hint_ms) == \
            (exit_code, service_exit, wait_hint)
        assert status.to_status().accepts_stop is accepts_stop
        assert status.to_status().name == service  # no trailing space kept from the name line


@pytest.mark.parametrize("name", sorted(FAILURES))
def test_the_parser_reads_each_published_failure_with_its_windows_code(name: str):
    api, code, words = FAILURES[name]
    for text in as_sent(transcript(name)):
        failure = scexe.parse_failure(text)
        assert failure is not None, text
        assert (failure.api, failure.code) == (api, code)
        assert words in failure.message
        # sc.exe exits with the code; a POSIX shell in between keeps its low 8 bits (1056 -> 32):
        # the error is the same either way, read from the text
        for exit_status in (code, code & 0xFF):
            with pytest.raises(ServiceError) as e:
                scexe.result(text, exit_status, "SVC", "SRV", "stop", "sc.exe stop SVC")
            assert e.value.winerror == code


def test_a_failure_in_the_servers_oem_code_page_is_read_by_its_code():
    """Windows' OpenSSH passes sc.exe's bytes through: a Chinese server's are GBK, which the
    SSH transport decodes as UTF-8 with replacement; the code is still read."""
    raw = transcript("query-1060-zh-CN.txt").replace("\n", "\r\n").encode("gbk")
    failure = scexe.parse_failure(raw.decode("utf-8", errors="replace"))
    assert failure is not None and failure.code == 1060


class Answers:
    """A connection whose commands print given outputs: (exit status, output) in turn."""

    def __init__(self, *answers: tuple[int, str]):
        self.answers = list(answers)

    def run(self, line: str, timeout: float | None = None) -> tuple[int, str]:
        return self.answers.pop(0)


def test_a_start_of_a_missing_service_over_ssh_is_error_1060_not_an_unknown_failure():
    """`sc start` of a missing service names two APIs ("StartService: OpenService"): it is the
    same ServiceError as a query's 1060, whatever low bits the exit status kept."""
    services = ScServices("SRV", Answers((1060 & 0xFF, transcript("start-1060.txt").replace("\n", "\r\n"))))
    with pytest.raises(ServiceError) as e:
        services.start("NOSUCH", 5)  # type: ignore[arg-type]
    assert e.value.winerror == 1060 and "does not exist" in str(e.value)


# --- the stand-in prints what sc.exe prints --------------------------------------------------------

FIELD = re.compile(r"^ {8}(?P<key>[A-Z][A-Z0-9_]*) *:( |$)")
VALUES = {  # what follows "KEY : " on Windows
    "TYPE": r"[0-9a-f]+  [A-Z0-9_]+( +\(interactive\))?", "STATE": r"\d  [A-Z_]+",
    "WIN32_EXIT_CODE": r"\d+  \(0x[0-9a-f]+\)", "SERVICE_EXIT_CODE": r"\d+  \(0x[0-9a-f]+\)",
    "CHECKPOINT": r"0x[0-9a-f]+", "WAIT_HINT": r"0x[0-9a-f]+", "PID": r"\d+", "FLAGS": r"",
}


def shape(text: str) -> list[tuple[str, ...]]:
    """Each line's kind and layout: labels in their columns (the colon at column 27), the flags
    line at column 32, values in Windows' form; trailing blank lines dropped."""
    out: list[tuple[str, ...]] = []
    for line in text.replace("\r\n", "\n").rstrip("\n").split("\n"):
        bare = line.rstrip(" ")
        if not bare:
            out.append(("blank",))
        elif m := re.fullmatch(r"SERVICE_NAME: \S+", bare):
            out.append(("name",))
        elif m := FIELD.match(line):
            key = m.group("key")
            assert line.index(":") == 27, f"{key}: the colon is not in sc.exe's column: {line!r}"
            assert re.fullmatch(VALUES[key], bare[29:]), f"{key}: not Windows' form: {line!r}"
            out.append(("field", key))
        elif re.fullmatch(r" {32}\([A-Z_]+(, [A-Z_]+)*\)", bare):
            out.append(("flags",))
        elif m := re.fullmatch(r"\[SC\] (?P<api>.+) FAILED (?P<code>\d+):", bare):
            out.append(("failed", m.group("api"), m.group("code")))
        else:
            out.append(("text",))
    return out


def trailing(text: str) -> dict[str, str]:
    """The spaces each kind of line ends with (sc.exe's own: `STATE : 4  RUNNING `)."""
    spaces: dict[str, str] = {}
    for line in text.replace("\r\n", "\n").split("\n"):
        kind = "SERVICE_NAME" if line.startswith("SERVICE_NAME:") else (m.group("key") if (m := FIELD.match(line))
                                                                      else None)
        if kind:
            spaces[kind] = line[len(line.rstrip(" ")):]
    return spaces


# Transcripts published with their trailing spaces (most copies lose them): the spacing rules
KEPT_SPACES = ["query-stopped-trailing-spaces.txt", "start-pending-trailing-spaces.txt",
               "start-running-remote.txt"]


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory):
    """Runs the stand-in sc.exe on a one-server mock site, as the test sshd does."""
    site = make_mock_server(tmp_path_factory.mktemp("scexe") / "site")
    env = {**os.environ, "DEPLOYER_FAKE_SC_SITE": str(site.root)}

    def run(*args: str) -> tuple[int, str]:
        proc = subprocess.run([sys.executable, str(STAND_IN), *args], env=env, capture_output=True, timeout=60)
        assert b"\r\n" in proc.stdout and b"\n" not in proc.stdout.replace(b"\r\n", b"")  # CRLF only
        return proc.returncode, proc.stdout.decode("ascii")

    return run


def test_the_stand_in_prints_the_lines_sc_exe_prints_for_each_outcome(stand_in):
    """One walk through a service's life on the stand-in, each output compared with a published
    transcript of the same command and outcome: the same lines in the same order and columns,
    values in the same form, and the same trailing spaces as transcripts that kept them."""
    svc = "SMS_SITE_CONFIG_MANAGER"
    walk = [  # (arguments, the transcript of the same outcome)
        (("query", svc), "query-running-sshd.txt"),
        (("stop", svc), "stop-pending.txt"),
        (("query", svc), "query-stopped-sshd.txt"),
        (("stop", svc), "stop-1062.txt"),
        (("start", svc), "start-pending-sshd.txt"),
        (("start", svc), "start-1056.txt"),
        (("control", svc, "131"), "stop-1052.txt"),  # a code the service does not accept
        (("query", "NOSUCH"), "query-1060.txt"),
        (("start", "NOSUCH"), "start-1060.txt"),
        (("stop", "NOSUCH"), "stop-1060.txt"),
    ]
    for args, name in walk:
        code, out = stand_in(*args)
        real = transcript(name)
        got, want = shape(out), shape(real)
        if want[0] != ("blank",) and got[0] == ("blank",) and want[0] == ("name",):
            want = [("blank",), *want]  # a page that dropped the first blank line
        if name == "start-1056.txt":  # published as its first line only
            got = got[:1]
        assert got == want, (args, name, out)
        if want[0][0] == "failed":
            assert code == int(want[0][2]) & 0xFF  # the Win32 code, as Linux keeps it
            assert scexe.parse_failure(out).message.split()[:3] == \
                scexe.parse_failure(real).message.split()[:3] or name == "start-1056.txt"
        else:
            assert code == 0
            rules = spacing_rules()
            assert {k: v for k, v in trailing(out).items() if k in rules} == \
                {k: rules[k] for k in trailing(out) if k in rules}, (args, out)


def spacing_rules() -> dict[str, str]:
    """The trailing spaces of each label, from the transcripts that kept theirs; where two print
    the same label they must end it alike (the rule is Windows', not one page's). A TYPE line
    that goes on with "(interactive)" says nothing about TYPE's own trailing spaces."""
    rules: dict[str, set[str]] = {}
    for name in KEPT_SPACES:
        text = transcript(name)
        for key, spaces in trailing(text).items():
            if key != "TYPE" or "(interactive)" not in text:
                rules.setdefault(key, set()).add(spaces)
    assert all(len(v) == 1 for v in rules.values()), rules
    return {k: next(iter(v)) for k, v in rules.items()}


def test_the_transcripts_that_kept_their_spaces_agree_on_the_rules():
    assert spacing_rules() == {"SERVICE_NAME": " ", "TYPE": "  ", "STATE": " ", "WIN32_EXIT_CODE": "",
                               "SERVICE_EXIT_CODE": "", "CHECKPOINT": "", "WAIT_HINT": "", "PID": "",
                               "FLAGS": " "}
