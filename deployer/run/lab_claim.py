"""The claim `deployer lab init --force` takes on a mock site before it deletes it.

It lives here, beside the site lock and the journal it reads, and is handed to the simulator
(simulator/lab.py's `init_mock_site(claim=...)`): the mock site knows nothing of runs, but
recreating one must never delete the journal, the lock and the backups of a run that is still
going or that `deployer recover` still has to finish.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError, SiteLockedError
from ..model.inventory import SiteRef
from ..targets.mock import SITE_FILE, MockSite
from .journal import unfinished_runs
from .lock import SiteLock
from .store import STATE_DIR


@contextmanager
def claimed(site: SiteRef, root: Path) -> Iterator[None]:
    """Hold the site lock while a mock site is recreated, and refuse when a run holds it or
    left the site unfinished."""
    throw_away = f"or delete {root} by hand if you really mean to throw the site and its runs away"
    try:
        mock = MockSite(root)
        server = next(n for n, i in mock.servers.items() if i.role == "site_server")
        files = mock.files(server)
    except (InputError, StopIteration, KeyError, TypeError, ValueError, AttributeError, OSError):
        # not a mock site deployer can read: only a lock file anywhere in it tells of a run
        if any(p.is_file() or p.is_dir() for p in root.glob(f"*/**/{STATE_DIR}/lock")):
            raise InputError(f"mock site {site.name} at {root} holds a deployer lock; a run may be active. Let it "
                             f"finish, {throw_away}") from None
        yield
        return
    lock = SiteLock(files, site.name, "lab init --force")
    try:
        lock.acquire()
    except SiteLockedError as exc:
        raise SiteLockedError(f"{exc}. `lab init --force` would delete that run's journal and backups; "
                              f"{throw_away}") from None
    try:
        pending = unfinished_runs(files)
        if pending:
            names = ", ".join(f"{r.run} ({r.state.replace('_', ' ')})" for r in pending)
            raise InputError(f"site {site.name} has an unfinished run: {names}. `lab init --force` would delete its "
                             f"journal and backups, the only record of what it changed; run `deployer recover --site "
                             f"{site.name}` first, {throw_away}")
        yield
    finally:
        if lock.held and (root / SITE_FILE).exists():
            lock.release()
        else:
            lock.forget()
