"""The run journal, kept on the site server itself (`.deployer\\runs\\<run>\\`).

Each run writes its plan (`plan.json`) and appends one JSON line per event to
`journal.jsonl`, flushed to stable storage before the action it announces runs. Any
machine that can reach the site can therefore tell what a run did, finish or undo it.
Backups live beside it on every server the run touched (`backup\\`).
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import winpath
from .sms.layout import STATE_DIR
from .targets.base import FileTransport, TargetError

RUNS_DIR = winpath.join(STATE_DIR, "runs")

# terminal and intermediate states of a run, as its journal tells them
COMMITTED = "committed"
ROLLED_BACK = "rolled_back"
ROLLBACK_FAILED = "rollback_failed"
INTERRUPTED = "interrupted"  # no terminal event: the process died mid-run
TERMINAL = {"committed": COMMITTED, "rolled_back": ROLLED_BACK, "rollback_failed": ROLLBACK_FAILED}


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.urandom(2).hex()}"


def run_dir(run: str) -> str:
    return winpath.join(RUNS_DIR, run)


def whoami() -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry in some containers
        user = str(os.getuid())
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid()}


class Journal:
    def __init__(self, files: FileTransport, run: str):
        self.files = files
        self.run = run
        self.dir = run_dir(run)
        self.path = winpath.join(self.dir, "journal.jsonl")
        self.events: list[dict[str, Any]] = []

    def create(self, plan_json: dict[str, Any]) -> None:
        self.files.makedirs(self.dir)
        data = json.dumps(plan_json, indent=1, sort_keys=True).encode()
        self.files.write_file(winpath.join(self.dir, "plan.json"), [data], exclusive=True)

    def write(self, event: str, **data: Any) -> dict[str, Any]:
        rec = {"seq": len(self.events) + 1, "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
               "event": event, **data}
        self.files.append(self.path, (json.dumps(rec, sort_keys=True) + "\n").encode())
        self.events.append(rec)
        return rec

    @classmethod
    def open(cls, files: FileTransport, run: str) -> "Journal":
        j = cls(files, run)
        j.events = read_events(files, run)
        return j


def read_events(files: FileTransport, run: str) -> list[dict[str, Any]]:
    path = winpath.join(run_dir(run), "journal.jsonl")
    if files.stat(path) is None:
        return []
    text = b"".join(files.read_chunks(path)).decode("utf-8", "replace")
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line: the process died while appending it
    return events


def read_plan(files: FileTransport, run: str) -> dict[str, Any]:
    path = winpath.join(run_dir(run), "plan.json")
    return json.loads(b"".join(files.read_chunks(path)))


# events that start work on a run: a later terminal event must close it
OPENING = {"run", "rollback_begin", "recover_begin"}


def state_of(events: list[dict[str, Any]]) -> str:
    """The run's state: the last terminal event, unless work was started on it after that
    (a rollback or recovery that was itself interrupted)."""
    for ev in reversed(events):
        if ev["event"] in TERMINAL:
            return TERMINAL[ev["event"]]
        if ev["event"] in OPENING:
            return INTERRUPTED
    return INTERRUPTED


UNFINISHED = {INTERRUPTED, ROLLBACK_FAILED}


def unfinished_runs(files: FileTransport) -> list["RunInfo"]:
    """Runs that left the site in a state nobody vouches for: interrupted, or not fully rolled back."""
    return [r for r in list_runs(files) if r.state in UNFINISHED]


@dataclass
class RunInfo:
    run: str
    state: str
    kb: str | None
    command: str | None
    started: str | None
    ended: str | None
    who: str | None
    actions_done: int
    fingerprint: str | None = None  # of the plan it ran


def list_runs(files: FileTransport) -> list[RunInfo]:
    if files.stat(RUNS_DIR) is None:
        return []
    out = []
    for entry in files.listdir(RUNS_DIR):
        if not entry.is_dir:
            continue
        try:
            events = read_events(files, entry.name)
        except TargetError:
            continue
        if not events:
            out.append(RunInfo(entry.name, INTERRUPTED, None, None, None, None, None, 0))
            continue
        first = events[0]
        done = sum(1 for e in events if e["event"] == "done")
        ended = events[-1]["ts"] if state_of(events) != INTERRUPTED else None
        out.append(RunInfo(entry.name, state_of(events), first.get("kb"), first.get("command"), first.get("ts"),
                           ended, f"{first.get('user')}@{first.get('host')}", done, first.get("fingerprint")))
    return sorted(out, key=lambda r: r.run)
