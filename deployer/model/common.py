"""Validation plumbing shared by the playbook, manifest and inventory models.

Models are pydantic (strict about unknown keys); this module turns pydantic's errors
into InputErrors that point at file:line:column, name the field, and say what is allowed.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import InputError, InputErrors
from ..yamlsrc import Document, KeyPath

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _unwrap(tp: Any) -> list[Any]:
    """The model classes a field annotation can hold (through Optional, list, dict, Annotated)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for a in typing.get_args(tp) for m in _unwrap(a)]
    if origin is dict:
        return _unwrap(typing.get_args(tp)[1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: list[type[BaseModel]] = [root]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for cls in current:
            for name, f in cls.model_fields.items():
                if part in (name, f.alias):
                    nxt.extend(_unwrap(f.annotation))
        if not nxt:
            # a dict key (site or server name): stay on the value type
            nxt = [m for cls in current for f in cls.model_fields.values() for m in _unwrap(f.annotation)
                   if typing.get_origin(f.annotation) is dict]
            if not nxt:
                return None
        current = nxt
    return current[0] if current else None


def allowed_keys(cls: type[BaseModel]) -> str:
    return ", ".join(f.alias or n for n, f in cls.model_fields.items())


def _message(err: dict[str, Any], root: type[BaseModel]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        allowed = f"; allowed: {allowed_keys(owner)}" if owner else ""
        return f"unknown key {loc[-1]!r}{allowed}"
    if kind == "missing":
        return "is required"
    msg = err["msg"]
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    if kind.endswith("_type") or kind in ("model_type", "dict_type", "list_type"):
        got = type(err.get("input")).__name__
        got = {"NoneType": "nothing", "dict": "a mapping", "list": "a list", "str": "a string", "int": "a number",
               "bool": "true/false", "float": "a number"}.get(got, got)
        return f"{msg.rstrip('.')} (got {got})"
    return msg


def _real_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic's error path without its own segments (union tags, validator names): keep only
    the keys and indexes that exist in the document, plus a final missing or unknown key."""
    out: list[Any] = []
    cur = data
    for i, part in enumerate(loc):
        if isinstance(cur, dict) and part in cur:
            out.append(part)
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
            out.append(part)
            cur = cur[part]
        elif i == len(loc) - 1 and isinstance(cur, dict) and isinstance(part, str):
            out.append(part)  # a required key that is missing
    return tuple(out)


def validate(doc: Document, cls: type[M], data: Any = None, prefix: KeyPath = (), context: dict | None = None) -> M:
    """Validate `data` (default: the whole document) against `cls`, with located errors."""
    payload = doc.data if data is None else data
    if payload is None:
        raise InputError(f"is empty; expected a mapping with keys: {allowed_keys(cls)}", doc.location(prefix))
    if not isinstance(payload, dict):
        raise InputError(
            f"expected a mapping with keys: {allowed_keys(cls)} (got {type(payload).__name__})", doc.location(prefix)
        )
    try:
        return cls.model_validate(payload, context=context)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            loc = prefix + _real_loc(payload, tuple(err["loc"]))
            errors.append(doc.error(loc, _message(err, cls)))
        raise (errors[0] if len(errors) == 1 else InputErrors(errors)) from None


def check_timezone(name: str | None) -> str | None:
    if name is None:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a tzdata folder such as "Pacific"
        close = [z for z in sorted(available_timezones()) if name.casefold() in z.casefold()][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as America/Los_Angeles or UTC{hint}")
    return name
