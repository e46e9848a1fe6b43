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

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Tag, ValidationError

from ..errors import InputError, InputErrors
from .suggest import did_you_mean
from .yamlsrc import Document, KeyPath

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    # defer_build: a model's validator is built when first used, not at import (most commands use few)
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, defer_build=True)


def _unwrap_tagged(tp: Any, tag: str | None = None) -> list[tuple[str | None, Any]]:
    """The model classes a field annotation can hold (through Optional, list, dict, Annotated),
    each with its discriminator Tag when it is a branch of a tagged union (else None)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(tp)
        tag = next((m.tag for m in meta if isinstance(m, Tag)), tag)
        return _unwrap_tagged(inner, tag)
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for a in typing.get_args(tp) for m in _unwrap_tagged(a)]
    if origin is dict:
        return _unwrap_tagged(typing.get_args(tp)[1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(tag, tp)]
    return []


def _is_dict(tp: Any) -> bool:
    """Is the annotation a dict (through Annotated and Optional)?"""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_dict(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_dict(a) for a in typing.get_args(tp))
    return origin is dict


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class at an error path, to list the keys it allows.

    The path holds field names, list indexes, dict keys (a site or server name) and the tags of
    discriminated unions (files -> 'smb' -> password). Each is followed; the first version went
    from `sites` straight to the dict's value type and then took the site's name for a field
    lookup, losing the trail below the first dict (and the allowed keys with it).
    """
    current: list[tuple[str | None, type[BaseModel]]] = [(None, root)]
    key_next = False  # the last field was a dict: this part is one of its keys
    for part in loc:
        if isinstance(part, int):
            continue
        if key_next:
            key_next = False
            continue
        tagged = [(t, cls) for t, cls in current if t is not None and t == part]
        if tagged:
            current = tagged
            continue
        nxt: list[tuple[str | None, type[BaseModel]]] = []
        for _, cls in current:
            for name, f in cls.model_fields.items():
                if part in (name, f.alias):
                    nxt.extend(_unwrap_tagged(f.annotation))
                    key_next = key_next or _is_dict(f.annotation)
        if not nxt:
            return None
        current = nxt
    return current[0][1] if current else None


def allowed_keys(cls: type[BaseModel]) -> str:
    return ", ".join(f.alias or n for n, f in cls.model_fields.items())


def _message(err: dict[str, Any], root: type[BaseModel]) -> str:
    kind = err["type"]
    loc = tuple(err["loc"])
    if kind == "extra_forbidden":
        owner = _model_at(root, loc[:-1])
        allowed = f"; allowed: {allowed_keys(owner)}" if owner else ""
        hint = did_you_mean(str(loc[-1]), allowed_keys(owner).split(", ")) if owner else ""
        return f"unknown key {loc[-1]!r}{hint}{allowed}"
    if kind == "missing":
        owner = _model_at(root, loc[:-1])
        f = owner.model_fields.get(loc[-1]) if owner else None
        return f"is required ({f.description})" if f is not None and f.description else "is required"
    msg = err["msg"]
    msg = re.sub(r"^(Value|Assertion) error, ", "", msg)
    if kind.endswith("_type") or kind in ("model_type", "dict_type", "list_type"):
        got = type(err.get("input")).__name__
        got = {"NoneType": "nothing", "dict": "a mapping", "list": "a list", "str": "a string", "int": "a number",
               "bool": "true/false", "float": "a number"}.get(got, got)
        owner = _model_at(root, loc) if kind == "model_type" else None
        if owner is not None:  # "a valid dictionary or instance of FileEntry" names a class, not the keys
            return f"expected a mapping with keys: {allowed_keys(owner)} (got {got})"
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


# A number the YAML gives quoted ("5"): what number_in and the step kinds' codes accept besides a number.
NUMERIC_TEXT: dict[str, Any] = {"type": "string", "pattern": r"^\s*[0-9]{1,12}\s*$"}


def accepts(schema: Any) -> Any:
    """Declare, on a "before" validator, the JSON Schema of what it accepts as YAML gives it
    (`schema(inner)`, inner being what pydantic says of the parsed type). deployer/schema.py
    reads it from the validator, so a model's module says what its spellings are and the schema
    builder needs to know no model (the step kinds' validators declare theirs this way)."""
    def mark(fn: Any) -> Any:
        fn.__input_schema__ = schema
        return fn
    return mark


def number_in(lo: float, hi: float, what: str, *, integer: bool = True, above: bool = False) -> BeforeValidator:
    """A number from lo to hi (above=True: more than lo), refused with both bounds named.

    pydantic's own ge/le messages name only the bound that was crossed ("Input should be less
    than or equal to 65535") and its type errors none at all ("unable to parse string as an
    integer"); the operator needs the whole range.
    """
    span = f"more than {lo:g} and at most {hi:g}" if above else f"from {lo:g} to {hi:g}"
    kind = "a whole number" if integer else "a number"

    def check(v: Any) -> Any:
        if isinstance(v, str) and re.fullmatch(r"\s*[0-9]{1,12}\s*", v):  # "445" quoted: still a number
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise ValueError(f"{what} must be {kind} {span} (got {_describe(v)})")
        if not ((lo < v) if above else (lo <= v)) or not v <= hi:
            raise ValueError(f"{what} {v if isinstance(v, int) else format(v, 'g')} is out of range: it must be {span}")
        return v

    return BeforeValidator(check)


def _describe(v: Any) -> str:
    if isinstance(v, str):
        return repr(v) if len(v) <= 40 else repr(v[:40]) + "..."
    return {type(None): "nothing", dict: "a mapping", list: "a list", bool: "true/false"}.get(type(v), type(v).__name__)


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


def matching(pattern: str, message: str) -> AfterValidator:
    """A text field that must match `pattern` whole; else `message`, with {v!r} the value given.
    (None passes: an optional field left out.)"""
    rule = re.compile(pattern)

    def check(v: Any) -> Any:
        if v is not None and not rule.fullmatch(v):
            raise ValueError(message.format(v=v))
        return v

    return AfterValidator(check)
