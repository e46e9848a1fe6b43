"""The step registry: one module per step kind, each holding all that kind knows (base.py).

Adding a kind is one module with a StepKind subclass, registered here. The planner, the
run, the undo, recovery, saved plans and the renderers find it through `KINDS`.
"""

from __future__ import annotations

from typing import Any

from .base import StepKind
from .preflight import PreflightKind
from .replace import Replace
from .reset_site import Reset
from .sendcode import Sendcode
from .stop_start import Start, Stop

KINDS: dict[str, StepKind] = {k.key: k for k in (Stop(), Start(), Replace(), Reset(), Sendcode(),
                                                   PreflightKind())}

_BY_ACTION: dict[type, StepKind] = {k.action: k for k in KINDS.values()}
_BY_MODEL: dict[type, StepKind] = {k.model: k for k in KINDS.values()}


def kind_of(action_or_step: Any) -> StepKind:
    """The kind of a planned action or of a loaded step."""
    t = type(action_or_step)
    return _BY_ACTION.get(t) or _BY_MODEL[t]


def action_types() -> dict[str, type]:
    """Action class by the `kind` a saved plan names."""
    return {key: k.action for key, k in KINDS.items()}


def action_from_json(data: dict[str, Any]) -> Any:
    kind = KINDS.get(data.get("kind", ""))
    if kind is None:
        raise ValueError(f"unknown action kind {data.get('kind')!r}; allowed: {', '.join(KINDS)}")
    return kind.action_from_json(data)


def groups() -> dict[str, list[StepKind]]:
    """Kinds summed up together, in registry order (a plan's one-line summary)."""
    out: dict[str, list[StepKind]] = {}
    for k in sorted(KINDS.values(), key=lambda k: k.summary_rank):
        out.setdefault(k.summary_group or k.key, []).append(k)
    return out
