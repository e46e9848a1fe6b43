"""Saved plans (`deployer plan --out plan.json`).

A saved plan carries a digest of its own content: a plan edited by hand (or damaged) is
refused rather than half-trusted. The digest guards against accidents, not attackers:
anyone who can write the file can recompute it. What protects the site is that apply
re-observes everything the plan observed and refuses if anything differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .errors import InputError, Location, StalePlanError
from .plan import PLAN_FORMAT, Plan, canonical

MAX_PLAN_BYTES = 16 << 20


def digest(data: dict[str, Any]) -> str:
    body = {k: v for k, v in data.items() if k != "digest"}
    return hashlib.sha256(canonical(body)).hexdigest()


def save_plan(plan: Plan, path: Path) -> None:
    data = plan.to_json()
    data["digest"] = digest(data)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def looks_like_plan(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(64).lstrip().startswith(b"{")
    except OSError:
        return False


def load_plan(path: Path) -> Plan:
    loc = Location(str(path))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("plan file not found", loc) from None
    if size > MAX_PLAN_BYTES:
        raise InputError(f"plan file is {size:,} bytes; a saved plan is at most {MAX_PLAN_BYTES:,}", loc)
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not a valid saved plan: JSON error: {exc.msg}", Location(str(path), exc.lineno, exc.colno)) \
            from None
    if not isinstance(data, dict) or "fingerprint" not in data or "actions" not in data:
        raise InputError("not a deployer plan (expected the JSON written by `deployer plan --out`)", loc)
    if data.get("format") != PLAN_FORMAT:
        raise InputError(f"plan format {data.get('format')!r} is not supported (this deployer writes {PLAN_FORMAT}); "
                         "make a new plan", loc)
    if data.get("digest") != digest(data):
        raise StalePlanError("the plan file was modified after `deployer plan` wrote it (its digest does not match); "
                             "make a new plan instead of editing one", loc)
    try:
        return Plan.from_json(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise InputError(f"not a valid saved plan: {exc}", loc) from None
