"""The run journal, kept on the site server itself (`.deployer\\runs\\<run>\\`, see store.py).

Each run writes its plan (`plan.json`) and appends one JSON line per event to
`journal.jsonl`, flushed to stable storage before the action it announces runs. Any
machine that can reach the site can therefore tell what a run did, finish or undo it.

A journal is an operator's evidence, so reading one never fails on a bad line and never
drops one in silence: a line that is not a JSON object with an `event` (torn by a crash
while appending, damaged on disk, edited by hand) is kept as a `Damage` with its line
number. A damaged journal cannot be trusted to say how far a run got, so its run counts as
unfinished, and recovery works from the plan and the backups instead (undo.py). Once such
a recovery has begun (its `recover_begin` comes after every damaged line) and ended, the
run's state is what that recovery wrote: the damage is history, not a reason to refuse the
site forever. A journal that cannot be read at all (a folder in its place, a read error) is
set aside under another name by the recovery, which starts a fresh one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator

from .. import failpoints

from ..targets.base import FileTransport, TargetError
from .store import RUNS_DIR, RunState, journal_path, plan_path, run_dir

_log = logging.getLogger("deployer.journal")

# events whose "action" must be a whole number: undo and recovery index the plan with it
_ACTION_EVENTS = {"begin", "done", "backup", "staged", "undo_begin", "undone", "undo_failed"}
TERMINAL = {"committed": RunState.COMMITTED, "rolled_back": RunState.ROLLED_BACK,
            "rollback_failed": RunState.ROLLBACK_FAILED}
# events that start work on a run: a later terminal event must close it
OPENING = {"run", "rollback_begin", "recover_begin"}
# Events appended without waiting for stable storage. Each is followed, before anything
# visible changes on the site, by an event that does wait ("folders", "begin", "committed",
# every undo and recovery event), and flushing a file flushes all that was appended to it
# before: so a crash of the server loses none of them that mattered. A crash of deployer
# loses none at all (each is written to the file at once), but for an action's "done",
# which the Runner sends over SMB 2/3 with the record that follows it at once (the next action's
# "begin", the run's "verify" or "failed": one append, one round trip, for both): a kill in
# between loses the "done" of an action whose successor had not begun, and recovery rolls
# such a run back as it would have (not every action was done). This takes a run's fsyncs
# from one per event to one per action boundary.
LAZY_EVENTS = frozenset({"run", "staged", "backup", "done", "verify", "failed"})


@dataclass(frozen=True)
class Damage:
    line: int  # 1-based line of journal.jsonl; 0: the whole file
    reason: str
    last: bool  # the last line: torn by a crash while it was being appended

    def __str__(self) -> str:
        if self.line == 0:
            return f"the journal file {self.reason}"
        return f"line {self.line}: {self.reason}" + (" (the last line, torn while it was written)" if self.last else "")


@dataclass
class Events:
    """A journal's events in order, and the lines that could not be read as events."""

    items: list[dict[str, Any]] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line of each item

    @property
    def trusted(self) -> bool:
        """Every line read, or only the last one torn (a crash mid-append loses nothing that ran),
        and the journal starts as every run's does. An empty journal, or one whose first line is
        lost, cannot say which actions began."""
        return all(d.last or self._closed(d) for d in self.damage) and bool(self.items) \
            and self.items[0]["event"] == "run" and (not self.lines or self.lines[0] == 1)

    def _closed(self, d: "Damage") -> bool:
        """A line torn as the last one after the run had ended (a killed `prune` or rollback
        appending its first record), which the next writer found so and closed (its event, on
        the following line, says so): nothing had changed the site after the end it follows,
        so it is as harmless as a torn last line; else the run would count "interrupted" for
        ever after the next command. A torn line before the run's end keeps the journal
        untrusted once closed: it may hide an action that began, and the plan decides."""
        ended = any(ln < d.line and e["event"] in TERMINAL for ln, e in zip(self.lines, self.items))
        return ended and any(ln == d.line + 1 and e.get("after_torn_line") == d.line
                             for ln, e in zip(self.lines, self.items))

    def recovered_from_plan(self) -> bool:
        """A recovery, which works from the plan when the journal is damaged, began after every
        damaged line: its own events are then what counts for the run's state."""
        starts = [ln for ln, e in zip(self.lines, self.items) if e["event"] == "recover_begin"]
        return bool(starts) and all(d.line < starts[-1] for d in self.damage)

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.items if e["event"] == kind]

    def actions(self, kind: str) -> set[int]:
        return {e["action"] for e in self.of(kind)}


