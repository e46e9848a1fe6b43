"""Many files of one server at once, where its transport can (SMB 2/3: smbbatch.py), else one
at a time: a run's backups and read-backs cost the round trips of one file, not one each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from .. import failpoints
from ..model import winpath
from ..model.state import FileState
from ..plan.observe import read_file, state_of
from ..targets.base import TargetError, stat_many
from ..targets.connect import Endpoint, SiteConnection
from . import known
from .store import temp_path

if TYPE_CHECKING:
    from .undo import Undo


def read_files(ep: Endpoint, paths: Sequence[str], sizes: Sequence[int | None] | None = None
               ) -> list[FileState | None]:
    """read_file (size, write time, sha256) of each path; `sizes`: what each is expected to hold
    (a hint for how much to ask for at once). Raises the first error, as one at a time would."""
    many = getattr(ep.files, "stat_sha256_many", None)
    if many is None or len(paths) < 2:
        return [read_file(ep, p) for p in paths]
    out: list[FileState | None] = []
    for stat, sha in many(list(paths), list(sizes) if sizes is not None else None):
        if stat is None:
            out.append(None)
        elif stat.is_dir:
            out.append(FileState(-1, stat.mtime_ns, None, stat.name))
        else:
            out.append(FileState(stat.size, stat.mtime_ns, sha, stat.name))
    return out


def compared(ep: Endpoint, paths: Sequence[str], wants: Sequence[FileState | None]) -> list[FileState | None]:
    """What each path holds, read as far as comparing it with its wanted state needs: its
    sha256 where the wanted one has a sha256; a stat alone where the wanted state is identified
    by size and write time (steps/base.py by_identity: FileState.matches looks at nothing else)
    or is no file at all, so a rollback's checks read back no more than the apply's backups did."""
    out: list[FileState | None] = [None] * len(paths)
    quick = [k for k, w in enumerate(wants) if w is None or w.sha256 is None]
    rest = sorted(set(range(len(paths))) - set(quick))
    if quick:
        for k, st in zip(quick, stat_many(ep.files, [paths[k] for k in quick])):
            out[k] = state_of(st)
    if rest:
        for k, got in zip(rest, read_files(ep, [paths[k] for k in rest], [wants[k].size for k in rest])):  # type: ignore[union-attr]
            out[k] = got
    return out


def existing(conn: SiteConnection, paths: Sequence[tuple[str, str]]) -> dict[tuple[str, str], bool]:
    """Whether each (server, path) exists, asked in one batch per server whose transport can
    (stat_many); a server that cannot is left out, as is one whose batch fails (the caller asks
    those one at a time and reports what each meets)."""
    by_server: dict[str, list[str]] = {}
    for server, path in paths:
        by_server.setdefault(server, []).append(path)
    out: dict[tuple[str, str], bool] = {}
    for server, names in by_server.items():
        try:
            many = getattr(conn.endpoint(server).files, "stat_many", None)
            if many is None or len(names) < 2:
                continue
            out.update(((server, p), st is not None) for p, st in zip(names, many(names)))
        except (KeyError, TargetError):
            continue
    return out


def restore_batch(undo: "Undo", ep: Endpoint, items: Sequence[tuple[str, FileState | None, str]]) -> None:
    """Undo.restore_file of each (dest, before, backup) of one server, in batches: the files read
    at once, the backups and temporary names asked at once, every backup copied beside its file
    with the original's write time at once, the copies read back at once; then each is renamed
    over its file, one atomic step each, as before. A file that cannot be restored does not stop
    the others; the first such failure is raised at the end."""
    files = ep.files
    nows = compared(ep, [d for d, _, _ in items], [b for _, b, _ in items])
    todo: list[tuple[str, FileState, str]] = []
    for (dest, before, backup), now in zip(items, nows):
        if before is None:
            if now is not None:
                undo.say(f"  remove {ep.where(dest)} (it did not exist before)")
                files.remove(dest)
        elif not before.matches(now):  # by size and time where the plan identified it so
            todo.append((dest, before, backup))
    if not todo:
        return
    temps = [temp_path(dest, undo.run, "restore") for dest, _, _ in todo]
    asked = [b for _, _, b in todo] + temps
    stats = stat_many(files, asked)
    failure: TargetError | None = None
    ready: list[tuple[str, FileState, str, str]] = []
    for k, (dest, before, backup) in enumerate(todo):
        if stats[k] is None:
            failure = failure or TargetError(f"backup {winpath.absolute(ep.sms_root, backup)} is missing; cannot "
                                             "restore", server=ep.name, path=dest)
            continue
        if stats[len(todo) + k] is not None:
            files.remove(temps[k])
        undo.say(f"  restore {ep.where(dest)} from its backup")
        ready.append((dest, before, backup, temps[k]))
    found = {b: stats[k] for k, (_, _, b) in enumerate(todo)}  # each backup's stat: whether its record holds
    vouched = known.vouched_sources(ep, [(b, before) for _, before, b, _ in ready], [found[b] for _, _, b, _ in ready])
    errors = files.copy_many([(b, t) for _, _, b, t in ready], [before.mtime_ns for _, before, _, _ in ready])
    copied = []
    for item, error in zip(ready, errors):
        if error is not None:
            failure = failure or error
            continue
        failpoints.hit("undo.restore.written")  # the restored copy beside the file, not yet renamed
        copied.append(item)
    sums = known.vouched_copies(ep, [(t, before) for _, before, _, t in copied],
                                [v for (item, error), v in zip(zip(ready, errors), vouched) if error is None])
    rest = [k for k, s in enumerate(sums) if s is None]  # read back only the copies no record vouched for
    for k, s in zip(rest, read_files(ep, [copied[k][3] for k in rest], [copied[k][1].size for k in rest])):
        sums[k] = s
    checked = []
    for (dest, before, backup, tmp), got in zip(copied, sums):
        # its sha256; else (a before-state identified by fingerprint, steps/base.py by_identity) its size and time
        if (got is None or got.sha256 != before.sha256) if before.sha256 else not before.matches(got):
            files.remove(tmp)
            what = "sha256" if before.sha256 else "size and write time"
            failure = failure or TargetError(f"backup {backup} does not match the original's {what}; not restored",
                                             server=ep.name, path=dest)
            continue
        checked.append((tmp, dest))
    for error in files.rename_many(checked, replace=True):
        failure = failure or error
    if failure is not None:
        raise failure
