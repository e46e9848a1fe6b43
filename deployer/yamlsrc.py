"""Safe YAML loading that remembers where every value came from.

PyYAML's SafeLoader follows YAML 1.1, where `19:00` is the integer 1140, `no` is False
and `1999-09-10` becomes a date object. KB articles are full of such strings, so this
loader composes the node tree with SafeLoader (no object construction, no tags) and
converts scalars itself with YAML 1.2 core-schema rules: only true/false/null and plain
decimal or hex numbers are typed, everything else stays a string.

While converting, it records the line and column of every value under its key path so
that validation errors can point at `file:line:column`. It also refuses what a
hostile or broken file could use to hurt us: duplicate keys, anchors that expand into
huge documents ("billion laughs"), very deep nesting and oversized files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, Location

MAX_FILE_BYTES = 1 << 20  # a playbook, manifest or inventory is a few KB; 1 MiB is generous
MAX_NODES = 100_000  # after alias expansion
MAX_DEPTH = 64

KeyPath = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


@dataclass
class Document:
    """A loaded YAML file: its data and where each value was written."""

    path: Path
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    text: str = ""

    @property
    def name(self) -> str:
        return str(self.path)

    def location(self, keypath: KeyPath = ()) -> Location:
        """The closest recorded position for a key path (walking up to the parent)."""
        kp = tuple(keypath)
        while kp not in self.marks and kp:
            kp = kp[:-1]
        line, col = self.marks.get(kp, (1, 1))
        return Location(self.name, line, col)

    def error(self, keypath: KeyPath, message: str) -> InputError:
        return InputError(message, self.location(keypath), field=format_keypath(keypath) or None)


def format_keypath(keypath: KeyPath) -> str:
    out = ""
    for part in keypath:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Composer(yaml.SafeLoader):
    """SafeLoader used only to compose nodes; tags other than the core ones are refused."""


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    if node.style:  # quoted or block scalar: always a string
        return value
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if _INT.match(value):
        return int(value)
    if _HEX.match(value):
        return int(value, 16)
    if _FLOAT.match(value) and any(c.isdigit() for c in value):
        return float(value)
    return value


_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:timestamp",  # implicit resolution only; we keep the text
    "tag:yaml.org,2002:merge",
}


class _Converter:
    def __init__(self, path: Path):
        self.path = path
        self.nodes = 0
        self.marks: dict[KeyPath, tuple[int, int]] = {}

    def fail(self, node: yaml.Node, message: str) -> InputError:
        m = node.start_mark
        return InputError(message, Location(str(self.path), m.line + 1, m.column + 1))

    def convert(self, node: yaml.Node, kp: KeyPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node,
                f"document expands to more than {MAX_NODES:,} values (anchors/aliases "
                "repeated too often?); keep files small and aliases few",
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels is not allowed")
        if node.tag not in _CORE_TAGS:
            raise self.fail(node, f"YAML tag {node.tag!r} is not allowed; plain values only")
        self.marks.setdefault(kp, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(child, kp + (i,), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(key_node, "YAML merge keys (<<) are not supported; write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain strings")
                key = _scalar(key_node)
                key = str(key) if key is not None else ""
                if key in out:
                    raise self.fail(key_node, f"duplicate key {key!r}; each key may appear once")
                self.marks[kp + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.convert(value_node, kp + (key,), depth + 1)
            return out
        raise self.fail(node, "unsupported YAML node")


def parse_yaml(text: str, path: Path) -> Document:
    try:
        root = yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(str(path), mark.line + 1, mark.column + 1) if mark else Location(str(path))
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(f"YAML syntax error: {problem}", loc) from None
    except yaml.YAMLError as exc:  # pragma: no cover - composer errors are all marked
        raise InputError(f"YAML error: {exc}", Location(str(path))) from None
    except RecursionError:
        raise InputError(
            f"YAML nesting is too deep (more than {MAX_DEPTH} levels are not allowed)", Location(str(path))
        ) from None
    if root is None:
        return Document(path=path, data=None, text=text)
    conv = _Converter(path)
    data = conv.convert(root, (), 0)
    return Document(path=path, data=data, marks=conv.marks, text=text)


def load_yaml(path: Path | str) -> Document:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(
                f"file is {size:,} bytes; at most {MAX_FILE_BYTES:,} bytes are accepted for a YAML file",
                Location(str(path)),
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", Location(str(path))) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a YAML file", Location(str(path))) from None
    except PermissionError:
        raise InputError("cannot read the file (permission denied)", Location(str(path))) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError("file is not UTF-8 text", Location(str(path), line)) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError("file contains a NUL byte; expected YAML text", Location(str(path), line))
    return parse_yaml(text, path)
