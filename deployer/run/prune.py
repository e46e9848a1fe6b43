"""Backup retention: how much space each run's backups hold, and removing old ones.

Every run keeps, on every server it touched, a byte-for-byte copy of each file it replaced
(`.deployer\\runs\\<run>\\backup\\`): about 6 MB per run per server on an SMS 1.2 site. They
are what `rollback` restores, so two runs always keep theirs: the last committed run (the
one `rollback` undoes) and any unfinished run (`recover` needs them). Pruning keeps each
run's journal and plan on the site server, so `runs` still tells the history, and records
a `pruned` event there first: a run whose backups are gone (even partly, if pruning was cut
short) is refused by `rollback` with a message instead of failing half-way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

from ..model import winpath
from ..errors import InputError, TargetError
from .context import RunContext
from .journal import Journal, RunInfo, list_runs, read_events
from .store import RUNS_DIR, RunState, run_dir, whoami
from ..model.inventory import SiteRef
from ..targets.base import FileTransport
from ..targets.connect import SiteConnection

if TYPE_CHECKING:
    from ..report.out import Out

Say = Callable[[str], None]
BACKUP = "backup"
PRUNED = "pruned"
_AGE = re.compile(r"\s*([0-9]{1,5})\s*([dhw])\s*\Z", re.I)  # ASCII digits: \d takes any script's


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `2w`."""
    m = _AGE.fullmatch(text)
    if not m:
        raise InputError(f"--older-than {text!r} is not an age; write a number of days, hours or weeks: 30d, 12h, 2w")
    n, unit = int(m.group(1)), m.group(2).lower()
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]


def _listing(files: FileTransport, path: str) -> list | None:
    """The folder's entries, None if there is no such folder: one request where a stat came first
    (the stat is asked only when the listing fails, to tell a missing folder from an error)."""
    try:
        return files.listdir(path)
    except TargetError:
        if files.stat(path) is None:
            return None
        raise


def tree_sizes(files: FileTransport, paths: list[str]) -> list[int]:
    """The bytes under each path (0 if missing); every folder of one depth, of all the paths,
    listed in one batch where the transport can (listdir_many), else one at a time."""
    many = getattr(files, "listdir_many", None)
    totals = [0] * len(paths)
    level = list(enumerate(paths))
    while level:
        got = many([p for _, p in level]) if many is not None else \
            [_listing(files, p) for _, p in level]
        deeper = []
        for (k, path), entries in zip(level, got):
            if isinstance(entries, TargetError):
                if files.stat(path) is None:
                    continue
                raise entries
            for entry in entries or []:
                if entry.is_dir:
                    deeper.append((k, winpath.join(path, entry.name)))
                else:
                    totals[k] += entry.size
        level = deeper
    return totals


def remove_tree(files: FileTransport, path: str) -> None:
    entries = _listing(files, path)
    if entries is None:
        return
    for entry in entries:
        child = winpath.join(path, entry.name)
        if entry.is_dir:
            remove_tree(files, child)
        else:
            files.remove(child)
    files.rmdir(path)


@dataclass
class RunSpace:
    """The backup space one run holds, per server."""

    run: str
    servers: dict[str, int] = field(default_factory=dict)
    pruned: str | None = None  # when its backups were pruned
    unreached: list[str] = field(default_factory=list)  # servers that could not be measured (kept, pruned later)

    @property
    def bytes(self) -> int:
        return sum(self.servers.values())


def space(conn: SiteConnection, runs: list[RunInfo]) -> dict[str, RunSpace]:
    """Per run, the bytes its backup folders hold on each server of the site."""
    out = {r.run: RunSpace(r.run) for r in runs}
    for name, ep in conn.endpoints.items():
        if ep is conn.site_server:
            sizes = _sizes(ep.files, out)  # the journals live here: without it there is nothing to say
        else:
            try:  # one server off the network never hides the others' backups (nor the history)
                sizes = _sizes(ep.files, out)
            except TargetError:
                for s in out.values():
                    s.unreached.append(name)
                continue
        for run, size in sizes.items():
            out[run].servers[name] = size
    site_files = conn.site_server.files
    for r in runs:
        ev = pruned_event(site_files, r.run)
        out[r.run].pruned = ev.get("ts") if ev else None
    return out


