"""Shared fixtures: a lab workspace (playbooks, manifests, an inventory and a fresh mock
site) copied per test from one built per session, a CLI runner, and site snapshots."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import leakcheck
from deployer import failpoints

ROOT = Path(__file__).resolve().parents[1]

pytest_plugins = ["servers.mock_target", "servers.samba", "servers.sshd", "servers.redis"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(*args: str, cwd: Path | None = None) -> Result:
    """Run `deployer ARGS` in-process (fast), capturing output and the exit code."""
    from deployer.cli import main

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = ["deployer", *map(str, args)]
    code = 0
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    leakcheck.record("deployer " + " ".join(map(str, args)), out.getvalue(), err.getvalue())
    return Result(code, out.getvalue(), err.getvalue())


def run_subprocess(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120) -> Result:
    proc = subprocess.run([sys.executable, "-m", "deployer", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})
    leakcheck.record("deployer " + " ".join(map(str, args)), proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def snapshot(root: Path, *, include_state: bool = False) -> dict[str, tuple[int, int, str]]:
    """Every file under a mock site with (size, write time ns, sha256).

    By default only the servers' SMS trees count (deployer's own .deployer folder, the mock
    SCM's state files, and SMS's trace logs are not site files: SMS appends to LOGS/*.LOG
    whenever a service runs, a rollback's restart included, as on a real server);
    include_state=True takes everything.
    """
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if not include_state:
            dirnames[:] = [d for d in dirnames if d.casefold() not in (".deployer", "logs")]
        for f in filenames:
            rel = rel_dir / f
            if not include_state and (len(rel.parts) <= 2):  # site.json, <SERVER>/scm.json, scm.log...
                continue
            p = Path(dirpath) / f
            st = p.stat()
            out[str(rel)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def services(root: Path) -> dict[str, dict[str, str]]:
    out = {}
    for scm in sorted(root.glob("*/scm.json")):
        data = json.loads(scm.read_text())
        out[scm.parent.name] = {n: s["state"] for n, s in data["services"].items()}
    return out


