"""Start-up stays light: what `deployer --version`, `--help` and a one-site plan import, counted
in a fresh interpreter (modules, never seconds: timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Workspace

PROBE = """
import json, sys
sys.argv = ["deployer", *{args!r}]
from deployer.__main__ import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""


def _modules(*args: str, cwd=None) -> tuple[str, set[str]]:
    r = subprocess.run([sys.executable, "-c", PROBE.format(args=list(map(str, args)))], capture_output=True,
                       text=True, timeout=120, cwd=cwd)
    out, _, modules = r.stdout.rpartition("\nMODULES ")
    assert modules, r.stdout + r.stderr
    return out, set(json.loads(modules))


def _loaded(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages or m in packages)


def test_version_imports_no_command_line():
    out, modules = _modules("--version")
    assert out.strip() == "deployer 0.1.0"
    assert _loaded(modules, "typer", "rich", "pydantic", "yaml", "jinja2") == []
    assert sorted(m for m in modules if m.startswith("deployer")) == ["deployer", "deployer.__main__"]


def test_help_imports_no_models_secrets_or_progress_bar():
    out, modules = _modules("--help")
    assert "Usage" in out and "plan" in out
    assert _loaded(modules, "pydantic", "jinja2", "yaml") == []
    assert not {"deployer.model.secrets", "rich.progress"} & modules  # report.log is loaded, without secrets
    # no transport, step kind or model; the few plain-Python helpers --help's options need may load
    # (host_limits: --max-per-host's default; numbers: the options' parsers; winpath, temps, suggest: names)
    light = {"deployer.targets.host_limits", "deployer.targets.temps", "deployer.model", "deployer.model.numbers",
             "deployer.model.winpath", "deployer.model.suggest", "deployer.model.redact",
             "deployer.model.runpaths", "deployer.model.owned"}  # a run's names on a server; the output-file rule
    assert not [m for m in modules if m.startswith(("deployer.targets.", "deployer.steps", "deployer.model"))
                and m not in light]


def test_a_plan_without_a_preflight_step_loads_no_preflight_checks(ws: Workspace):
    out, modules = _modules("--no-log", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV" in out
    assert not {"deployer.sms.preflight", "deployer.sms.pcm.dumptext", "deployer.sms.pcm.load"} & modules
    assert not {"rich.progress", "rich.table", "rich.console"} & modules  # stdout is a pipe here: plain text
