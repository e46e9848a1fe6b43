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
class Workspace:
    path: Path

    @property
    def inventory(self) -> Path:
        return self.path / "sites.yaml"

    @property
    def playbook(self) -> Path:
        return self.path / "playbooks" / "q241656.yaml"

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


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = copy_project(tmp_path_factory.mktemp("template"))
    r = run_cli("lab", "init", "--all", "--inventory", base / "sites.yaml", cwd=base)
    assert r.code == 0, r.text
    return base


@pytest.fixture
def ws(workspace_template: Path, tmp_path: Path) -> Workspace:
    dest = tmp_path / "ws"
    shutil.copytree(workspace_template, dest, symlinks=True)
    return Workspace(dest)


@pytest.fixture(autouse=True)
def _clean_failpoints():
    failpoints.reset()
    yield
    failpoints.reset()


@pytest.fixture(scope="session", autouse=True)
def command_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Commands write their logs under the session's temporary folder, where the leak check reads them."""
    state = tmp_path_factory.mktemp("state")
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state)
    yield state
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No registered test password anywhere in what the suite produced (see leakcheck.py)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    root = factory.getbasetemp() if factory is not None else None
    hits = leakcheck.scan(root)
    if hits:
        print("\nSECRET LEAK: a test password appears in:\n  " + "\n  ".join(hits[:50]), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED



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
