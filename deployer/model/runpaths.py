"""Where a run keeps its files on a server (`.deployer\\runs\\<run>\\...`), as names only.

The step kinds back files up under these names and the run, the undo and recovery find
them there; the names live here, below both, so that a step kind needs nothing of run/.
run/store.py describes the whole folder and re-exports these.
"""

from __future__ import annotations

from . import winpath

# deployer's own folder on each server's SMS share: journals, backups, the site lock
STATE_DIR = ".deployer"
RUNS_DIR = winpath.join(STATE_DIR, "runs")


def run_dir(run: str) -> str:
    return winpath.join(RUNS_DIR, run)


def backup_path(run: str, number: int, name: str, copy: int | None = None) -> str:
    """The backup of action `number`'s file `name` (its `copy`-th, for an action with several)."""
    tag = f"{number:03d}" if copy is None else f"{number:03d}-{copy:02d}"
    return winpath.join(run_dir(run), "backup", f"{tag}-{name}")
