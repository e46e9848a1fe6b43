"""What differs on a site from what a plan wants: the check after an undo (was everything put
back?), recover's question whether an interrupted run's changes all stand, and a fleet's
rollback of a run found complete. Files are compared in one batch per server (batch.compared:
by size, write time and sha256, or size and write time for a before-state the journal
identified so); services by their state, in words."""

from __future__ import annotations

from typing import Iterable

from ..model.state import FileState
from ..plan.model import Plan
from ..steps import kind_of
from ..targets.base import RUNNING, STOPPED, TargetError
from ..targets.connect import SiteConnection
from .batch import compared


def file_differences(conn: SiteConnection, wanted: Iterable[tuple[str, str, FileState | None]]
                     ) -> list[tuple[str, str, FileState | None]]:
    """(server, path, found) for every (server, path, wanted state) that does not hold;
    a wanted None means the file must not exist; found is None if it does not."""
    wanted = list(wanted)
    by_server: dict[str, list[int]] = {}
    for k, (server, _, _) in enumerate(wanted):
        by_server.setdefault(server, []).append(k)
    found: dict[int, FileState | None] = {}
    for server, ks in by_server.items():  # each server's files in one batch where its transport can
        found.update(zip(ks, compared(conn.endpoint(server), [wanted[k][1] for k in ks], [wanted[k][2] for k in ks])))
    off = []
    for k, (server, path, want) in enumerate(wanted):
        now = found[k]
        if (want is None and now is not None) or (want is not None and not want.matches(now)):
            off.append((server, path, now))
    return off


def service_differences(conn: SiteConnection, wanted: dict[tuple[str, str], str], wanted_word: str) -> list[str]:
    """Services not in their wanted state (running or stopped), in words."""
    off = []
    for (server, name), want in wanted.items():
        if want not in (RUNNING, STOPPED):
            continue
        try:
            now = conn.endpoint(server).services.query(name).state
        except TargetError as exc:
            off.append(f"{server} service {name}: cannot be queried ({exc})")
            continue
        if now != want:
            off.append(f"{server} service {name} is {now}, {wanted_word} {want}")
    return off


def original_services(plan: Plan) -> dict[tuple[str, str], str]:
    return {(o["server"], o["service"]): o["state"] for o in plan.observations if o["kind"] == "service"}


def planned_services(plan: Plan) -> dict[tuple[str, str], str]:
    """Each observed service's state at the end of the plan."""
    states = original_services(plan)
    for a in plan.actions:
        for server, service, state in kind_of(a).service_effects(a):
            states[(server, service)] = state
    return states
