"""Reading a site's state: one way to read a file or a service, used by the planner, by the
re-check under the lock, by a run's checks and by the undo.

`read_file` and `read_service` read a file's state and a service's. During planning every
read of the site goes through the Observer, which caches it and records it for the plan's
fingerprint: a file's state (and content), a folder, a folder's listing, a service, a file
read for what is in it (a version resource, a copy list), a log's size (where a run's
evidence starts). `changes` reads again what a plan observed and says, in words, what is
different now: a saved plan is refused when any reading no longer holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..model import winpath
from ..errors import InputError
from ..targets.base import CaseResolver, FileStat, ServiceError, TargetError, local_sha256, sha256_seen, stat_many
from ..targets.connect import Endpoint, SiteConnection
from ..model.state import FileState
from ..sms.fileversion import find_version
from .model import ABSENT


def read_file(ep: Endpoint, rel: str, *, content: bool = True) -> FileState | None:
    """Size, write time (and sha256 with content=True) of a file; size -1 for a folder."""
    both = getattr(ep.files, "stat_sha256", None) if content else None
    if both is not None:  # a transport that asks for both in one round trip (SMB 2/3)
        stat, sha = both(rel)
    else:
        stat = ep.files.stat(rel)
        sha = None
    if stat is None:
        return None
    if stat.is_dir:
        return FileState(-1, stat.mtime_ns, None, stat.name)
    if content and sha is None:
        sha = sha256_seen(ep.files, rel, stat)
    return FileState(stat.size, stat.mtime_ns, sha, stat.name)


def holds(ep: Endpoint, rel: str, want: FileState | None, *, copied: bool = False) -> bool:
    """Whether the file is `want` (None: absent), read only when its size and write time say it
    may be: a file of another size or time is not `want`, whatever its bytes (a site reset's
    copy not made yet, a restore still to do), so its content is not downloaded to say so.
    copied: the file is a copy the site's own programs make of content deployer knows (the site
    reset's Helper.srv copies, Maintenance Manager's Logon.srv ones): with that content's size
    and write time it is taken as that content, as rsync's quick check and verify's comparison
    with the source take it (run/known.py records it so; --checksum reads it)."""
    return _holds(ep, rel, want, ep.files.stat(rel), copied)


def holds_many(ep: Endpoint, items: list[tuple[str, FileState | None]], *, copied: bool = False) -> list[bool]:
    """holds() of each (path, want) on one server, their stats in one batch where the transport
    can (a poll of many copies costs one round trip while none of them is there yet)."""
    stats = stat_many(ep.files, [rel for rel, _ in items])
    return [_holds(ep, rel, want, stat, copied) for (rel, want), stat in zip(items, stats)]


def _holds(ep: Endpoint, rel: str, want: FileState | None, stat: FileStat | None, copied: bool) -> bool:
    if want is None or stat is None:
        return want is None and stat is None
    if stat.is_dir or (stat.size, stat.mtime_ns) != (want.size, want.mtime_ns):
        return False
    if want.sha256 is None:
        return True
    quick = getattr(ep.files, "sha256_as_copied", None) if copied else None
    sha = quick(rel, stat, want.sha256) if quick is not None else None
    return (sha or sha256_seen(ep.files, rel, stat)) == want.sha256


def state_of(stat: FileStat | None) -> FileState | None:
    """read_file(content=False) of a stat already taken."""
    if stat is None:
        return None
    return FileState(-1 if stat.is_dir else stat.size, stat.mtime_ns, None, stat.name)


def read_service(ep: Endpoint, name: str) -> str:
    """A service's state, or ABSENT when it is not installed (Windows error 1060)."""
    try:
        return ep.services.query(name).state
    except ServiceError as exc:
        if exc.winerror != 1060:
            raise
        return ABSENT


def folder_state(ep: Endpoint, rel: str) -> str:
    stat = ep.files.stat(rel)
    return "missing" if stat is None else ("folder" if stat.is_dir else "file")


class Observer:
    """Reads the target for the planner, caching, and records every observation for the fingerprint."""

    def __init__(self, conn: SiteConnection):
        self.conn = conn
        self.records: dict[tuple, dict[str, Any]] = {}
        self._files: dict[tuple[str, str, bool], FileState | None] = {}
        self._case: dict[str, CaseResolver] = {}
        self._listings: dict[tuple[str, str], list[FileStat] | None] = {}
        self._contents: dict[tuple[str, str], bytes | None] = {}
        self._versions: dict[tuple[str, str], str | None] = {}
        self._ahead: dict[tuple[str, str], str] = {}  # sha256 read ahead by prefetch(), taken by file()

    def _resolver(self, ep: Endpoint) -> CaseResolver:
        if ep.name not in self._case:
            self._case[ep.name] = CaseResolver(ep.files)
        return self._case[ep.name]

    def real_case(self, ep: Endpoint, rel: str) -> str:
        return self._resolver(ep)(rel)

    def file(self, ep: Endpoint, rel: str, *, content: bool) -> FileState | None:
        key = (ep.name, winpath.key(rel), content)
        if key not in self._files:
            self._refuse_case_twins(ep, rel)
            state = self._from_listing(ep, rel, content)
            self._files[key] = state
            rec_key = ("file", ep.name, winpath.key(rel))
            if rec_key not in self.records or content:
                self.records[rec_key] = {"kind": "file", "server": ep.name, "path": rel,
                                         "state": None if state is None else asdict(state)}
        return self._files[key]

    def _refuse_case_twins(self, ep: Endpoint, rel: str) -> None:
        """Windows cannot hold two names that differ only in case in one folder, but a Samba
        share or an SFTP tree on Linux can: patching one would leave the other (perhaps the
        image a service runs) old while verification passes on the first. Refused before
        anything is written; one listing per folder."""
        folder = winpath.parent(rel)
        fkey = (ep.name, winpath.key(folder))
        if fkey not in self._listings:
            try:
                self._listings[fkey] = ep.files.listdir(folder)
            except TargetError:
                self._listings[fkey] = None  # no folder, no twins; reading the file says the rest
            else:  # the listing spells every name in the folder: real_case needs no stat for them
                self._resolver(ep).seed(folder, self._listings[fkey] or [])
        name = winpath.basename(rel).casefold()
        twins = [e.name for e in self._listings[fkey] or [] if e.name.casefold() == name]
        if len(twins) > 1:
            raise InputError(f"{ep.where(folder)} holds {len(twins)} files whose names differ only in "
                             f"case: {', '.join(sorted(twins))}. Windows treats them as one file, so deployer cannot "
                             "tell which one is in use; remove or rename all but one, then plan again")

    def prefetch_listings(self, wanted: list[tuple[Endpoint, list[str]]]) -> None:
        """The folders steps are about to read files of, listed in batches where the transports
        can: a server's in one listdir_many (SMB 2/3: one round trip for all, not one a folder),
        and servers that share one SMB 2/3 session together (listdir_many_together: one round
        trip for all of them). Each listing is kept as _refuse_case_twins keeps its own; a folder
        that cannot be listed is left for file() and listdir() to ask and report as before.
        Records nothing: the reads that use a listing record what they take from it."""
        groups: dict[int, list[tuple[Endpoint, list[str]]]] = {}
        for ep, folders in wanted:
            todo = list({winpath.key(f): f for f in folders if (ep.name, winpath.key(f)) not in self._listings}.values())
            if todo and getattr(ep.files, "listdir_many", None) is not None:
                shared = getattr(ep.files, "listdir_many_together", None) is not None
                groups.setdefault(id(ep.files.link) if shared else id(ep), []).append((ep, todo))
        for group in groups.values():
            if sum(len(todo) for _, todo in group) < 2:
                continue
            try:
                if len(group) > 1:
                    got = group[0][0].files.listdir_many_together([(ep.files, todo) for ep, todo in group])
                else:
                    got = [group[0][0].files.listdir_many(group[0][1])]
            except TargetError:
                continue  # each is listed, and its error reported, in its turn
            for (ep, todo), listings in zip(group, got):
                for folder, listing in zip(todo, listings):
                    if not isinstance(listing, TargetError):
                        self._listings[(ep.name, winpath.key(folder))] = listing
                        self._resolver(ep).seed(folder, listing)

    def listdir(self, ep: Endpoint, folder: str) -> list[FileStat]:
        """The folder's entries, listed once per plan (planning writes nothing, so a listing taken
        for the case-twin check answers a step's listing too); errors as ep.files.listdir's.
        The files' names are recorded, with the folder's write time: a step that plans from a
        listing (replication copies each file of Client.src) is stale when a file appears there
        or goes. A folder's write time changes when an entry is added, removed or renamed (NTFS,
        Samba, Linux), so the staleness check lists the folder again only when it did: the
        re-check under the lock costs no round trip for it."""
        listing = self._listings.get((ep.name, winpath.key(folder)))
        if listing is None:  # not listed yet, or the listing failed: ask (and raise) as before
            listing = ep.files.listdir(folder)
            self._listings[(ep.name, winpath.key(folder))] = listing
            self._resolver(ep).seed(folder, listing)
        stat = self._resolver(ep).stat(folder)  # taken when the step asked whether it is a folder
        self.records[("listing", ep.name, winpath.key(folder))] = {
            "kind": "listing", "server": ep.name, "path": folder, "mtime_ns": None if stat is None else stat.mtime_ns,
            "names": _names(listing)}
        return listing

    def content(self, ep: Endpoint, rel: str, limit: int) -> bytes | None:
        """A small file's bytes (None: missing, a folder, or over `limit`), read once; its sha256 is
        recorded, so a change to what was read makes the plan stale."""
        key = (ep.name, winpath.key(rel))
        if key not in self._contents:
            state = self.file(ep, rel, content=False)
            data = None
            if state is not None and 0 <= state.size <= limit:
                data = b"".join(ep.files.read_chunks(rel))
                self._read(ep, rel, state, hashlib.sha256(data).hexdigest())
            self._contents[key] = data
        return self._contents[key]

    def prefetch_contents(self, ep: Endpoint, rels: list[str], limit: int) -> None:
        """content() of several small files, read in one batch where the transport can (SMB 2/3:
        read_many, the round trips of one file for all of them). Each is recorded as content()
        records it (its sha256, for the staleness check); a file whose bytes do not match the size
        it was just seen with (it changed in between) is left for content() to read on its own."""
        many = getattr(ep.files, "read_many", None)
        if many is None:
            return
        todo: list[tuple[str, FileState]] = []
        for rel in rels:
            if (ep.name, winpath.key(rel)) in self._contents:
                continue
            state = self.file(ep, rel, content=False)
            if state is not None and 0 <= state.size <= limit:
                todo.append((self.real_case(ep, rel), state))
        if len(todo) < 2:
            return
        try:
            got = many([r for r, _ in todo], limit)
        except TargetError:
            return  # content() reads each and reports its error in its turn
        for (rel, state), data in zip(todo, got):
            if data is not None and len(data) == state.size:
                self._read(ep, rel, state, hashlib.sha256(data).hexdigest())
                self._contents[(ep.name, winpath.key(rel))] = data

    def version(self, ep: Endpoint, rel: str) -> str | None:
        """The file version in a file's version resource (None: none, or no file), read once with
        its sha256 in the same pass: the version is what the file's content says, so the content
        is what the plan's staleness check compares."""
        key = (ep.name, winpath.key(rel))
        if key not in self._versions:
            state = self.file(ep, rel, content=False)
            version = None
            if state is not None and state.size >= 0:
                h = hashlib.sha256()
                chunks = iter(ep.files.read_chunks(rel))

                def hashed():
                    for c in chunks:
                        h.update(c)
                        yield c

                version = find_version(hashed())
                for c in chunks:  # find_version stops at the version: the rest of the file is hashed too
                    h.update(c)
                self._read(ep, rel, state, h.hexdigest())
            self._versions[key] = version
        return self._versions[key]

    def _read(self, ep: Endpoint, rel: str, state: FileState, sha256: str) -> None:
        full = FileState(state.size, state.mtime_ns, sha256, state.name)
        self._files[(ep.name, winpath.key(rel), True)] = full
        self.records[("file", ep.name, winpath.key(rel))] = {"kind": "file", "server": ep.name, "path": rel,
                                                              "state": asdict(full)}

    def log_size(self, ep: Endpoint, rel: str) -> int:
        """A log's size now: where the lines a run adds will start (0: no log). A log grows all the
        time, so what is recorded is only that it is at least this long: a log replaced by a
        shorter one since (rotated, cleared) would put the run's evidence past its end."""
        stat = ep.files.stat(rel)
        size = stat.size if stat is not None and not stat.is_dir else 0
        self.records[("log", ep.name, winpath.key(rel))] = {"kind": "log", "server": ep.name, "path": rel,
                                                             "size": size}
        return size

    def _from_listing(self, ep: Endpoint, rel: str, content: bool) -> FileState | None:
        """read_file, answered from the folder's listing where the transport's listing entry is
        what its stat returns (SMB 2/3: a stat is a one-name QUERY_DIRECTORY on the folder).
        Planning writes nothing, so the listing taken for the case-twin check is still the
        folder's state: a file's stat costs no round trip, its content one read."""
        listing = self._listings.get((ep.name, winpath.key(winpath.parent(rel))))
        if (listing is None or not getattr(ep.files, "listing_is_stat", False) or not winpath.parent(rel)
                or set('*?<>"') & set(winpath.basename(rel))):  # stat says what is wrong with such a name
            return read_file(ep, rel, content=content)
        listed = self._listed(ep, rel)
        state = state_of(listed)
        if listed is not None and state is not None and content and state.size >= 0:
            state.sha256 = self._ahead.pop((ep.name, winpath.key(rel)), None) or sha256_seen(ep.files, rel, listed)
        return state

    def _listed(self, ep: Endpoint, rel: str) -> FileStat | None:
        """The file's entry in the listing this plan took of its folder (None: not listed, or no listing)."""
        name = winpath.basename(rel).casefold()
        listing = self._listings.get((ep.name, winpath.key(winpath.parent(rel)))) or []
        return next((e for e in listing if e.name.casefold() == name), None)

    def prefetch(self, ep: Endpoint, rels: list[str]) -> None:
        """Files a step is about to ask for with content=True, read in one batch where the
        transport can (SMB 2/3: stat_sha256_many, one round trip for many files instead of one
        each); file() then takes each sha256 from here. Only what the folder's listing shows as
        that very file (same size and write time) is kept; anything else, and any error, is left
        for file() to ask and report as before."""
        many = getattr(ep.files, "stat_sha256_many", None)
        if many is None or not getattr(ep.files, "listing_is_stat", False):
            return
        todo: list[tuple[str, FileStat]] = []
        for rel in rels:
            if (ep.name, winpath.key(rel), True) in self._files or not winpath.parent(rel):
                continue
            try:
                self._refuse_case_twins(ep, rel)
            except InputError:
                continue  # file() says so, in its turn
            stat = self._listed(ep, rel)
            if stat is not None and not stat.is_dir:
                known = getattr(ep.files, "sha256_if_known", None)  # run/known.py: a recorded hash that holds
                sha = known(rel, stat) if known is not None else None
                if sha is not None:
                    self._ahead[(ep.name, winpath.key(rel))] = sha
                else:
                    todo.append((rel, stat))
        if len(todo) < 2:
            return
        try:
            got = many([r for r, _ in todo], [st.size for _, st in todo])
        except TargetError:
            return
        for (rel, listed), (now, sha) in zip(todo, got):
            if now is not None and sha is not None and (now.size, now.mtime_ns) == (listed.size, listed.mtime_ns):
                self._ahead[(ep.name, winpath.key(rel))] = sha

    def folder(self, ep: Endpoint, rel: str) -> str:
        # a transport that stats several paths at once asks for every folder on the way too (which
        # real_case then needs); planning writes nothing, so a folder asked again is not read again
        resolver = self._resolver(ep)
        if getattr(ep.files, "stat_many", None) is not None:
            resolver.prefetch([rel])
        stat = resolver.stat(rel)
        state = "missing" if stat is None else ("folder" if stat.is_dir else "file")
        self.records[("folder", ep.name, winpath.key(rel))] = {"kind": "folder", "server": ep.name, "path": rel,
                                                                 "state": state}
        return state

    def service(self, ep: Endpoint, name: str) -> str:
        state = read_service(ep, name)
        self.records[("service", ep.name, name.upper())] = {"kind": "service", "server": ep.name, "service": name,
                                                             "state": state}
        return state

    def payload(self, path: Path, sha256: str, size: int) -> None:
        self.records[("payload", str(path))] = {"kind": "payload", "path": str(path), "sha256": sha256, "size": size}

    def list(self) -> list[dict[str, Any]]:
        return [self.records[k] for k in sorted(self.records, key=lambda k: tuple(str(p) for p in k))]


