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

from ..errors import InputError, Location

MAX_FILE_BYTES = 1 << 20  # a playbook, manifest or inventory is a few KB; 1 MiB is generous
MAX_NODES = 100_000  # after alias expansion
MAX_DEPTH = 64
# Python refuses to convert integers of more than 4,300 digits to or from text (a ValueError
# far from the file); no value deployer reads needs more than a few dozen digits.
MAX_NUMBER_CHARS = 100

KeyPath = tuple[str | int, ...]

_INT = re.compile(r"[-+]?[0-9]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_SURROGATE = re.compile("[\ud800-\udfff]")


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


class _Refused(yaml.composer.ComposerError):
    """Valid YAML that deployer refuses (a limit): reported without "YAML syntax error"."""


def _alias_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias inside it is expanded."""
    if id(node) not in memo:
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(_alias_size(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(_alias_size(k, memo) + _alias_size(v, memo) for k, v in node.value)
        else:
            size = 1
        memo[id(node)] = min(size, MAX_NODES + 1)  # capped: sizes can grow exponentially
    return memo[id(node)]


class _Composer(yaml.SafeLoader):
    """SafeLoader used only to compose nodes; tags other than the core ones are refused.

    Composing is where a hostile file does its damage, so the limits are enforced here, where
    each event still has its line and column: nesting depth (before Python's own recursion
    limit turns it into an error without a line), aliases that refer to the node they are in
    (a cycle), and aliases that expand the document beyond MAX_NODES ("billion laughs"),
    reported at the alias that crosses the limit rather than wherever conversion happens to be.
    """

    def __init__(self, stream: Any):
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        self._finished: set[str] = set()  # anchors whose node is complete
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self.anchors and event.anchor not in self._finished:
                raise _Refused(
                    None, None, f"alias *{event.anchor} refers to the node it is part of (a cycle); "
                    "a document must be a tree", event.start_mark)
            node = super().compose_node(parent, index)
            self._expanded += _alias_size(node, self._sizes)
            if self._expanded > MAX_NODES:
                raise _Refused(
                    None, None, f"alias *{event.anchor} expands the document to more than {MAX_NODES:,} values "
                    "(a \"billion laughs\" document?); keep files small and aliases few", event.start_mark)
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels is not allowed", event.start_mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if event.anchor is not None:
            self._finished.add(event.anchor)
        return node


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
    if len(value) > MAX_NUMBER_CHARS and (_INT.match(value) or _HEX.match(value) or _FLOAT.match(value)):
        raise ValueError(f"a number of {len(value):,} characters is not accepted (at most {MAX_NUMBER_CHARS}); "
                         "quote it if it is text")
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

    def scalar(self, node: yaml.ScalarNode) -> Any:
        try:
            value = _scalar(node)
        except ValueError as exc:  # a number too long to convert
            raise self.fail(node, str(exc)) from None
        # "\ud800" in a double-quoted scalar decodes to a lone surrogate: not a character, and
        # a UnicodeEncodeError wherever the value is later written out or hashed.
        if isinstance(value, str):
            bad = _SURROGATE.search(value)
            if bad:
                raise self.fail(node, f"text contains an unpaired surrogate (\\u{ord(bad.group()):04x}), which is "
                                      "not a Unicode character; write the character itself")
        return value

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
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(child, kp + (i,), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(key_node, "YAML merge keys (<<) are not supported; write the keys out")
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(key_node, "mapping keys must be plain strings")
                key = self.scalar(key_node)
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
        if isinstance(exc, _Refused):
            raise InputError(problem, loc) from None
        if exc.context and problem.startswith("but "):  # "but found another document": say what was expected
            problem = f"{exc.context}, {problem}"
        elif exc.context and exc.context_mark and ("end of stream" in problem or "<stream end>" in problem):
            # an unclosed quote or bracket runs to the end of the file: point where it was opened
            m = exc.context_mark
            loc = Location(str(path), m.line + 1, m.column + 1)
            problem = f"{exc.context} that starts here, {problem}: it is never closed"
        raise InputError(f"YAML syntax error: {problem}", loc) from None
    except yaml.reader.ReaderError as exc:
        # Not a MarkedYAMLError: the reader refuses control characters (and NUL) with only an
        # offset into the text, which is turned into a line and column here.
        line, col = _line_col(text, exc.position)
        what = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise InputError(f"YAML syntax error: unacceptable character {what} ({exc.reason}); YAML allows printable "
                         "Unicode text, tab, CR and LF", Location(str(path), line, col)) from None
    except yaml.YAMLError as exc:  # pragma: no cover - every other YAML error is marked
        raise InputError(f"YAML error: {exc}", Location(str(path))) from None
    except RecursionError:  # pragma: no cover - the composer stops at MAX_DEPTH first
        raise InputError(
            f"YAML nesting is too deep (more than {MAX_DEPTH} levels are not allowed)", Location(str(path))
        ) from None
    if root is None:
        return Document(path=path, data=None, text=text)
    conv = _Converter(path)
    data = conv.convert(root, (), 0)
    return Document(path=path, data=data, marks=conv.marks, text=text)


def _line_col(text: str | bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of a character (or byte) offset."""
    nl = "\n" if isinstance(text, str) else b"\n"
    line = text.count(nl, 0, offset) + 1  # type: ignore[arg-type]
    return line, offset - (text.rfind(nl, 0, offset) + 1) + 1  # type: ignore[arg-type]


def read_input(path: Path, *, noun: str = "file", expected: str = "a YAML file", max_bytes: int | None = None,
               error: type[InputError] = InputError) -> bytes:
    """The bytes of an input file, or an `error` that says why not (never an OSError)."""
    try:
        if max_bytes is not None:
            size = path.stat().st_size
            if size > max_bytes:
                # Name the line where the limit is crossed, reading no more than the limit.
                with open(path, "rb") as fh:
                    line = fh.read(max_bytes).count(b"\n") + 1
                raise error(
                    f"{noun} is {size:,} bytes; at most {max_bytes:,} bytes are accepted for {expected} "
                    "(the limit is reached on this line)",
                    Location(str(path), line),
                )
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{noun} not found", Location(str(path))) from None
    except IsADirectoryError:
        raise error(f"is a directory, expected {expected}", Location(str(path))) from None
    except PermissionError:
        raise error(f"cannot read the {noun} (permission denied)", Location(str(path))) from None
    except OSError as exc:  # a name too long, a loop of links...: still bad input, not a crash
        raise error(f"cannot read the {noun} ({exc.strerror or exc})", Location(str(path))) from None


def load_yaml(path: Path | str) -> Document:
    path = Path(path)
    raw = read_input(path, max_bytes=MAX_FILE_BYTES)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(raw, exc.start)
        raise InputError(f"file is not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as UTF-8",
                         Location(str(path), line, col)) from None
    if "\x00" in text:
        line, col = _line_col(text, text.index("\x00"))
        raise InputError("file contains a NUL byte; expected YAML text (a binary file?)", Location(str(path), line, col))
    return parse_yaml(text, path)
