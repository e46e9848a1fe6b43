"""Outside text made safe to show: one sanitizer for every output.

Text deployer did not write (a KB or playbook title, a server's file and folder names, site
and service names, error messages that quote a file) may hold control characters: ESC
starts terminal sequences (ESC[2J clears the screen, OSC 52 writes the clipboard), NUL and
most C0 characters are illegal in XML 1.0 (the JUnit report would not parse), and none of
them may appear raw in YAML. Every renderer (console, text, JUnit, HTML, JSON, logs, the
importer's manifests) passes what it prints through `visible`, which writes each such
character as a visible escape (`\\x1b`, `\\u202e`): the reader sees that it was there and what
it was, and nothing acts on it. Tab and newline stay (they are layout, not commands).
"""

from __future__ import annotations

import re
from typing import Callable

# C0 but tab and newline, DEL, C1 (CSI \x9b and OSC \x9d included), the bidirectional
# overrides and isolates that reorder what a reader sees, line and paragraph separators,
# and the byte-order mark / zero-width no-break space.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ufffe\uffff"
                     "\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def visible(text: str) -> str:
    """`text` with every control character written as a visible escape (`\\x1b`)."""
    return UNSAFE.sub(_escape, text) if UNSAFE.search(text) else text


def visible_line(text: str) -> str:
    """One line of outside text (a cell, a name): newlines and tabs escaped too."""
    return visible(text).replace("\n", "\\n").replace("\t", "\\t")


def has_unsafe(text: str) -> bool:
    return UNSAFE.search(text) is not None


def yaml_text(dump: Callable[..., str]) -> str:
    """YAML from `dump(allow_unicode=...)`, as readable as it can be and as safe as every output:
    PyYAML writes a bidi control or a line separator raw when it may write Unicode, so a document
    holding one is dumped again with every non-ASCII character as a YAML escape (`"\\u202e"`),
    which loads back the very same text."""
    text = dump(allow_unicode=True)
    return dump(allow_unicode=False) if has_unsafe(text) else text


# A whole terminal sequence (CSI ... final byte; OSC ... BEL or ST; ESC and one byte), so that
# `blank_controls` takes "ESC[2J" as one thing, not an ESC followed by the text "[2J".
_SEQUENCE = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|(?:\x1b\]|\x9d)[^\x07\x1b\n]*(?:\x07|\x1b\\)?"
                       r"|\x1b[ -~]?")


def blank_controls(text: str) -> str:
    """`text` with each terminal sequence and control character as one space (for reading the
    text's layout; what is shown or written is `visible(text)`)."""
    return UNSAFE.sub(" ", _SEQUENCE.sub(" ", text))
