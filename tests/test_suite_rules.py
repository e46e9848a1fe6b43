"""The suite's own rules, run on a small suite of their own (pytester) with this suite's
conftest: a secret leak found by an xdist worker fails the run, nothing is skipped in CI,
`full` matrices run only when asked, and each xdist worker has its own ports and folders."""

from __future__ import annotations

import shutil

import pytest

from conftest import ROOT

pytest_plugins = ["pytester"]

INI = """
[pytest]
addopts = -p no:cacheprovider
markers =
    slow: long
    full: every point of a matrix
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    """A suite with this one's conftest, leak check and server fixtures (no server is started)."""
    for name in ("conftest.py", "leakcheck.py"):
        shutil.copy(ROOT / "tests" / name, pytester.path / name)
    for folder in ("servers", "conformance"):
        shutil.copytree(ROOT / "tests" / folder, pytester.path / folder,
                        ignore=shutil.ignore_patterns("test_*.py", "conftest.py", "__pycache__"))
    pytester.makeini(INI)
    return pytester


LEAKING = """
import leakcheck

def test_leaks(tmp_path):
    pw = leakcheck.register("Leaked-" + "0123456789abcdef")
    (tmp_path / "report.txt").write_text("the password is " + pw)
"""

WHERE = """
import os
import pytest
from servers.ports import take

@pytest.mark.parametrize("i", range(6))
def test_where(i, tmp_path, worker_id):
    ports = take(3)
    with open(os.environ["WHERE_LOG"], "a") as fh:
        fh.write(f"{worker_id} {os.environ['XDG_STATE_HOME']} {tmp_path} {' '.join(map(str, ports))}\\n")
"""

FULL = """
import pytest

def test_sample():
    pass

@pytest.mark.full
def test_every_point():
    pass
"""

SKIPS = """
import pytest

@pytest.fixture
def server():
    pytest.skip("no such server")

def test_uses_a_server(server):
    pass

def test_skips_itself():
    pytest.skip("not here")

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False
"""


@pytest.mark.slow  # started first (tests/conftest.py)
def test_under_xdist_leaks_fail_the_run_and_workers_have_their_own_ports_and_folders(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """One run on two xdist workers (each nested run costs seconds of imports): a password one
    worker wrote to a file fails the whole run; the workers' ports and folders never meet; the
    full matrix is left out."""
    suite.makepyfile(test_leak=LEAKING, test_0where=WHERE, test_matrix=FULL)
    log = suite.path / "where.log"
    monkeypatch.setenv("WHERE_LOG", str(log))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("DEPLOYER_FULL_MATRIX", raising=False)
    # test_0where sorts first: xdist hands each worker its first tests from it, so both report
    r = suite.runpytest_subprocess("-n", "2", "--dist", "load")
    r.assert_outcomes(passed=8)  # 6 + leak + sample: test_every_point is not run (nor skipped)
    assert r.ret == pytest.ExitCode.TESTS_FAILED, r.stdout.str() + r.stderr.str()
    assert "SECRET LEAK" in r.stderr.str() and "report.txt" in r.stderr.str()

    rows = [line.split() for line in log.read_text().splitlines()]
    workers = {row[0] for row in rows}
    assert workers == {"gw0", "gw1"}, rows
    for w in workers:
        mine = [row for row in rows if row[0] == w]
        others = [row for row in rows if row[0] != w]
        assert {row[1] for row in mine}.isdisjoint(row[1] for row in others)  # XDG_STATE_HOME
        assert all(f"popen-{w}" in row[2] for row in mine)  # the worker's own temporary folder
    ports = [int(p) for row in rows for p in row[3:]]
    assert len(ports) == len(set(ports)) == 18  # never the same port twice, across workers
    assert all(p < 32768 for p in ports)  # below the ephemeral range: no outgoing connection takes one


def test_in_ci_a_skip_is_a_failure_and_the_full_matrix_runs_when_asked(suite: pytest.Pytester,
                                                                     monkeypatch: pytest.MonkeyPatch):
    suite.makepyfile(test_skips=SKIPS, test_matrix=FULL)
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("DEPLOYER_FULL_MATRIX", "1")
    r = suite.runpytest_subprocess("-v")
    r.assert_outcomes(passed=2, failed=1, errors=1, xfailed=1)
    out = r.stdout.str()
    assert "skipped in CI, where nothing may be skipped: no such server" in out
    assert "skipped in CI, where nothing may be skipped: not here" in out
    assert "test_every_point PASSED" in out


ORDER_A = """
def test_a_quick():
    pass
"""

ORDER_Z = """
import pytest

def test_z_quick():
    pass

@pytest.mark.slow
def test_z_long():
    pass
"""


def test_slow_tests_are_handed_out_first_and_the_rest_keep_file_order(suite: pytest.Pytester):
    """The order xdist hands tests out in: `slow` ones first (the long scenarios start early
    instead of running alone at the end), then the others as the files list them."""
    suite.makepyfile(test_a=ORDER_A, test_z=ORDER_Z)
    r = suite.runpytest_subprocess("-v")
    order = [line.split("::")[1].split()[0] for line in r.stdout.lines if "PASSED" in line and "::" in line]
    assert order == ["test_z_long", "test_a_quick", "test_z_quick"], r.stdout.str()
