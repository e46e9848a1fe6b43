"""The step registry: every kind holds every part, and nothing outside deployer/steps/ knows the kinds."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import re
from pathlib import Path

import pytest

from deployer.steps import KINDS, action_from_json, kind_of
from deployer.steps.base import StepKind

ROOT = Path(__file__).resolve().parents[1] / "deployer"
REQUIRED = sorted(name for name, fn in vars(StepKind).items() if getattr(fn, "__required__", False))


def test_required_parts_are_the_ones_every_kind_needs():
    assert REQUIRED == ["describe", "execute", "plan", "render", "undo"]


@pytest.mark.parametrize("key", list(KINDS))
def test_every_registered_kind_has_every_part(key: str):
    kind = KINDS[key]
    assert kind.key == key
    for attr in ("model", "action"):
        assert isinstance(getattr(type(kind), attr, None), type), f"{key}: no {attr}"
    missing = [name for name in REQUIRED if getattr(type(kind), name) is getattr(StepKind, name)]
    assert not missing, f"step kind {key} lacks {', '.join(missing)}"
    assert key in kind.model.model_fields, f"{key}: its model has no {key!r} field"
    fields = {f.name: f for f in dataclasses.fields(kind.action)}
    assert fields["kind"].default == key, f"{key}: its action's kind is not {key!r}"
    assert {"number", "step", "server"} <= set(fields), f"{key}: an action needs number, step and server"


def test_a_kind_lacking_a_part_is_caught():
    class Half(StepKind):
        key = "half"

        def plan(self, planner, index, step):
            pass

    missing = [name for name in REQUIRED if getattr(Half, name) is getattr(StepKind, name)]
    assert missing == ["describe", "execute", "render", "undo"]


def test_actions_round_trip_through_their_json(ws):
    from deployer.fleet import workflow
    from deployer.steps.playbook import load_playbook

    pb = load_playbook(ws.playbook)
    site = workflow.inventory(ws.inventory).site("DEMO")
    plan = workflow.make_plan(pb, site)
    seen = set()
    for a in plan.actions:
        back = action_from_json(dataclasses.asdict(a))
        assert back == a
        assert kind_of(back) is kind_of(a)
        seen.add(a.kind)
    assert seen == {"stop", "start", "replace", "reset_site", "wait_for_replication", "force_client_update"}


# --- nothing outside deployer/steps/ knows a kind --------------------------------------------------

STEPS = ROOT / "steps"
KIND_MODULES = sorted(p.stem for p in STEPS.glob("*.py") if p.stem not in ("__init__", "base", "playbook"))
KIND_CLASSES = sorted({cls.__name__ for k in KINDS.values() for cls in (k.model, k.action, type(k))}
                      | {name for m in KIND_MODULES for name, obj in vars(importlib.import_module(f"deployer.steps.{m}"))
                         .items() if isinstance(obj, type) and obj.__module__ == f"deployer.steps.{m}"})
READERS = {"getattr", "hasattr", "setattr", "delattr"}

# Known references, to be removed by issue 20 item 6 (descriptions in each kind's model, plan-time
# questions through the planner). Listed by module and what it names, without line numbers, so
# that edits elsewhere in those modules do not disturb it: a new reference fails this test, and so
# does fixing one of these without taking it off the list.
KNOWN = {
    # the KB importer drafts playbook YAML from an article's procedure: the kinds' keys are the
    # text it writes (its own draft steps, not deployer/steps/ objects), so it compares them
    "kb/playbook.py": {"kind == 'replace'", "kind == 'reset_site'", "kind == 'start'", "kind == 'stop'"},
    # the inventory's own `preflight:` site field (Q166765 settings), merged from defaults and
    # groups key by key: the same word as the step kind, not the kind
    "model/inventory_expand.py": {"kind == 'preflight'"},
}


def _module_of(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (`from ..steps import replace` in deployer/plan/x.py)."""
    if not node.level:
        return node.module or ""
    package = ["deployer", *path.relative_to(ROOT).parent.parts]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def kind_references(path: Path, source: str) -> set[str]:
    """What in `source` names a step kind: its classes (isinstance, construction, annotations, imports),
    its module, its playbook key read as an attribute, looked up in the registry, compared with an
    action's kind, or used as a location in a playbook's steps."""
    keys = set(KINDS)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in KIND_CLASSES:
            found.add(node.id)
        elif isinstance(node, ast.Attribute) and node.attr in KIND_CLASSES:
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and node.value in KIND_CLASSES:  # a quoted annotation
            found.add(node.value)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[:2] == ["deployer", "steps"] and len(parts) > 2 and parts[2] in KIND_MODULES:
                    found.add(f"import deployer.steps.{parts[2]}")
        elif isinstance(node, ast.ImportFrom):
            module = _module_of(path, node)
            for alias in node.names:
                full = f"{module}.{alias.name}".split(".")
                if full[:2] == ["deployer", "steps"] and len(full) > 2 and full[2] in KIND_MODULES:
                    found.add(f"import deployer.steps.{full[2]}")
                if alias.name in KIND_CLASSES:
                    found.add(alias.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in READERS:
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in keys:
                found.add(f"{node.func.id}(..., {node.args[1].value!r})")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Attribute)):
            registry = node.value.id if isinstance(node.value, ast.Name) else node.value.attr
            if registry.endswith("KINDS") and isinstance(node.slice, ast.Constant) and node.slice.value in keys:
                found.add(f"{registry}[{node.slice.value!r}]")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name.endswith("KINDS") and node.args and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in keys:
                found.add(f"{name}.get({node.args[0].value!r})")
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            named = [n for n in sides if (isinstance(n, ast.Attribute) and n.attr in ("kind", "key"))
                     or (isinstance(n, ast.Name) and n.id in ("kind", "key"))]
            consts = [c.value for n in sides for c in ([n] if isinstance(n, ast.Constant) else
                                                        n.elts if isinstance(n, (ast.Tuple, ast.List, ast.Set)) else [])
                      if isinstance(c, ast.Constant) and c.value in keys]
            if named and consts:
                found |= {f"kind == {c!r}" for c in consts}
        elif isinstance(node, (ast.Tuple, ast.List)) and node.elts:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and first.value == "steps":
                found |= {f"playbook location ('steps', ..., {e.value!r})" for e in node.elts[1:]
                          if isinstance(e, ast.Constant) and e.value in keys}
    return found


