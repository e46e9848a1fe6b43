"""How many command logs are kept: the newest DEPLOYER_LOG_KEEP (default 50) in the default log
folder, and none older than DEPLOYER_LOG_DAYS days (default 30). 0 turns a bound off.

A day of work wrote 44 logs that were never removed. Only files named as deployer names its
logs (`<time>-<pid>-<command>.log`) are ever removed, and only from the default folder: a
`--log FILE` is the operator's to keep.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

KEEP_DEFAULT = 50
DAYS_DEFAULT = 30
NAME = re.compile(r"\d{8}T\d{6}-\d+-[a-z0-9_-]+\.log\Z")


def _setting(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return max(0, int(raw))
    except ValueError:  # a bad setting never stops a command; the default holds
        return default


def prune(folder: Path, *, keep_also: Path | None = None) -> list[Path]:
    """Remove the logs beyond the bounds; returns what was removed (never `keep_also`)."""
    keep, days = _setting("DEPLOYER_LOG_KEEP", KEEP_DEFAULT), _setting("DEPLOYER_LOG_DAYS", DAYS_DEFAULT)
    try:
        logs = sorted((p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()),
                      key=lambda p: p.name, reverse=True)  # the name starts with its time: newest first
    except OSError:
        return []
    cutoff = time.time() - days * 86400 if days else None
    removed = []
    for i, p in enumerate(logs):
        if p == keep_also:
            continue
        try:
            old = cutoff is not None and p.stat().st_mtime < cutoff
            if (keep and i >= keep) or old:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed
