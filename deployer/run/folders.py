"""What the folders a run touches held when it began, and what appeared in them since.

A run writes only the files its plan names, but writing one (deployer's staging, the SCM's
site reset copying a service file) goes through a temporary name beside it. A process
killed between the write and the rename leaves that name behind, and a check of the named
files alone would call the site "as before". So a run journals the names in each folder it
touches (`folders` event) before it changes anything, and the check after an undo compares:
a new name `<touched file>.~<anything>` is the temporary copy of an interrupted write and is
removed; any other new name is reported, never deleted (deployer did not make it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..targets import temps
from ..model import winpath
from ..plan.model import Plan
from ..sms.layout import STATE_DIR
from ..steps import kind_of
from ..targets.base import TargetError
from ..targets.connect import SiteConnection

Listing = dict[str, dict[str, list[str] | None]]  # server -> folder -> names (None: no such folder)


def touched_folders(plan: Plan) -> dict[str, dict[str, dict[str, str]]]:
    """server -> folder -> {casefolded name: name} of the files the plan touches there, and of
    those the site's own programs rewrite because of it (the copy lists a client update makes
    Maintenance Manager write): an interrupted write of either leaves its temporary copy there."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    paths = [(t.server, t.path) for t in plan.touched()]
    paths += [p for a in plan.actions for p in kind_of(a).rewritten(a)]
    for server, path in paths:
        name = winpath.basename(path)
        out.setdefault(server, {}).setdefault(winpath.parent(path), {})[name.casefold()] = name
    return out


def _names(files, folders: list[str]) -> dict[str, list[str] | None]:
    """Each folder's names (None where it cannot be listed), every folder in one batch where the
    transport lists many at once (SMB 2/3: one round trip), else one listing each."""
    many = getattr(files, "listdir_many", None)
    if many is not None and len(folders) > 1:
        try:
            listed = many(list(folders))
        except TargetError:  # the server, not a folder, failed (lost, hung): none of them listed, as one by one
            return {f: None for f in folders}
        return {f: (None if isinstance(got, TargetError) else [e.name for e in got]) for f, got in zip(folders, listed)}
    out: dict[str, list[str] | None] = {}
    for folder in folders:
        try:
            out[folder] = [e.name for e in files.listdir(folder)]
        except TargetError:
            out[folder] = None
    return out


def _names_by_server(conn: SiteConnection, wanted: dict[str, list[str]]) -> dict[str, dict[str, list[str] | None]]:
    """_names() of each server's folders; servers whose transports share one session (SMB 2/3:
    one host, one account) listed together, one round trip for all of them, not one each."""
    out: dict[str, dict[str, list[str] | None]] = {}
    groups: dict[int, list[str]] = {}
    for server in wanted:
        files = conn.endpoint(server).files
        together = getattr(files, "listdir_many_together", None) is not None
        groups.setdefault(id(files.link) if together else id(files), []).append(server)
    for servers in groups.values():
        if len(servers) < 2:
            out[servers[0]] = _names(conn.endpoint(servers[0]).files, wanted[servers[0]])
            continue
        first = conn.endpoint(servers[0]).files
        try:
            got = first.listdir_many_together([(conn.endpoint(s).files, wanted[s]) for s in servers])
        except TargetError:  # the session (or one server's share) failed: each server asked on its own, as before
            for server in servers:
                out[server] = _names(conn.endpoint(server).files, wanted[server])
            continue
        for server, listed in zip(servers, got):
            out[server] = {f: (None if isinstance(one, TargetError) else [e.name for e in one])
                           for f, one in zip(wanted[server], listed)}
    return out


def list_folders(plan: Plan, conn: SiteConnection) -> Listing:
    listing: Listing = {}
    touched = touched_folders(plan)
    listed = _names_by_server(conn, {s: list(f) for s, f in touched.items()})
    for server in touched:  # in the plan's order, as before
        for folder, names in listed[server].items():
            listing.setdefault(server, {})[folder] = None if names is None else sorted(names)
    return listing


def journaled_listing(events) -> Listing | None:
    """The listing the run journaled, if its journal still holds it in a usable shape."""
    for ev in reversed(events.of("folders")):
        data = ev.get("listing")
        if isinstance(data, dict) and all(isinstance(v, dict) for v in data.values()):
            return data
    return None


@dataclass(frozen=True)
class Extra:
    server: str
    path: str
    leftover_of: str | None  # the touched file it is a temporary copy of; None: unknown origin


def extras(plan: Plan, conn: SiteConnection, listing: Listing | None, skip: set[str]) -> list[Extra]:
    """Names in the touched folders that were not there when the run began. Without a
    journaled listing only temporary copies of touched files can be recognised."""
    out = []
    touched = {s: f for s, f in touched_folders(plan).items() if s not in skip}
    listed = _names_by_server(conn, {s: list(f) for s, f in touched.items()})
    for server, folders in touched.items():
        found = listed[server]
        for folder, touched in folders.items():
            before = (listing or {}).get(server, {}).get(folder) if listing else None
            had = {n.casefold() for n in before} if isinstance(before, list) else None
            now = found[folder]
            if now is None:
                continue
            for name in now:
                key = name.casefold()
                if key in touched or (had is not None and key in had):
                    continue
                if not folder and key == STATE_DIR.casefold():
                    continue  # deployer's own run folder, beside files replaced in a root (a PCM host's)
                origin = next((touched[t] for t in sorted(touched) if key.startswith(t + ".~")), None)
                if origin is None and had is not None and (temp := temps.parse(name)) is not None:
                    # new since the run began and named as a registered writer names its temporary
                    # copies (deployer/targets/temps.py): the leftover of that writer's interrupted write
                    origin = f"{temp[0]}, by {temp[1].writer}"
                if origin is None and had is None:
                    continue  # no listing to compare with: only a recognisable temporary copy counts
                out.append(Extra(server, winpath.join(folder, name), origin))
    return out
