"""Start-up stays light: what `deployer --version`, `--help` and a one-site plan import, counted
in a fresh interpreter (modules, never seconds: timings are not asserted)."""

from __future__ import annotations

import json
import os
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
    # its path templates are text and {{ name }}s: rendered without jinja2 and its sandbox
    assert not {"jinja2", "deployer.model.template_sandbox"} & modules


def test_help_lists_every_command_from_the_registry_without_importing_one():
    from deployer.commands import COMMANDS

    out, modules = _modules("--help")
    listing = out.split("Commands:", 1)[1].split("\n\n")[0]  # up to the exit codes below it
    shown = [line.split()[0] for line in listing.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert shown == [name for name, info in COMMANDS.items() if not info.hidden]
    # the registry and the help formatter are loaded; no module that holds a command is
    assert not {f"deployer.commands.{info.module}" for info in COMMANDS.values()} & modules
    assert not {"deployer.fleet.engine", "deployer.fleet.workflow", "deployer.workers.broker"} & modules


def test_a_one_site_plan_imports_its_own_command_and_nothing_only_a_run_needs(ws: Workspace):
    out, modules = _modules("--no-log", "plan", ws.playbook, "--site", "DEMO", "-i", ws.inventory, cwd=ws.path)
    assert "1. stop SMS_PACKAGE_COMMAND_MANAGER_NT on DEMOSRV" in out
    assert sorted(m for m in modules if m.startswith("deployer.commands.")) == [
        "deployer.commands.common", "deployer.commands.helpfmt", "deployer.commands.plan",
        "deployer.commands.selection"]
    # applying, undoing, recovering, a saved plan, a fleet and the workers load when they are used
    assert not {"deployer.run.apply", "deployer.run.undo", "deployer.run.recover", "deployer.plan.saved",
                "deployer.fleet.engine", "deployer.commands.fleet", "deployer.workers.broker"} & modules


def test_the_command_line_scans_no_pydantic_plugins_unless_asked(ws: Workspace):
    probe = ("import os, sys\nsys.argv = ['deployer', '--no-log', 'validate', {book!r}]\n"
             "from deployer.__main__ import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "from pydantic.plugin import _loader\nprint('\\nSCANNED', _loader._plugins is not None)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    r = subprocess.run([sys.executable, "-c", probe.format(book=str(ws.playbook))], capture_output=True, text=True,
                       timeout=120, cwd=ws.path, env=env)
    assert r.stdout.rstrip().endswith("SCANNED False"), r.stdout + r.stderr
    # an operator who wants a plugin names it (or all) in the environment, and deployer leaves that alone
    r = subprocess.run([sys.executable, "-c", probe.format(book=str(ws.playbook))], capture_output=True, text=True,
                       timeout=120, cwd=ws.path, env={**env, "PYDANTIC_DISABLE_PLUGINS": "none-of-them"})
    assert r.stdout.rstrip().endswith("SCANNED True"), r.stdout + r.stderr