def _sizes(files: FileTransport, runs: dict[str, RunSpace]) -> dict[str, int]:
    names = [e.name for e in _listing(files, RUNS_DIR) or [] if e.is_dir and e.name in runs]
    sizes = tree_sizes(files, [winpath.join(run_dir(n), BACKUP) for n in names])
    return {n: size for n, size in zip(names, sizes) if size}


def pruned_event(files: FileTransport, run: str) -> dict | None:
    return next((e for e in reversed(read_events(files, run).items) if e.get("event") == PRUNED), None)


def refuse_if_pruned(files: FileTransport, run: str) -> None:
    """Called by `rollback` before it changes anything."""
    ev = pruned_event(files, run)
    if ev:
        raise InputError(f"run {run} cannot be rolled back: its backups were pruned ({ev.get('ts')}, by "
                         f"{ev.get('user')}@{ev.get('host')}); only runs whose backups are kept can be undone")


@dataclass
class Choice:
    run: RunInfo
    space: RunSpace
    remove: bool
    why: str


def choose(runs: list[RunInfo], spaces: dict[str, RunSpace], *, keep: int | None, older_than: timedelta | None,
           now: datetime) -> list[Choice]:
    """Which runs lose their backups: beyond the newest `keep`, and started before now - older_than;
    never the last committed run nor an unfinished one."""
    committed = [r for r in runs if r.state == RunState.COMMITTED]
    last_committed = committed[-1].run if committed else None
    # runs[-keep:], not runs[len(runs) - keep:]: with fewer runs than `keep` the latter is a
    # negative start that drops the oldest runs from "the newest N" (and prunes them)
    newest = {r.run for r in runs[-keep:]} if keep else set()
    out = []
    for r in runs:
        s = spaces[r.run]
        if s.bytes == 0:
            why, remove = ("pruned already" if s.pruned else "holds no backups"), False
        elif r.run == last_committed:
            why, remove = "the last committed run (rollback restores its backups)", False
        elif RunState(r.state).unfinished:
            why, remove = f"unfinished ({r.state.replace('_', ' ')}): recover needs its backups", False
        elif r.run in newest:
            why, remove = f"one of the newest {keep}", False
        elif older_than is not None and _started(r) > now - older_than:
            why, remove = f"younger than {_age(older_than)}", False
        else:
            why, remove = "old", True
        out.append(Choice(r, s, remove, why))
    return out


