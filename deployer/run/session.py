"""A session with a site and its lock: what every command that reads or changes a site opens first.

Kept in run/ (not with the workflows above it) so that run-level commands such as prune take
the same session and lock without importing the workflows that import them.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from ..errors import InputError
from ..model.inventory import SiteRef
from ..targets.base import TargetError
from ..targets.connect import SiteConnection, connect
from ..targets.traffic import describe as describe_traffic
from ..targets.traffic import merge as merge_traffic
from . import known
from .context import RunContext
from .journal import unfinished_runs
from .lock import SiteLock, read_lock


@contextmanager
def session(site: SiteRef, ctx: RunContext | None = None, *, checksum: bool = False) -> Iterator[SiteConnection]:
    """checksum: read every file deployer hashes, trusting no recorded hash (known.py); what is read
    is recorded all the same."""
    # connect's notices (SMB1, a wait for a busy host) go to the run's sink
    conn = connect(site, warn=ctx.warn if ctx is not None else None, cancel=ctx.cancel if ctx is not None else None,
                   note=ctx.say if ctx is not None else None)
    known.attach(conn, checksum=checksum)
    try:
        yield conn
    finally:
        _count_traffic(conn, ctx)
        conn.close()


def _count_traffic(conn: SiteConnection, ctx: RunContext | None) -> None:
    """What the session cost on the wire, added to the command's (the JSON report's `traffic`, -v)."""
    try:
        used = conn.traffic()
    except Exception:  # noqa: BLE001 - counting never decides a run's outcome
        logging.getLogger("deployer.traffic").debug("counting the traffic failed", exc_info=True)
        return
    logging.getLogger("deployer.traffic").info("site %s traffic: %s; %s", conn.site.name, describe_traffic(used),
                                               known.describe(conn))
    if ctx is not None:
        ctx.traffic = merge_traffic(ctx.traffic, used)


@contextmanager
def locked(conn: SiteConnection, command: str, break_lock: bool, ctx: RunContext, *,
           allow_unfinished: bool = False) -> Iterator[SiteLock]:
    """Hold the site lock; refuse to work on a site that an unfinished run left behind."""
    lock = SiteLock(conn.site_server.files, conn.site.name, command)
    lock.acquire(break_lock=break_lock)
    refused = False
    try:
        if not allow_unfinished:
            refuse_if_unfinished(conn)
        yield lock
    except InputError:
        refused = True  # bad input or a refusal (no --yes, a stand-in) touches nothing, known hashes included
        raise
    finally:
        if not refused and not ctx.declined:
            known.save(conn)  # the one writer of the site's known hashes is the lock's holder
        try:
            lock.release()
        except TargetError as exc:
            # The outcome of the run matters more than the lock: report, never mask it.
            ctx.warn(f"Warning: the site lock could not be removed ({exc}); the next command will find it and "
                     "report whether its holder is gone")


def unfinished_message(conn: SiteConnection) -> str | None:
    pending = unfinished_runs(conn.site_server.files)
    if not pending:
        return None
    names = ", ".join(f"{r.run} ({r.state.replace('_', ' ')}, {r.kb or '?'} by {r.who or '?'}"
                      + (f"; journal damaged at {'; '.join(r.damaged[:2])}" if r.damaged else "") + ")"
                      for r in pending)
    return (f"site {conn.site.name} has an unfinished run: {names}. Its files may be half-patched; run "
            f"`{recover_command(conn)}` to finish or roll it back first")


def recover_command(conn: SiteConnection) -> str:
    """The one command that gets an unfinished run going: with --break-lock only when a lock is there."""
    lock = read_lock(conn.site_server.files)
    return f"deployer recover --site {conn.site.name}" + (" --break-lock" if lock is not None else "")


def refuse_if_unfinished(conn: SiteConnection) -> None:
    msg = unfinished_message(conn)
    if msg:
        raise InputError(msg)
