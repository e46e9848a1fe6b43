"""Saved plans (`deployer plan --out plan.json`).

A saved plan carries a digest of its own content: a plan edited by hand (or damaged) is
refused rather than half-trusted. The digest guards against accidents, not attackers:
anyone who can write the file can recompute it. What protects the site is that apply
re-observes everything the plan observed and refuses if anything differs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from json.decoder import scanstring
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from ..model import winpath
from ..errors import InputError, Location, StalePlanError
from ..steps import KINDS, action_types
from ..model.state import FileState
from .model import PLAN_FORMAT, Plan, canonical

MAX_PLAN_BYTES = 16 << 20


def digest(data: dict[str, Any]) -> str:
    body = {k: v for k, v in data.items() if k != "digest"}
    return hashlib.sha256(canonical(body)).hexdigest()


def save_plan(plan: Plan, path: Path, *, force: bool = False) -> None:
    """Write the plan atomically (a temporary file beside it, then a rename), or say why not."""
    from ..model.owned import write_atomic

    data = plan.to_json()
    data["digest"] = digest(data)
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", what="the plan", force=force)


def looks_like_plan(path: Path) -> bool:
    if path.suffix.lower() == ".json":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(64).lstrip().startswith(b"{")
    except OSError:
        return False


def load_plan(path: Path) -> Plan:
    """Read a saved plan, or raise InputError at the plan file's line and column.

    Everything in the file is checked before a Plan is built from it: its size, encoding and
    JSON syntax; that it is a plan, of this format, with its digest; and, because a digest
    can be recomputed by whoever edits the file, that every field has its type and every path
    on a server is a plain path below the SMS root (no `..`, no drive, no device name).
    """
    loc = Location(str(path))
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            with open(path, "rb") as fh:  # name the line where the limit is crossed, reading no more
                line = fh.read(MAX_PLAN_BYTES).count(b"\n") + 1
            raise InputError(f"plan file is {size:,} bytes; a saved plan is at most {MAX_PLAN_BYTES:,} (the limit is "
                             "reached on this line)", Location(str(path), line))
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("plan file not found", loc) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a plan file written by `deployer plan --out`", loc) from None
    except OSError as exc:  # permission denied, a name too long...: bad input, not a crash
        raise InputError(f"cannot read the plan file ({exc.strerror or exc})", loc) from None
    try:
        # strict: errors="replace" turned damaged bytes into U+FFFD and let them through
        text = raw.decode("utf-8")
        if text.startswith("\ufeff"):  # a BOM some Windows editors add: YAML files may carry one too
            text = text[1:]
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise InputError(f"not a valid saved plan: the file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                         "a saved plan is the JSON written by `deployer plan --out`",
                         Location(str(path), line, col)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not a valid saved plan: JSON error: {exc.msg} (a saved plan is the JSON written by "
                         "`deployer plan --out`)", Location(str(path), exc.lineno, exc.colno)) from None
    except (ValueError, RecursionError) as exc:  # a number of 5,000 digits; [[[[...]]]] nested too deep
        # json names no position for these: find the number, or the nesting, in the text
        if isinstance(exc, RecursionError):
            why, at = "it is nested too deeply", re.search(r"[\[{](\s*[\[{]){99}", text)
        else:
            why, at = "it holds a number too long to read", re.search(r"[0-9]{4000,}", text)
        line, col = _line_col(text, at.start()) if at else (1, 1)
        raise InputError(f"not a valid saved plan: {why} (a saved plan is the JSON written by `deployer plan --out`)",
                         Location(str(path), line, col)) from None
    where = _JsonLocator(path, text)
    if not isinstance(data, dict) or "fingerprint" not in data or "actions" not in data:
        raise InputError("not a deployer plan (expected the JSON written by `deployer plan --out`)", where(()))
    if where.duplicate:
        raise InputError(f"duplicate key {where.duplicate[-1]!r}; a saved plan has each key once",
                         where(where.duplicate))
    if data.get("format") != PLAN_FORMAT or isinstance(data.get("format"), bool):
        raise InputError(f"plan format {data.get('format')!r} is not supported (this deployer writes {PLAN_FORMAT}); "
                         "make a new plan", where(("format",)))
    try:
        signed = data.get("digest") == digest(data)
    except (ValueError, RecursionError):  # nested as deep as json.loads allows: too deep to re-encode
        signed = False
    if not signed:
        raise StalePlanError("the plan file was modified after `deployer plan` wrote it (its digest does not match); "
                             "make a new plan instead of editing one", where(("digest",)))
    problem = _plan_problem(data)
    if problem:
        kp, message = problem
        raise InputError(f"not a valid saved plan: {_keypath(kp)}: {message}", where(kp))
    try:
        return Plan.from_json(data)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:  # pragma: no cover - _plan_problem checks first
        raise InputError(f"not a valid saved plan: {exc}", loc) from None


def locate(path: Path, *keypath: str | int) -> Location:
    """Where a key of a saved plan is written (`locate(p, "manifest")` -> plan.json:79:2), for
    errors found after loading (a changed manifest, a site defined differently); the file
    alone if it cannot be read again."""
    try:
        return _JsonLocator(path, path.read_text(encoding="utf-8"))(keypath)
    except (OSError, UnicodeDecodeError):
        return Location(str(path))


# --- checking a plan's structure ---------------------------------------------------------------
#
# The plan's dataclasses are its schema: pydantic validates a saved plan against them in strict
# mode (no "5" for 5, no true for 1), and its first error is said in the operator's words, at
# the line of the plan file where it stands.

KeyPath = tuple[str | int, ...]
FolderState = Literal["missing", "folder", "file"]


@with_config(ConfigDict(extra="forbid"))
class FileObservation(TypedDict):
    kind: Literal["file"]
    server: str
    path: str
    state: Optional[FileState]


@with_config(ConfigDict(extra="forbid"))
class FolderObservation(TypedDict):
    kind: Literal["folder"]
    server: str
    path: str
    state: FolderState


@with_config(ConfigDict(extra="forbid"))
class ServiceObservation(TypedDict):
    kind: Literal["service"]
    server: str
    service: str
    state: str


@with_config(ConfigDict(extra="forbid"))
class PayloadObservation(TypedDict):
    kind: Literal["payload"]
    path: str
    sha256: str
    size: int


@with_config(ConfigDict(extra="forbid"))
class ListingObservation(TypedDict):
    kind: Literal["listing"]
    server: str
    path: str
    mtime_ns: Optional[int]  # the folder's write time: it changes when an entry is added or removed
    names: list[str]  # the folder's files, casefolded and sorted


@with_config(ConfigDict(extra="forbid"))
class LogObservation(TypedDict):
    kind: Literal["log"]
    server: str
    path: str
    size: int  # the log's size when planned: a run's evidence starts there


_OBSERVATIONS = {"file": FileObservation, "folder": FolderObservation, "service": ServiceObservation,
                 "payload": PayloadObservation, "listing": ListingObservation, "log": LogObservation}
Observation = Annotated[Union[FileObservation, FolderObservation, ServiceObservation, PayloadObservation,
                              ListingObservation, LogObservation], Field(discriminator="kind")]


def _forbid_extra(tp: Any) -> None:
    """A key deployer does not write is refused, at any depth: the plan's dataclasses (and those
    the step kinds plan) get pydantic's extra="forbid", which they cannot declare themselves
    without depending on pydantic."""
    for arg in typing.get_args(tp):
        _forbid_extra(arg)
    if dataclasses.is_dataclass(tp) and "__pydantic_config__" not in vars(tp):
        tp.__pydantic_config__ = ConfigDict(extra="forbid")
        for hint in typing.get_type_hints(tp).values():
            _forbid_extra(hint)


@functools.cache
def _adapter(tp: Any) -> TypeAdapter:
    _forbid_extra(tp)
    return TypeAdapter(tp)


def _kind(v: Any) -> str:
    return {type(None): "null", dict: "an object", list: "a list", str: "text", bool: "true/false",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)


def _keypath(kp: KeyPath) -> str:
    out = ""
    for part in kp:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "plan"


def _fields_of(tp: Any) -> list[str]:
    if dataclasses.is_dataclass(tp):
        return [f.name for f in dataclasses.fields(tp)]
    return list(typing.get_type_hints(tp))


def _type_at(tp: Any, loc: tuple) -> Any:
    """The annotation found by following `loc` (field names and list indexes) from `tp`."""
    for part in loc:
        while typing.get_origin(tp) in (Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if isinstance(part, int) and typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        elif dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
            tp = typing.get_type_hints(tp).get(part, Any)
        else:
            return Any
    while typing.get_origin(tp) in (Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


_EXPECTED = {"int_type": "a whole number", "int_parsing": "a whole number", "int_from_float": "a whole number",
             "string_type": "text", "float_type": "a number", "bool_type": "true/false", "list_type": "a list",
             "dict_type": "an object", "dataclass_type": "an object", "dataclass_exact_type": "an object",
             "typed_dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object"}


def _problem(value: Any, tp: Any, kp: KeyPath, what: str = "") -> tuple[KeyPath, str] | None:
    """(where, what is wrong) for the first part of `value` that does not fit `tp`, or None."""
    try:
        # JSON mode: objects stand for dataclasses (as in the file), strict: no "5" for 5, no true for 1
        _adapter(tp).validate_json(json.dumps(value), strict=True)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        tag = None
        if what and len(loc) > 1 and loc[1] in _OBSERVATIONS:  # the branch a discriminated union took
            tag, loc = loc[1], loc[:1] + loc[2:]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            got = err["input"].get("kind") if isinstance(err["input"], dict) else None
            return kp + loc + ("kind",), f"unknown {what} kind {got!r}; allowed: {', '.join(_OBSERVATIONS)}"
        if err["type"] == "missing":
            return kp + loc[:-1], f"the key {loc[-1]!r} is missing"
        if err["type"] in ("unexpected_keyword_argument", "extra_forbidden"):
            allowed = _fields_of(_OBSERVATIONS[tag] if tag else _type_at(tp, loc[:-1]))
            return kp + loc, f"unknown key {loc[-1]!r}; allowed: {', '.join(allowed)}"
        if err["type"] == "literal_error" and loc[-1:] == ("state",):
            return kp + loc, f"folder state {err['input']!r} is not one of {', '.join(typing.get_args(FolderState))}"
        expected = _EXPECTED.get(err["type"], err["msg"].lower())
        return kp + loc, f"expected {expected} (got {_kind(err['input'])})"
    return None


def _path_problem(value: Any, kp: KeyPath) -> tuple[KeyPath, str] | None:
    """A path on a server, as deployer writes it: backslash-joined plain names below the SMS root."""
    parts = winpath.split(value)
    try:
        if not parts:
            raise winpath.PathRuleError("an empty path is not a file below the SMS root")
        for part in parts:
            winpath.check_component(part, "path component")
    except winpath.PathRuleError as exc:
        return kp, f"{exc}; paths in a plan are below the server's SMS root"
    if "\\".join(parts) != value:
        return kp, f"{value!r} is not a path below the SMS root as deployer writes it (such as Site.srv\\X86.bin\\Base.dll)"
    return None


def _actions_problem(actions: Any) -> tuple[KeyPath, str] | None:
    if not isinstance(actions, list):
        return ("actions",), f"expected a list (got {_kind(actions)})"
    types_ = action_types()
    for i, a in enumerate(actions):
        kp: KeyPath = ("actions", i)
        if not isinstance(a, dict):
            return kp, f"expected an action object (got {_kind(a)})"
        if not isinstance(a.get("kind"), str) or a["kind"] not in types_:  # a list is not hashable
            return kp + ("kind",), f"unknown action kind {a.get('kind')!r}; allowed: {', '.join(types_)}"
        p = _problem(a, types_[a["kind"]], kp)
        if p:
            return p
    return None


def _plan_problem(data: dict[str, Any]) -> tuple[KeyPath, str] | None:
    body = {k: v for k, v in data.items() if k != "digest"}
    # the lists have defaults in Plan, so a plan may leave them out
    p = _problem(body, Plan, ()) or _actions_problem(data.get("actions", [])) or \
        _problem(data.get("observations", []), list[Observation], ("observations",), "observation")
    if p:
        return p
    for i, obs in enumerate(data.get("observations", [])):
        if obs["kind"] in ("file", "folder", "listing", "log"):
            p = _path_problem(obs["path"], ("observations", i, "path"))
            if p:
                return p
    paths: list[tuple[KeyPath, str]] = []
    for i, a in enumerate(data.get("actions", [])):
        kind = KINDS[a["kind"]]
        paths += [(("actions", i, *sub), value) for sub, value in kind.server_paths(kind.action_from_json(a))]
    paths += [(("checks", i, "path"), c["path"]) for i, c in enumerate(data.get("checks", []))]
    for kp, value in paths:
        p = _path_problem(value, kp)
        if p:
            return p
    return None


# --- where in the file ------------------------------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")


def _line_col(text: str | bytes, offset: int) -> tuple[int, int]:
    nl = "\n" if isinstance(text, str) else b"\n"
    return text.count(nl, 0, offset) + 1, offset - (text.rfind(nl, 0, offset) + 1) + 1  # type: ignore[arg-type]


class _JsonLocator:
    """Line and column of every key and value of a JSON text that json.loads accepted.

    The json module keeps no positions, so this walks the text once more. Keys are located at
    the key itself (as the YAML loader does); a path that cannot be found falls back to its
    closest parent, and to line 1.
    """

    def __init__(self, path: Path, text: str):
        self.path = path
        self.text = text
        self.offsets: dict[KeyPath, int] = {}
        self.duplicate: KeyPath | None = None
        try:
            self._value(0, ())
        except (RecursionError, IndexError, ValueError):  # pragma: no cover - json.loads parsed it
            pass

    def __call__(self, kp: KeyPath) -> Location:
        kp = tuple(kp)
        while kp not in self.offsets and kp:
            kp = kp[:-1]
        if kp not in self.offsets:
            return Location(str(self.path), 1, 1)
        line, col = _line_col(self.text, self.offsets[kp])
        return Location(str(self.path), line, col)

    def _value(self, i: int, kp: KeyPath) -> int:
        text = self.text
        i = _WS.match(text, i).end()
        self.offsets.setdefault(kp, i)
        if text[i] == "{":
            i = _WS.match(text, i + 1).end()
            seen: set[str] = set()
            while text[i] != "}":
                start = i
                key, i = scanstring(text, i + 1)
                if key in seen and self.duplicate is None:
                    self.duplicate = kp + (key,)
                    self.offsets[kp + (key,)] = start
                seen.add(key)
                self.offsets.setdefault(kp + (key,), start)
                i = _WS.match(text, i).end() + 1  # past ':'
                i = _WS.match(text, self._value(i, kp + (key,))).end()
                if text[i] == ",":
                    i = _WS.match(text, i + 1).end()
            return i + 1
        if text[i] == "[":
            i = _WS.match(text, i + 1).end()
            n = 0
            while text[i] != "]":
                i = _WS.match(text, self._value(i, kp + (n,))).end()
                n += 1
                if text[i] == ",":
                    i = _WS.match(text, i + 1).end()
            return i + 1
        return _DECODER.raw_decode(text, i)[1]


_DECODER = json.JSONDecoder()
