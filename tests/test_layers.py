"""The package's layers, read from the AST of every module (function-level imports included).

Imports under `if TYPE_CHECKING:` are annotations, not imports at run time, and are not counted;
every other import is, function-level ones included.

Layers, lowest first: model -> steps -> plan -> run -> fleet -> commands (and cli), with
targets/ (transports), simulator/ (the mock SMS site), sms/, kb/, report/ and workers/ beside
them. A package may import only the packages ALLOWED lists for it, and no modules import each
other in a cycle (issue 20 paid off the last listed exceptions; there is no list of them now).
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "deployer"

BASE = {"errors", "failpoints", "deployer"}  # deployer = the package's own __init__ (__version__)
# plain helpers any layer may use: escaping outside text before it is shown
UTILITIES = {"deployer.report.escape"}
# the mock transport is the simulator's one door: the rest of the package reaches the mock SMS
# site only through the transport registry (targets/connect.py -> targets/mock.py)
GATEWAYS = {"deployer.targets.mock": {"simulator"}}
ALLOWED: dict[str, set[str]] = {
    "model": BASE | {"model", "sms"},  # sms/ holds the tables the models read (platforms, attributes)
    "targets": BASE | {"model", "sms", "targets"},
    "simulator": BASE | {"model", "targets", "sms", "steps", "kb", "simulator"},
    "sms": BASE | {"model", "targets", "sms"},
    "kb": BASE | {"model", "sms", "kb"},
    "steps": BASE | {"model", "targets", "sms", "steps"},
    "plan": BASE | {"model", "targets", "sms", "steps", "plan"},
    "run": BASE | {"model", "targets", "sms", "steps", "plan", "run"},
    "report": BASE | {"model", "targets", "sms", "steps", "plan", "run", "report", "kb", "scan"},
    "fleet": BASE | {"model", "targets", "sms", "steps", "plan", "run", "report", "fleet", "simulator"},
    "workers": BASE | {"model", "targets", "sms", "steps", "plan", "run", "report", "fleet", "workers"},
    "scan": BASE | {"model", "targets", "sms", "steps", "plan", "run", "report", "fleet", "kb", "scan"},
    "commands": BASE | {"model", "targets", "sms", "steps", "plan", "run", "report", "fleet", "workers", "kb",
                        "simulator", "commands", "scan", "schema"},
}


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = ["deployer", *path.relative_to(PKG).with_suffix("").parts]
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        deps: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "deployer":
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in mods else target)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.split(".")[0] == "deployer")
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "deployer"


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        comp.add(member)
                        if member == node:
                            break
                    if len(comp) > 1:
                        out.append(frozenset(comp))
    return out


def violations() -> set[tuple[str, str]]:
    found = set()
    for module, deps in _graph().items():
        layer = _layer(module)
        if layer not in ALLOWED:
            continue
        for dep in deps:
            if (_layer(dep) not in ALLOWED[layer] and dep not in UTILITIES
                    and _layer(dep) not in GATEWAYS.get(module, set())):
                found.add((module, dep))
    return found


def test_no_import_goes_against_the_layers():
    found = sorted(violations())
    assert not found, "imports against the layers:\n" + "\n".join(f"{a} -> {b}" for a, b in found)


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(str(sorted(c)) for c in cycles)


def test_the_checker_sees_a_violation_and_a_cycle():
    graph = {"deployer.model.a": {"deployer.run.b"}, "deployer.run.b": {"deployer.model.a"}}
    assert _cycles(graph) == [frozenset(graph)]
    assert "run" not in ALLOWED["model"]
