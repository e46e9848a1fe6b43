"""Which files deployer wrote: the rule behind "a writer never overwrites a file it did not
write without --force".

No sidecar files and no database: a file is recognised by what is in it, per format.

- JSON (reports, schemas): a top-level "generator": "deployer VERSION" key, which the writer
  adds as the first key of the object; a saved plan by its own format number and digest (a
  key added to a plan would break its digest); a JSON Schema (`schema -o`) by its $id, so
  that the file is the schema deployer prints and ships.
- JUnit XML: a `<!-- generator: deployer VERSION -->` comment after the XML declaration.
- HTML: `<meta name="generator" content="deployer VERSION">` (the templates carry it).
- YAML (inventory from-rservice, pcm convert): the first-line comment deployer writes.
- Plain text reports (verify, scan, fleet --report FILE): text has no comment syntax, and a
  marker line would be noise in a report meant for people, so these are recognised by the
  headline deployer starts them with.
- PCMDUMP text (`pcm convert --to text`) copies PCMDUMP's own layout byte for byte: deployer's
  file cannot be told from a captured one, so replacing one always takes --force.

The version is not compared: a report of an older deployer is still deployer's.

Writing such a file (`write_atomic`, `check_replace`) lives here too, below every layer that
writes one: a saved plan (plan/), a report, a KB import's manifest.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path

from .. import __version__
from ..errors import InputError, Location

PLAN_FORMAT = 1  # a saved plan's format number (plan/model.py): how a plan file is known as deployer's
GENERATOR = f"deployer {__version__}"
SCHEMA_ID = "https://deployer.invalid/schemas/"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
_XML_MARK = f"<!-- generator: {GENERATOR} -->\n"

# first lines (or the first two, joined by "\n") of deployer's text and YAML outputs
_HEADLINES = [
    re.compile(r'\{\s*"generator":\s*"deployer[ "]'),                        # JSON as the writer marks it
    re.compile(r'<\?xml[^>]*\?>\s*<!-- generator: deployer[ -]'),             # JUnit XML
    re.compile(r'<!DOCTYPE html>.*?<meta name="generator" content="deployer[ "]', re.S | re.I),
    re.compile(r"# PCM service hosts from "),                                # inventory from-rservice
    re.compile(r"# PCM instruction records \(Q123499\) in deployer's form"),  # pcm convert --to yaml
    # verify and plan (text), under the --note line when one was given
    re.compile(r"(Note: [^\n]*\n)?[^\n]*\nFile attribute verification on site "),
    re.compile(r"(Note: [^\n]*\n)?Plan: [^\n]* on site "),
    re.compile(r"Scan against \d+ hotfix"),                                  # scan (text)
    re.compile(r"Site +Result +Run +Actions +Seconds +Detail\n"),            # fleet --report FILE (text), before
    re.compile(r"[^\n]*\nCommand: deployer "),                                # fleet --report FILE (text): heading
]
_HEAD_BYTES = 8192          # enough for an HTML head; JSON marks sit on the first line
_MAX_PLAN_BYTES = 16 << 20  # as plan.saved reads


def mark(text: str) -> str:
    """`text` as the writer puts it in a file: JSON and JUnit XML get their generator mark
    (HTML carries its own, from the templates). Anything else is unchanged."""
    if text.startswith("{") and _json_ours(text):
        return text  # a saved plan, a schema: deployer's by their own keys
    if text.startswith("{\n"):
        body = text[2:].lstrip("\n")
        indent = body[: len(body) - len(body.lstrip(" "))] or " "
        sep = "," if body.lstrip().startswith('"') else ""
        return "{\n" + f'{indent}"generator": "{GENERATOR}"{sep}\n' + body
    if text.startswith("{") and text.rstrip().endswith("}"):  # compact JSON
        inner = text[1:].lstrip()
        return '{"generator": "' + GENERATOR + '"' + (", " if not inner.startswith("}") else "") + inner
    if text.startswith(_XML_DECL) and "<!-- generator:" not in text[: len(_XML_DECL) + 80]:
        return _XML_DECL + _XML_MARK + text[len(_XML_DECL):]
    return text


def _json_ours(text: str) -> bool:
    """A saved plan (its format number and digest) or a JSON Schema of deployer's (its $id)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if data.get("format") == PLAN_FORMAT and isinstance(data.get("digest"), str):
        return True
    return str(data.get("$id", "")).startswith(SCHEMA_ID)


def replaceable(path: Path) -> bool:
    """True when `path` may be written without --force: nothing is there, it is empty, it is
    not a regular file (/dev/null, a FIFO), it is a stream the shell opened (/dev/stdout,
    /dev/fd/N, even onto a file), or deployer wrote it."""
    if stream_path(path):
        return True  # /dev/stdout and the like: the operator's shell decided where it goes
    try:
        st = path.stat()  # follows a symbolic link: what matters is the file it names
    except FileNotFoundError:
        return True
    except OSError:
        return True  # unreadable metadata: the write itself will say why it fails
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return True
    return written_by_deployer(path, st.st_size)


def written_by_deployer(path: Path, size: int) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
            if head.lstrip().startswith(b"{") and size <= _MAX_PLAN_BYTES:
                head += fh.read()
    except OSError:
        return False
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if any(p.match(text) for p in _HEADLINES):
        return True
    return text.lstrip().startswith("{") and _json_ours(text)


def _umask() -> int:
    """This process's umask, read without changing it where Linux says it (threads may be writing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


NOT_OURS = "exists and was not written by deployer; give --force to replace it"


def check_replace(path: Path, *, what: str, force: bool = False) -> None:
    """Refuse, before anything runs, a path the operator named that would replace a file
    deployer did not write (this module says how deployer's files are recognised)."""
    loc = Location(str(path))
    if path.is_dir():
        raise InputError(f"is a folder; give a file name to write {what} to", loc)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot write {what} here: the folder {parent} does not exist", loc)
    if not force and not replaceable(path):
        raise InputError(NOT_OURS, loc)


def write_atomic(path: Path, text: str, *, what: str, force: bool = False) -> None:
    """Write a file the operator asked for (a report, a plan) whole or not at all: a temporary
    file beside it, then a rename. A path that cannot be written, or a file there that
    deployer did not write (without --force), is bad input (exit 2), said in words, and
    leaves nothing behind. The file carries its generator mark (mark, above)."""
    loc = Location(str(path))
    check_replace(path, what=what, force=force)
    text = mark(text)
    if _special(path):
        # /dev/null, /dev/stdout, a FIFO: written in place; a rename would replace the device.
        # Appended: /dev/stdout may be a file the shell opened (`>>`), and reopening it for
        # "w" would truncate what it holds.
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise InputError(f"cannot write {what} ({exc.strerror or exc})", loc) from None
        return
    parent = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InputError(f"cannot write {what} here ({exc.strerror or exc})", loc) from None
    try:
        # every report and saved plan gets the mode a shell's `>` would give (0644 under the
        # usual umask 022), not mkstemp's 0600: they hold no secret and are meant to be shared
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"cannot write {what} ({exc.strerror or exc})", loc) from None


def _special(path: Path) -> bool:
    """A device, a FIFO, or a stream the shell set up (/dev/stdout, /dev/fd/N, /proc/self/fd/N,
    which may name a regular file): written in place, never renamed over."""
    if stream_path(path):
        return True
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def stream_path(path: Path) -> bool:
    where = os.path.abspath(path)
    return where.startswith(("/dev/", "/proc/"))