def test_no_module_outside_steps_names_a_step_kind():
    """No module outside deployer/steps/ names a kind (read from the syntax tree, function-level
    imports and all): cross-kind questions go through the registry and the planner."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        if STEPS in path.parents:
            continue
        refs = kind_references(path, path.read_text())
        if refs:
            found[path.relative_to(ROOT).as_posix()] = refs
    new = {m: sorted(r - KNOWN.get(m, set())) for m, r in found.items() if r - KNOWN.get(m, set())}
    gone = {m: sorted(r - found.get(m, set())) for m, r in KNOWN.items() if r - found.get(m, set())}
    assert not new, f"step kinds named outside deployer/steps/: {new}"
    assert not gone, f"no longer named (take them off KNOWN in this test): {gone}"


# --- nor does a kind know another -------------------------------------------------------------

# which kind module each class, module and playbook key belongs to
OWNER = {name: m for m in KIND_MODULES for name, obj in vars(importlib.import_module(f"deployer.steps.{m}")).items()
         if isinstance(obj, type) and obj.__module__ == f"deployer.steps.{m}"}
OWNER |= {key: type(k).__module__.rsplit(".", 1)[-1] for key, k in KINDS.items()}
# update_pcm_hosts is the one kind made of others: per PCM host it plans the stop, replace and
# start kinds' own actions, so that a workstation's files get the same backup, journal and undo
KNOWN_INSIDE = {"update_pcm_hosts.py": {"Replace", "StartService", "StopService", "import deployer.steps.replace",
                                        "import deployer.steps.stop_start"}}


def _owner(ref: str) -> str | None:
    """The kind module a reference names (None: a reference the finder does not tie to one)."""
    if ref.startswith("import deployer.steps."):
        return ref.rsplit(".", 1)[-1]
    quoted = re.findall(r"'([a-z_]+)'", ref)
    return OWNER.get(quoted[-1] if quoted else ref)


def test_no_kind_names_another_kind():
    """Inside deployer/steps/ too, only a kind's own module names its classes, module and key
    (the registry, steps/__init__.py, lists the kinds; playbook.py and base.py know none):
    cross-kind questions go through the planner (Planner.planned_files) and the registry."""
    found = {}
    for path in sorted(STEPS.glob("*.py")):
        if path.stem == "__init__":
            continue
        refs = {r for r in kind_references(path, path.read_text()) if _owner(r) not in (None, path.stem)}
        if refs:
            found[path.name] = refs
    new = {m: sorted(r - KNOWN_INSIDE.get(m, set())) for m, r in found.items() if r - KNOWN_INSIDE.get(m, set())}
    gone = {m: sorted(r - found.get(m, set())) for m, r in KNOWN_INSIDE.items() if r - found.get(m, set())}
    assert not new, f"step kinds named by another kind's module: {new}"
    assert not gone, f"no longer named (take them off KNOWN_INSIDE in this test): {gone}"


def test_the_inside_check_sees_a_kind_naming_another():
    src = "from .replace import ReplaceFile\nok = isinstance(a, ReplaceFile)\nw = KINDS['stop']"
    refs = {r for r in kind_references(STEPS / "reset_site.py", src) if _owner(r) not in (None, "reset_site")}
    assert refs == {"ReplaceFile", "import deployer.steps.replace", "KINDS['stop']"}
    own = "from .replace import ReplaceFile\nok = isinstance(a, ReplaceFile)"
    assert {r for r in kind_references(STEPS / "replace.py", own) if _owner(r) not in (None, "replace")} == set()


@pytest.mark.parametrize("source, expected", [
    ("if isinstance(a, ReplaceFile): pass", {"ReplaceFile"}),
    ("def f(step: 'ReplicationStep'): pass", {"ReplicationStep"}),
    ("def f():\n    from ..steps.wait_for_replication import WaitForReplication", {"WaitForReplication",
                                                                                     "import deployer.steps.wait_for_replication"}),
    ("from ..steps import replace as r\nx = r.ReplaceStep", {"import deployer.steps.replace", "ReplaceStep"}),
    ("import deployer.steps.reset_site", {"import deployer.steps.reset_site"}),
    ("spec = getattr(step, 'replace', None)", {"getattr(..., 'replace')"}),
    ("ok = hasattr(step, 'sendcode')", {"hasattr(..., 'sendcode')"}),
    ("k = KINDS['force_client_update']", {"KINDS['force_client_update']"}),
    ("k = STEP_KINDS.get('stop')", {"STEP_KINDS.get('stop')"}),
    ("if a.kind == 'reset_site': pass", {"kind == 'reset_site'"}),
    ("if a.kind in ('start', 'stop'): pass", {"kind == 'start'", "kind == 'stop'"}),
    ("where = ('steps', i, 'replace', 'files', j)", {"playbook location ('steps', ..., 'replace')"}),
    # what is not a kind: the registry's own API, a service verb, a keyword argument
    ("from ..steps import KINDS, kind_of\nkind_of(a).plan()", set()),
    ("from ..steps import base\nx = base.StepModel", set()),
    ("verb = 'stop' if x else 'start'\nfiles.rename(a, b, replace=True)", set()),
])
def test_the_kind_finder_sees_every_way_of_naming_a_kind(source, expected):
    assert kind_references(ROOT / "plan" / "x.py", source) == expected
