"""Secrets must never appear in output, logs, journals, plans or reports.

Fixtures that make up a password register it here; every CLI run in the suite records its
output here; at the end of the session everything the suite produced (that output, and
every file under the session's temporary folder: journals, saved plans, reports, server
logs) is searched for every registered password, in UTF-8 and in UTF-16 (what SMB and
Windows speak). A hit fails the session, naming where.
"""

from __future__ import annotations

import os
from pathlib import Path

PASSWORDS: set[str] = set()
OUTPUTS: list[tuple[str, str]] = []  # (what produced it, text)
MAX_FILE = 8 << 20
# hotfix binaries and their stand-ins: only payload bytes are ever written into them, and
# there are gigabytes of them across a session's lab copies
SKIP_SUFFIXES = {".exe", ".dll"}


def register(password: str) -> str:
    if len(password) < 8:
        raise ValueError("test passwords must be long enough not to occur by chance")
    PASSWORDS.add(password)
    return password


def record(label: str, *texts: str) -> None:
    OUTPUTS.extend((label, t) for t in texts if t)


def _needles() -> list[tuple[str, bytes]]:
    out = []
    for pw in sorted(PASSWORDS):
        out += [(pw, pw.encode("utf-8")), (pw, pw.encode("utf-16-le"))]
    return out


def scan(root: Path | None) -> list[str]:
    """Where a registered password appears: in recorded output, or in a file under root."""
    needles = _needles()
    if not needles:
        return []
    hits = []
    for label, text in OUTPUTS:
        for pw, _ in needles[::2]:
            if pw in text:
                hits.append(f"output of {label}")
    if root is not None and root.exists():
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                if p.suffix.casefold() in SKIP_SUFFIXES:
                    continue
                try:
                    if p.is_symlink() or p.stat().st_size > MAX_FILE:
                        continue
                    data = p.read_bytes()
                except OSError:
                    continue
                if any(b in data for _, b in needles):
                    hits.append(str(p))
    return sorted(set(hits))
