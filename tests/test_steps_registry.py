"""The step registry: every kind holds every part, and nothing outside deployer/steps/ knows the kinds."""

from __future__ import annotations

import dataclasses
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
    from deployer import workflow
    from deployer.model.playbook import load_playbook

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


def test_no_module_outside_steps_branches_on_step_kinds():
    names = set()
    for kind in KINDS.values():
        names |= {kind.model.__name__, kind.action.__name__}
    pattern = re.compile(r"isinstance\([^)]*\b(" + "|".join(sorted(names)) + r")\b")
    offenders = []
    for path in ROOT.rglob("*.py"):
        if "steps" in path.relative_to(ROOT).parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "step kinds branched on outside deployer/steps/:\n" + "\n".join(offenders)