def changes(conn: SiteConnection, observations: list[dict[str, Any]], *, content: bool = True,
            payload_sha256: Callable[[Path], str | None] | None = None) -> list[str]:
    """What changed since the observations were made, in words (empty: nothing).

    content=False compares sizes and write times only, without reading every file again.
    payload_sha256: how to hash a local payload (a fleet's PayloadCache hashes each once)."""
    local = payload_sha256 or (lambda p: local_sha256(p) if p.is_file() else None)
    out = []
    spell = {name: CaseResolver(ep.files) for name, ep in conn.every_endpoint().items()}
    # every path observed on a server, and every folder above it, in one stat_many per server
    # (SMB 2/3: one round trip for some 30 paths) instead of one stat (and spelling) per file
    by_server: dict[str, list[str]] = {}
    for rec in observations:
        if rec["kind"] in ("file", "folder", "log", "listing"):
            by_server.setdefault(conn.endpoint(rec["server"]).name, []).append(rec["path"])
    for name, paths in by_server.items():
        spell[name].prefetch(paths)
    for rec in observations:
        kind = rec["kind"]
        if kind == "payload":
            p = Path(rec["path"])
            if local(p) != rec["sha256"]:
                out.append(f"payload {p} changed or is missing")
            continue
        ep = conn.endpoint(rec["server"])
        if "path" in rec:
            rec = {**rec, "path": spell[ep.name](rec["path"])}
        where = ep.where(rec["path"]) if "path" in rec else ""
        if kind == "file":
            was = rec["state"]
            now = state_of(spell[ep.name].stat(rec["path"]))
            if now is None or was is None:
                if (now is None) != (was is None):
                    out.append(f"{where} {'appeared' if was is None else 'disappeared'}")
                continue
            if now.size == -1:
                if was["size"] != -1:
                    out.append(f"{where} is now a folder")
                continue
            if (now.size, now.mtime_ns) != (was["size"], was["mtime_ns"]):
                what = []
                if now.size != was["size"]:
                    what.append(f"size {was['size']:,} -> {now.size:,}")
                if now.mtime_ns != was["mtime_ns"]:
                    what.append(f"write time {_iso(was['mtime_ns'])} -> {_iso(now.mtime_ns)}")
                out.append(f"{where} changed: {', '.join(what)}")
            elif content and was.get("sha256") and sha256_seen(ep.files, rec["path"], spell[ep.name].stat(rec["path"])
                                                               ) != was["sha256"]:
                out.append(f"{where} content changed (same size and time)")
        elif kind == "folder":
            stat = spell[ep.name].stat(rec["path"])
            state = "missing" if stat is None else ("folder" if stat.is_dir else "file")
            if state != rec["state"]:
                out.append(f"{where} was a {rec['state']}, is now {state}".replace("a missing", "missing"))
        elif kind == "listing":
            stat = spell[ep.name].stat(rec["path"])
            if stat is not None and stat.is_dir and stat.mtime_ns == rec["mtime_ns"]:
                continue  # no entry added, removed or renamed since
            try:
                now_names = _names(ep.files.listdir(rec["path"]))
            except TargetError:
                now_names = None
            if now_names != rec["names"]:
                out.append(_listing_change(where, rec["names"], now_names))
        elif kind == "log":
            stat = spell[ep.name].stat(rec["path"])
            size = stat.size if stat is not None and not stat.is_dir else 0
            if size < rec["size"]:
                out.append(f"{where} is shorter than when planned ({rec['size']:,} -> {size:,} bytes): it was "
                           "replaced, so a run's evidence would start past its end")
        elif kind == "service":
            state = read_service(ep, rec["service"])
            if state != rec["state"]:
                out.append(f"{ep.name} service {rec['service']} was {rec['state']}, is now {state}")
    return out


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _names(listing: list[FileStat]) -> list[str]:
    """The files (not folders) of a listing, as a saved plan keeps them: sorted, any case."""
    return sorted({e.name.casefold() for e in listing if not e.is_dir})


def _listing_change(where: str, was: list[str], now: list[str] | None) -> str:
    if now is None:
        return f"{where} can no longer be listed"
    gained, lost = sorted(set(now) - set(was)), sorted(set(was) - set(now))
    what = ([f"new: {', '.join(gained)}"] if gained else []) + ([f"gone: {', '.join(lost)}"] if lost else [])
    return f"{where} holds other files ({'; '.join(what)})"
