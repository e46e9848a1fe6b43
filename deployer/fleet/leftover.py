"""What a fleet says about a site its command could not start on: the site's own run state decides.

A site's work that raised before changing anything (locked, an unfinished run refused) used to
be reported "failed and restored": true for a site this command never touched, false for a
site an earlier run left half-patched (a fleet killed mid-site: its run unfinished, its lock
held by a process that is gone). So when a site's work raises, the site is looked at:

- an unfinished run is there: the site is NOT restored; the outcome names the one command
  that gets it going (`deployer recover --site X [--break-lock]`), exit 4 as for any site
  left half-patched. A resumed fleet (`apply --resume`) whose site's lock holder is gone
  recovers it itself, through the same `recover`, says so, and then applies;
- the lock's holder is alive (another run is working on the site right now): not started,
  nothing touched, `--resume` picks the site up later;
- otherwise: the error as it was (the site was never changed).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import workflow
from ..errors import DeployerError, ExitCode
from .outcome import SiteOutcome, SiteState, Work
from ..model.inventory import SiteRef
from ..run.context import Cancelled, RunContext
from ..run.lock import LockInfo, read_lock
from ..run.store import RunState


@dataclass
class Leftover:
    unfinished: str | None  # the message naming the unfinished runs, and the command that recovers them
    lock: LockInfo | None
    stale: bool | None

    @property
    def holder_gone(self) -> bool:
        return self.lock is None or self.stale is True


def leftover(site: SiteRef, ctx: RunContext) -> Leftover | None:
    """The unfinished runs and the lock the site holds, or None when it holds neither (or
    cannot be reached: then the first error stands)."""
    try:
        with workflow.session(site, ctx) as conn:
            unfinished = workflow.unfinished_message(conn)
            lock = read_lock(conn.site_server.files)
    except DeployerError:
        return None
    if unfinished is None and lock is None:
        return None
    return Leftover(unfinished, lock, lock.stale() if lock is not None else None)


def _recover_then(work: Work, site: SiteRef, ctx: RunContext, left: Leftover) -> SiteOutcome:
    """The resumed site's unfinished run recovered as `deployer recover` does, then the work."""
    ctx.say(f"site {site.name} was left with an unfinished run under a lock whose holder is gone: recovering it "
            "first (as `deployer recover` does)")
    results = workflow.recover(site, ctx, break_lock=left.lock is not None)
    lines = [f"run {r.run} {str(r.status).replace('_', ' ')}" + (f" ({r.error})" if r.error else "")
             for r in results]
    recovered = [{"run": r.run, "status": str(r.status), "reason": r.error} for r in results]
    if any(r.status == RunState.ROLLBACK_FAILED for r in results):
        left_items = [x for r in results for x in r.remaining]
        return SiteOutcome(site.name, SiteState.NOT_RESTORED,
                           "recovering the unfinished run failed: " + "; ".join(lines) + "; left: "
                           + "; ".join(left_items) + f"; then `deployer recover --site {site.name}`",
                           exit_code=int(ExitCode.NOT_RESTORED), data={"recovered": recovered}, detail=results)
    out = work(site, ctx)
    if lines:
        out.message = "recovered first: " + "; ".join(lines) + "; then " + out.message
    out.data["recovered"] = recovered
    return out


def truthful(work: Work | None = None, *, recover_first: bool = False):
    """`work`, whose errors are read against the site's own run state (see the module's text)."""
    def wrap(inner: Work) -> Work:
        def checked(site: SiteRef, ctx: RunContext) -> SiteOutcome:
            try:
                return inner(site, ctx)
            except Cancelled:
                raise
            except DeployerError as exc:
                left = leftover(site, ctx)
                if left is None:
                    raise
                if left.lock is not None and left.stale is False:
                    # another run is working on the site right now: this command did not touch it
                    return SiteOutcome(site.name, SiteState.NOT_STARTED, f"not started: {exc}",
                                       exit_code=int(ExitCode.FAILED_RESTORED))
                if recover_first and left.holder_gone:
                    return _recover_then(inner, site, ctx, left)
                if left.unfinished:
                    return SiteOutcome(site.name, SiteState.NOT_RESTORED, f"NOT restored: {left.unfinished}",
                                       exit_code=int(ExitCode.NOT_RESTORED), data={"error": str(exc)})
                raise

        return checked

    return wrap(work) if work is not None else wrap
