"""Windows path rules, applied before anything reaches a target.

Inside deployer a path on a server is a `RelPath`: the components below that server's
SMS root (the SMS_SHRx share). Every transport is rooted there, so a path that cannot be
expressed as a RelPath (absolute elsewhere, `..`, a drive change, a device name) never
reaches a target at all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NewType

RelPath = NewType("RelPath", str)  # backslash-joined components below the SMS root

_ILLEGAL = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
# Device names, with Windows' own additions: COM and LPT with superscript digits (¹²³) and the
# console's CONIN$ and CONOUT$.
_RESERVED = ({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"} | {f"COM{i}" for i in "123456789¹²³"}
             | {f"LPT{i}" for i in "123456789¹²³"})
MAX_COMPONENT = 255
MAX_PATH = 259  # MAX_PATH (260) less the terminating NUL; SMS 1.2 predates long-path support


class PathRuleError(ValueError):
    """A path breaks a Windows rule or leaves the SMS root."""


def check_component(name: str, what: str = "name") -> str:
    if not name:
        raise PathRuleError(f"empty {what}")
    if name in (".", ".."):
        raise PathRuleError(f"{what} {name!r} is a relative step; only plain names are allowed")
    bad = _ILLEGAL.search(name)
    if bad:
        ch = bad.group(0)
        shown = repr(ch) if ch.isprintable() else f"\\x{ord(ch):02x}"
        raise PathRuleError(f'{what} {name!r} contains {shown}; Windows names cannot contain < > : " / \\ | ? * or control characters')
    if name[-1] in ". ":
        raise PathRuleError(f"{what} {name!r} ends with a dot or space, which Windows strips")
    # Windows ignores spaces before the extension when it looks for a device: "NUL .txt" is NUL.
    if name.split(".")[0].rstrip(" ").upper() in _RESERVED:
        raise PathRuleError(f"{what} {name!r} is a reserved Windows device name")
    if len(name) > MAX_COMPONENT:
        raise PathRuleError(f"{what} is longer than {MAX_COMPONENT} characters")
    return name


def split(path: str) -> list[str]:
    """Split on either separator, dropping empty components (`a\\\\b` is `a\\b` on Windows)."""
    return list(parts_of(path))


_SEPARATORS = re.compile(r"[\\/]+")


@lru_cache(maxsize=16384)
def parts_of(path: str) -> tuple[str, ...]:
    """split, as a tuple, remembered: a run asks for the same few hundred paths thousands of times."""
    return tuple(p for p in _SEPARATORS.split(path) if p != "")


def parse_root(root: str) -> tuple[str, list[str]]:
    r"""Parse an absolute SMS root such as `C:\SMS`: returns (drive letter, components)."""
    m = re.fullmatch(r"([A-Za-z]):[\\/](.*)", root)
    if not m:
        raise PathRuleError(f"{root!r} is not an absolute Windows path such as C:\\SMS")
    parts = split(m.group(2))
    for p in parts:
        check_component(p, "folder")
    return m.group(1).upper(), parts


def relative_to_root(path: str, root: str) -> RelPath:
    r"""`C:\SMS\Site.srv\X86.bin` under root `C:\SMS` -> `Site.srv\X86.bin` (case-insensitive).

    Raises PathRuleError for anything that is not strictly below the root.
    """
    drive, root_parts = parse_root(root)
    m = re.fullmatch(r"([A-Za-z]):[\\/](.*)", path)
    if not m:
        if path.startswith(("\\\\", "//")):
            raise PathRuleError(f"{path!r} is a UNC path; write paths as {{{{ sms_root }}}}\\...")
        if path.startswith(("\\", "/")):
            raise PathRuleError(f"{path!r} has no drive; write paths as {{{{ sms_root }}}}\\...")
        raise PathRuleError(f"{path!r} is not an absolute path below the SMS root {root}; write paths as "
                            "{{ sms_root }}\\...")
    if m.group(1).upper() != drive:
        raise PathRuleError(f"{path!r} is on drive {m.group(1).upper()}:, outside the SMS root {root}; write paths "
                            "as {{ sms_root }}\\...")
    parts = split(m.group(2))
    for p in parts:
        if p == "..":
            raise PathRuleError(f"{path!r} contains '..'; paths may not climb out of the SMS root {root}")
    parts = [p for p in parts if p != "."]
    head = [p.casefold() for p in parts[: len(root_parts)]]
    if head != [p.casefold() for p in root_parts]:
        raise PathRuleError(f"{path!r} is outside the SMS root {root}; write paths as {{{{ sms_root }}}}\\...")
    rest = parts[len(root_parts):]
    if not rest:  # the docstring's "strictly below": the root itself is not a folder below it
        raise PathRuleError(f"{path!r} is the SMS root {root} itself; name a folder below it, such as "
                            "{{ sms_root }}\\Site.srv")
    for p in rest:
        check_component(p, "path component")
    rel = "\\".join(rest)
    full_len = len(root) + 1 + len(rel)
    if full_len > MAX_PATH:
        raise PathRuleError(f"{path!r} is {full_len} characters; Windows allows at most {MAX_PATH}")
    return RelPath(rel)


def join(*parts: str) -> RelPath:
    return RelPath("\\".join(p for part in parts for p in split(part)))


def parent(path: str) -> RelPath:
    return RelPath("\\".join(split(path)[:-1]))


def basename(path: str) -> str:
    parts = split(path)
    return parts[-1] if parts else ""


def absolute(root: str, rel: str) -> str:
    """The path as an operator on the server would type it."""
    return root.rstrip("\\/") + ("\\" + rel if rel else "")


def same(a: str, b: str) -> bool:
    return [p.casefold() for p in split(a)] == [p.casefold() for p in split(b)]


@lru_cache(maxsize=16384)
def key(path: str) -> str:
    """A case-insensitive identity for a path (NTFS compares names case-insensitively)."""
    return "\\".join(p.casefold() for p in parts_of(path))