def diff(a: dict, b: dict) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)} -> {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


@dataclass
class Project:
    """A copy of the project's files (playbooks, manifests, an inventory and lab sites)."""
    path: Path

    @property
    def inventory(self) -> Path:
        return self.path / "sites.yaml"

    @property
    def playbook(self) -> Path:
        return self.path / "playbooks" / "q241656.yaml"


@dataclass
class Workspace(Project):
    """The repository's inventory: the DEMO site and its three servers."""

    @property
    def site(self) -> Path:
        return self.path / "lab" / "DEMO"

    def server(self, name: str) -> Path:
        roots = {"DEMOSRV": "C/SMS", "DEMOLOG1": "D/SMS", "DEMOAXP1": "C/SMS"}
        return self.site / name / roots[name]

    def cli(self, *args: str) -> Result:
        return run_cli(*args, cwd=self.path)

    def state(self) -> tuple[dict, dict]:
        return snapshot(self.site), services(self.site)


def copy_project(base: Path) -> Path:
    """playbooks/, manifests/ and sites.yaml under `base`, so `../manifests/...` resolves."""
    for d in ("playbooks", "manifests"):
        shutil.copytree(ROOT / d, base / d)
    shutil.copy(ROOT / "sites.yaml", base / "sites.yaml")
    return base


def lab_project(base: Path, sites: int | None = None, groups: dict[str, list[str]] | None = None) -> Path:
    """The project under `base` with its lab sites made (`lab init --all`): for the repository's
    inventory, or for one of `sites` one-server mock sites in `groups` (simulator/fleet_lab.py)."""
    copy_project(base)
    if sites is not None:
        from deployer.simulator.fleet_lab import write_fleet_inventory

        write_fleet_inventory(base / "sites.yaml", sites, groups=groups)
    r = run_cli("lab", "init", "--all", "--inventory", base / "sites.yaml", cwd=base)
    assert r.code == 0, r.text
    return base


def copy_workspace(template: Path, dest: Path) -> Path:
    """A copy of a workspace whose stand-in payloads are shared with the template (a link):
    for tests that only read them (a run uploads them, never writes them). Tests that damage
    a payload use the `ws` fixture, a full copy."""
    shutil.copytree(template, dest, symlinks=True, ignore=lambda d, names: ["payloads"] if Path(d) == template else [])
    (dest / "payloads").symlink_to(template / "payloads", target_is_directory=True)
    return dest


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lab_project(tmp_path_factory.mktemp("template"))


@pytest.fixture
def ws(workspace_template: Path, tmp_path: Path) -> Workspace:
    dest = tmp_path / "ws"
    shutil.copytree(workspace_template, dest, symlinks=True)
    return Workspace(dest)


@pytest.fixture(scope="session", autouse=True)
def _no_flush_to_disk() -> Iterator[None]:
    """os.fsync in this test process checks its file descriptor and returns without waiting for
    the disk. The mock site writes durably (fsync of each file and folder, about 250 per apply
    and rollback); on a disk shared with other jobs that wait was half of an in-process run's
    time, and no test can observe it: what fsync promises shows only after a power loss. The
    calls are still made (test_speed_paths.py counts the durable writes), and runs in other
    processes (the SIGKILL and signal tests, workers, `run_subprocess`) flush as always.
    DEPLOYER_TEST_FSYNC=1 keeps the real fsync here too."""
    real = os.fsync
    if os.environ.get("DEPLOYER_TEST_FSYNC") == "1":
        yield
        return

    def fsync(fd) -> None:
        os.fstat(fd)  # a closed or bad descriptor fails as fsync would (EBADF)

    os.fsync = fsync
    yield
    os.fsync = real


@pytest.fixture(autouse=True)
def _clean_failpoints():
    failpoints.reset()
    yield
    failpoints.reset()


@pytest.fixture(scope="session", autouse=True)
def command_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commands write their logs (and fleet journals, and a worker's payload cache) under the
    session's temporary folder, where the leak check reads them; under xdist each worker has
    its own, so two workers never write one file."""
    state = tmp_path_factory.mktemp("state")
    cache = tmp_path_factory.mktemp("cache")
    old = {k: os.environ.get(k) for k in ("XDG_STATE_HOME", "XDG_CACHE_HOME")}
    os.environ["XDG_STATE_HOME"] = str(state)
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield state
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# --- the whole run: secrets, skips, and the full matrices ---------------------------------------------

LEAKS: list[str] = []  # the controller's list under xdist: what each worker found


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No registered test password anywhere in what the suite produced (see leakcheck.py).

    Each process scans what it produced (an xdist worker: its own outputs and temporary folder,
    where the passwords it registered are known); a worker sends its hits to the controller
    (pytest_testnodedown), which fails the run, since a worker's own exit status is not the run's."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    root = factory.getbasetemp() if factory is not None else None
    hits = leakcheck.scan(root)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["leaks"] = hits
    hits = hits + LEAKS
    if hits:
        print("\nSECRET LEAK: a test password appears in:\n  " + "\n  ".join(hits[:50]), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)  # an xdist hook: without xdist it is never called
def pytest_testnodedown(node, error) -> None:
    """(xdist controller) A worker finished: keep the leaks it found."""
    LEAKS.extend(getattr(node, "workeroutput", {}).get("leaks", []))


FULL_ENV = "DEPLOYER_FULL_MATRIX"


@pytest.hookimpl(trylast=True)  # after pytest's own reordering: this order is the one xdist hands out
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `full` (every point of a matrix whose sample runs by default) run only when
    asked: `-m full`, or DEPLOYER_FULL_MATRIX=1 with the rest of the suite. They are left out
    of the run, not skipped (in CI a skip is a failure, see below).

    Tests marked `slow` run first. xdist hands tests to a worker as it runs short of them, in
    this order (whole xdist_group groups before single tests): the long scenarios start while
    the short tests can still fill in behind them on the other worker. In file order the
    worker tests (test_workers*.py) came last and one worker ran them alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise
    if os.environ.get(FULL_ENV) == "1" or "full" in (config.option.markexpr or ""):
        return
    keep = [item for item in items if item.get_closest_marker("full") is None]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item.get_closest_marker("full")])
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """In CI (CI=true) nothing is skipped: a test that skips there (a missing server, a missing
    file beside the checkout) is a failure, whatever skipped it."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.longrepr = f"skipped in CI, where nothing may be skipped: {reason}"



def sigint_once():
    """A fail-point callback that sends this process SIGINT the first time it is hit (as
    Ctrl-C would), and gives the main thread's handler a moment to run; `.sent` names the hit."""
    sent: list[str] = []

    def interrupt(name: str) -> None:
        if not sent:
            sent.append(name)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.3)  # the handler runs on the main thread meanwhile

    interrupt.sent = sent  # type: ignore[attr-defined]
    return interrupt
