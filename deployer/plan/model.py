"""The Plan: pure data, made by the planner, carried out by a run, saved as JSON.

Each action is a dataclass owned by its step kind (deployer/steps/); the plan holds them
in order, with what is skipped and why, the files to verify, and every observation the
planner made, hashed into a fingerprint. `apply` re-observes before acting and refuses a
plan whose observations no longer hold (as Terraform refuses a stale plan).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from .. import __version__
from ..model.owned import PLAN_FORMAT
from ..model.state import Touched
from ..sms.verify import ArticleOnSite, Check

ABSENT = "absent"  # a service that is not installed on that server


@dataclass
class Skip:
    step: int
    server: str
    what: str
    reason: str


@dataclass
class Plan(ArticleOnSite):
    playbook: str
    playbook_sha256: str
    manifest: str
    manifest_sha256: str
    inventory: str
    site_sha256: str
    actions: list[Any] = field(default_factory=list)  # each an action of a step kind (steps.Action)
    skipped: list[Skip] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    fingerprint: str = ""
    created_utc: str = ""
    deployer_version: str = __version__
    format: int = PLAN_FORMAT

    @property
    def empty(self) -> bool:
        return not self.actions

    def action(self, number: int) -> Any:
        return next(a for a in self.actions if a.number == number)

    def touched(self) -> list[Touched]:
        """Every file the plan changes, in action order."""
        from ..steps import kind_of

        return [t for a in self.actions for t in kind_of(a).touched(a)]

    def to_json(self) -> dict[str, Any]:
        return plain(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Plan":
        from ..steps import action_from_json

        d = dict(data)
        d["actions"] = [action_from_json(a) for a in d.get("actions", [])]
        d["skipped"] = [Skip(**s) for s in d.get("skipped", [])]
        d["checks"] = [Check(**c) for c in d.get("checks", [])]
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known - {"digest"}
        if unknown:
            raise ValueError(f"unknown keys {', '.join(sorted(unknown))}")
        d.pop("digest", None)
        return cls(**d)


def plain(obj: Any) -> Any:
    """dataclasses.asdict for a plan: the same dicts and lists, without asdict's deep copy of
    every leaf and its per-field type checks (a fleet converts one plan a site; asdict was most
    of the CPU of writing a run's journal). Leaves are str, int, float, bool or None here."""
    fields_of = getattr(type(obj), "__dataclass_fields__", None)
    if fields_of is not None:
        return {name: plain(getattr(obj, name)) for name in fields_of}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj) if isinstance(obj, tuple) else [plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    return obj


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def fingerprint(observations: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical(observations)).hexdigest()