def _event_problem(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return f"a JSON {type(rec).__name__}, not an event object"
    if not isinstance(rec.get("event"), str):
        return "an object without an \"event\" name"
    if rec["event"] in _ACTION_EVENTS and (not isinstance(rec.get("action"), int) or isinstance(rec["action"], bool)):
        return f"a {rec['event']!r} event without a whole action number"
    return None


def parse_events(data: bytes) -> Events:
    out = Events()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, raw in enumerate(lines, 1):
        last = i == len(lines)
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            out.damage.append(Damage(i, "not a JSON line", last))
            continue
        problem = _event_problem(rec)
        if problem:
            out.damage.append(Damage(i, problem, last))
            continue
        out.items.append(rec)
        out.lines.append(i)
    return out


JOURNAL_AT_ONCE = 256 << 10  # a journal up to this size is read with others in one batch (read_many)


def read_events(files: FileTransport, run: str) -> Events:
    return _read_all_events(files, [run])[0]


def _read_all_events(files: FileTransport, runs: list[str]) -> list[Events]:
    """read_events of each run: where the transport reads many small files at once (read_many),
    every journal in one round trip; one it does not answer (missing, a folder, larger, an
    error) is read on its own, and says what is wrong with it."""
    many = getattr(files, "read_many", None)
    got: list[bytes | None] = [None] * len(runs)
    if many is not None and runs:
        try:
            got = many([journal_path(r) for r in runs], JOURNAL_AT_ONCE)
        except TargetError:
            pass  # each journal on its own, which names its error
    return [parse_events(data) if data is not None else _read_events_alone(files, run) for run, data in zip(runs, got)]


def _read_events_alone(files: FileTransport, run: str) -> Events:
    path = journal_path(run)
    stat = files.stat(path)
    if stat is None:
        return Events()
    if stat.is_dir:
        return Events(damage=[Damage(0, "is a folder, not a file", False)])
    try:
        return parse_events(b"".join(files.read_chunks(path)))
    except TargetError as exc:
        return Events(damage=[Damage(0, f"cannot be read ({exc})", False)])


class Journal:
    def __init__(self, files: FileTransport, run: str):
        self.files = files
        self.run = run
        self.dir = run_dir(run)
        self.path = journal_path(run)
        self.events = Events()

    def create(self, plan_json: dict[str, Any]) -> None:
        # Each instant of this (and of the journal's first lines) can be a process's last: a run
        # folder without a plan, an empty or half-written plan.json, no journal. Nothing on the
        # site has changed yet, and `recover` closes such a run as "nothing done" (recover.py).
        failpoints.hit("run.create.begin")
        self.files.makedirs(self.dir)
        failpoints.hit("run.create.folder")
        # one line: json's C encoder (an indent falls back to the pure-Python one, most of a fleet site's journal CPU)
        data = json.dumps(plan_json, sort_keys=True).encode()
        self.files.write_file(plan_path(self.run), self._plan_chunks(data), exclusive=True)
        failpoints.hit("run.create.plan.written")

    @staticmethod
    def _plan_chunks(data: bytes) -> Iterator[bytes]:
        failpoints.hit("run.create.plan.empty")  # the file is created, none of its bytes written
        half = len(data) // 2
        yield data[:half]
        failpoints.hit("run.create.plan.partial")
        yield data[half:]

    def write(self, event: str, **data: Any) -> dict[str, Any]:
        return self.write_many([(event, data)])[0]

    def write_many(self, events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Records appended in one write (one round trip over a network), durable if any of them
        must be: a reader sees each as its own line, as if written one by one."""
        if not events:
            return []
        lines, recs = [], []
        for event, data in events:
            rec = {"seq": len(self.events.items) + len(self.events.damage) + 1,
                   "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event, **data}
            torn = self.events.damage[-1] if self.events.damage and self.events.damage[-1].last else None
            if torn is not None:
                rec["after_torn_line"] = torn.line  # so readers still see it as a torn last line (Events._closed)
            line = (json.dumps(rec, sort_keys=True) + "\n").encode()
            if torn is not None:
                # a torn last line has no newline: start on a line of our own, or this event is torn too
                line = b"\n" + line
                self.events.damage[-1] = Damage(self.events.damage[-1].line, self.events.damage[-1].reason, False)
            lines.append(line)
            recs.append(rec)
            self.events.items.append(rec)
            self.events.lines.append(len(self.events.items) + len(self.events.damage))
        try:
            self.files.append(self.path, b"".join(lines), durable=any(e not in LAZY_EVENTS for e, _ in events))
        except BaseException:
            del self.events.items[-len(recs):]  # not written: as if never asked
            del self.events.lines[-len(recs):]
            raise
        for line in lines:
            _log.debug("journal %s: %s", self.run, line.decode().strip())
        return recs

    def set_aside_if_unreadable(self) -> str | None:
        """A journal that cannot be read or appended to (a folder in its place, a read error)
        is renamed, kept as evidence, and a fresh one started that says so; the fresh journal
        is not trusted (it does not start with the run), so undo works from the plan."""
        whole = [d for d in self.events.damage if d.line == 0]
        if not whole:
            return None
        kept = f"{self.path}.unreadable-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
        self.files.rename(self.path, kept)
        self.events = Events(damage=[])
        self.write("journal_set_aside", reason=str(whole[0]), kept=kept)
        return kept

    @classmethod
    def open(cls, files: FileTransport, run: str) -> "Journal":
        j = cls(files, run)
        j.events = read_events(files, run)
        return j


def read_plan(files: FileTransport, run: str) -> dict[str, Any]:
    """The plan a run carried out; a missing or damaged plan.json is said in words (exit 4:
    without it nobody can tell from the site what the run changed)."""
    from ..errors import RestoreFailed

    path = plan_path(run)
    try:
        data = json.loads(b"".join(files.read_chunks(path)).decode("utf-8"))
    except (TargetError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise RestoreFailed(f"the plan of run {run} ({path} on the site server) cannot be read ({exc}); without it "
                            "deployer cannot tell what the run changed. Its backups are under "
                            f"{run_dir(run)}\\backup on each server") from None
    if not isinstance(data, dict):
        raise RestoreFailed(f"the plan of run {run} ({path} on the site server) is not a plan (a JSON "
                            f"{type(data).__name__}); its backups are under {run_dir(run)}\\backup on each server")
    return data


def run_plan(files: FileTransport, run: str):
    """read_plan, as a Plan; a plan.json of the wrong shape is said in words, never a traceback."""
    from ..errors import RestoreFailed
    from ..plan.model import Plan

    data = read_plan(files, run)
    try:
        return Plan.from_json(data)
    except Exception as exc:  # noqa: BLE001 - any shape a damaged file can take
        raise RestoreFailed(f"the plan of run {run} ({plan_path(run)} on the site server) is damaged "
                            f"({type(exc).__name__}: {exc}); its backups are under {run_dir(run)}\\backup on each "
                            "server") from None


def state_of(events: Events) -> RunState:
    """The run's state: the last terminal event, unless work was started on it after that
    (a rollback or recovery that was itself interrupted). A journal damaged before its last
    line cannot vouch for any state: the run counts as interrupted, for `recover` to judge,
    until a recovery that began after the damage ends it."""
    if not events.trusted and not events.recovered_from_plan():
        return RunState.INTERRUPTED
    for ev in reversed(events.items):
        if ev["event"] in TERMINAL:
            return TERMINAL[ev["event"]]
        if ev["event"] in OPENING:
            return RunState.INTERRUPTED
    return RunState.INTERRUPTED


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
    damaged: list[str] = field(default_factory=list)  # journal lines that could not be read


def unfinished_runs(files: FileTransport) -> list[RunInfo]:
    """Runs that left the site in a state nobody vouches for: interrupted, or not fully rolled back."""
    return [r for r in list_runs(files) if RunState(r.state).unfinished]


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def list_runs(files: FileTransport) -> list[RunInfo]:
    try:
        entries = files.listdir(RUNS_DIR)  # one round trip where a stat came first
    except TargetError:
        if files.stat(RUNS_DIR) is None:
            return []
        raise
    names = [e.name for e in entries if e.is_dir]
    try:
        journals = dict(zip(names, _read_all_events(files, names)))
    except TargetError:
        journals = {}  # each run read on its own below, its error kept with it
    out = []
    for name in names:
        try:
            events = journals[name] if name in journals else read_events(files, name)
        except TargetError as exc:  # never drop a run from the list: it may have left the site half-done
            events = Events(damage=[Damage(0, f"cannot be read ({exc})", False)])
        damaged = [str(d) for d in events.damage]
        if not events.items:
            out.append(RunInfo(name, RunState.INTERRUPTED.value, _planned_kb(files, name), None, None,
                               None, None, 0, damaged=damaged))
            continue
        first = events.items[0]
        state = state_of(events)
        ended = _text(events.items[-1].get("ts")) if state != RunState.INTERRUPTED else None
        who = f"{first.get('user')}@{first.get('host')}" if first.get("user") else None
        kb = _text(first.get("kb")) if first["event"] == "run" else _planned_kb(files, name)
        out.append(RunInfo(name, state.value, kb, _text(first.get("command")),
                           _text(first.get("ts")), ended, who, len(events.actions("done")),
                           _text(first.get("fingerprint")), damaged))
    # by when they started (to the millisecond): run ids name the second only, and two runs of one
    # second (a quick retry, a test) would otherwise be ordered by their random suffix
    return sorted(out, key=lambda r: (r.started or "", r.run))


def _planned_kb(files: FileTransport, run: str) -> str | None:
    """The article a run applied, from its plan, when its journal lost the line that says it."""
    try:
        return _text(read_plan(files, run).get("kb"))
    except Exception:  # noqa: BLE001 - a damaged plan is reported by the commands that need it
        return None
