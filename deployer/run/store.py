"""Everything a run keeps on a server, in one place.

On each server's SMS share deployer owns one folder, `.deployer`:

    .deployer\\lock                          the site lock (site server only)
    .deployer\\runs\\<run>\\plan.json         the plan the run carries out (site server)
    .deployer\\runs\\<run>\\journal.jsonl     one JSON line per event (site server)
    .deployer\\runs\\<run>\\backup\\NNN-name  the files a run replaced, on their own server
    .deployer\\known.json                    the site's known hashes (site server; known.py)

and, for the few moments between upload and swap, a temporary name beside each file it
replaces (`<file>.~dpl-<run tail>-new`, `-restore` while undoing). Nothing else under an
SMS root is written by deployer.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from enum import Enum
from typing import Any

from ..targets import temps
from ..model import winpath
from ..model.runpaths import RUNS_DIR, STATE_DIR, backup_path, run_dir  # noqa: F401 (the names step kinds use)
from ..targets.temps import staged_name as temp_path  # noqa: F401

LOCK_PATH = winpath.join(STATE_DIR, "lock")
TEMP_MARK = temps.DEPLOYER.suffix  # every temporary name is registered in deployer/targets/temps.py


class RunState(str, Enum):
    """A run's state as its journal tells it (the values are what `runs -f json` prints)."""

    NOTHING = "nothing"  # the plan was empty: no run was recorded
    COMMITTED = "committed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    INTERRUPTED = "interrupted"  # no terminal event: the process died mid-run
    FINISHED = "finished"  # recover completed a run whose every action had run (then committed)

    def __str__(self) -> str:
        return self.value

    @property
    def unfinished(self) -> bool:
        return self in (RunState.INTERRUPTED, RunState.ROLLBACK_FAILED)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.urandom(2).hex()}"


def journal_path(run: str) -> str:
    return winpath.join(run_dir(run), "journal.jsonl")


def plan_path(run: str) -> str:
    return winpath.join(run_dir(run), "plan.json")


def whoami() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}