def _started(r: RunInfo) -> datetime:
    if r.started:
        try:
            return datetime.fromisoformat(r.started)
        except ValueError:
            pass
    try:  # the run id starts with its UTC start time
        return datetime.strptime(r.run[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)  # unknown age: treat as new, so it is kept


def _age(d: timedelta) -> str:
    if d.days and not d.seconds:
        return f"{d.days} day{'s' if d.days != 1 else ''}"
    hours = d.total_seconds() / 3600
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


@dataclass
class PruneResult:
    choices: list[Choice]
    dry_run: bool
    declined: bool = False

    @property
    def removed(self) -> list[Choice]:
        return [c for c in self.choices if c.remove]

    @property
    def freed(self) -> int:
        return sum(c.space.bytes for c in self.removed)


def prune(conn: SiteConnection, *, keep: int | None, older_than: timedelta | None, dry_run: bool, say: Say,
          confirm: Callable[[PruneResult], bool] = lambda r: True, now: datetime | None = None) -> PruneResult:
    """Decide and (unless dry_run) remove. The caller holds the site lock when not a dry run."""
    if keep is None and older_than is None:
        raise InputError("say what to keep: --keep N (the newest N runs keep their backups) and/or --older-than AGE "
                         "(such as 30d)")
    if keep is not None and keep < 0:
        raise InputError(f"--keep {keep} is negative; give the number of newest runs whose backups stay (0 or more)")
    files = conn.site_server.files
    runs = list_runs(files)
    choices = choose(runs, space(conn, runs), keep=keep, older_than=older_than, now=now or datetime.now(timezone.utc))
    result = PruneResult(choices, dry_run)
    if dry_run or not result.removed:
        return result
    if not confirm(result):
        result.declined = True
        return result
    left: dict[str, str] = {}  # server -> why its backups could not be removed
    for c in result.removed:
        left.update({server: f"{server} could not be reached" for server in c.space.unreached})
    for c in result.removed:
        # journal first: if pruning is cut short, rollback already knows the backups are incomplete
        Journal.open(files, c.run.run).write(PRUNED, bytes=c.space.bytes, servers=sorted(c.space.servers),
                                              **whoami())
        done = []
        for server in c.space.servers:
            # one server that cannot be reached never stops the others (as in the undo): what it
            # keeps is measured again, and removed, by the next prune (the run is journaled pruned)
            if server in left:
                continue
            ep = conn.endpoint(server)
            try:
                remove_tree(ep.files, winpath.join(run_dir(c.run.run), BACKUP))
                if ep is not conn.site_server and not ep.files.listdir(run_dir(c.run.run)):
                    ep.files.rmdir(run_dir(c.run.run))  # nothing else of the run lives on that server
            except TargetError as exc:
                left[server] = str(exc)
                continue
            done.append(server)
        if done:
            freed = sum(c.space.servers[s] for s in done)
            say(f"Removed the backups of run {c.run.run}: {human(freed)} on {', '.join(done)}.")
    if left:
        raise TargetError("pruning could not remove every backup: " + "; ".join(f"{why}" for why in left.values())
                          + f". The backups on {', '.join(left)} are kept, every other server's were removed; run "
                          "`deployer prune` again once " + ("it" if len(left) == 1 else "they") + " can be reached")
    return result


def human(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def with_space(conn: SiteConnection) -> list[tuple[RunInfo, RunSpace]]:
    runs = list_runs(conn.site_server.files)
    spaces = space(conn, runs)
    return [(r, spaces[r.run]) for r in runs]


def run(site: SiteRef, *, keep: int | None, older_than: timedelta | None, dry_run: bool, ctx: RunContext,
        confirm: Callable[[PruneResult], bool] = lambda r: True, break_lock: bool = False) -> PruneResult:
    """`deployer prune`: a dry run only reads; a real one holds the site lock while it removes."""
    from .session import locked, session

    with session(site) as conn:
        if dry_run:
            return prune(conn, keep=keep, older_than=older_than, dry_run=True, say=ctx.say)
        with locked(conn, "prune", break_lock, ctx, allow_unfinished=True):
            return prune(conn, keep=keep, older_than=older_than, dry_run=False, say=ctx.say, confirm=confirm)


def runs_with_space(site: SiteRef) -> list[tuple[RunInfo, RunSpace]]:
    from .session import session

    with session(site) as conn:
        return with_space(conn)


def run_row(r: RunInfo, s: RunSpace) -> dict:
    """One run as `runs -f json` lists it, for a site and for each site of a fleet."""
    return {**r.__dict__, "backup_bytes": s.bytes, "backup_servers": s.servers, "pruned": s.pruned,
            "backup_unreached": s.unreached}


def describe(s: RunSpace) -> str:
    """The Backups column of `runs`."""
    if s.pruned:
        return "pruned"
    unknown = f" ({', '.join(s.unreached)} not reached)" if s.unreached else ""
    if not s.bytes:
        return "?" + unknown if unknown else "-"
    n = len(s.servers)
    return f"{human(s.bytes)} on {n} server{'s' if n != 1 else ''}{unknown}"


def render(result: PruneResult, out: "Out") -> None:
    rows = [[c.run.run, c.run.state, describe(c.space),
             ("would remove" if result.dry_run else "removed" if not result.declined else "kept (declined)")
             if c.remove else f"kept: {c.why}"] for c in result.choices]
    if not rows:
        out.line("No runs recorded on the site: nothing to prune.")
        return
    out.table(["Run", "State", "Backups", "Decision"], rows)
    out.line()
    n = len(result.removed)
    if not n:
        out.line("Nothing to prune.", "good")
    elif result.dry_run:
        out.line(f"Dry run: pruning would remove the backups of {n} run{'s' if n != 1 else ''} and free "
                 f"{human(result.freed)}. Nothing was changed.")
    elif result.declined:
        out.line("Nothing was removed.")
    else:
        out.line(f"Pruned {n} run{'s' if n != 1 else ''}: {human(result.freed)} freed.", "good")
