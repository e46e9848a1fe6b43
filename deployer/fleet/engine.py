"""A fleet run: one command over many sites, concurrently, in rolling batches.

Each site runs on a worker thread of one process with its own RunContext, whose cancel
token is a child of the fleet's: cancelling the fleet (Ctrl-C, SIGTERM) makes every
running site stop at its next safe point and roll back, while a site that fails on its
own rolls back alone and the others go on. Sites are started batch by batch (`--batch`);
a canary batch runs first and the rollout stops there unless it passed and the operator
(or `--yes`) says to go on; once more sites failed than `--max-fail` allows, no new site
starts and the running ones finish. Every state change goes to the fleet journal
(fleet_journal.py) so `--resume` picks up the sites that are not done.

The work done on one site is a plain function (site, context) -> SiteOutcome given by the
caller: apply, verify, plan, rollback or recover all run through the same machinery.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ExitCode, InputError
from .journal import FleetJournal
from ..model.inventory import SiteRef
from ..run import context as ev
from ..run.context import CancelToken, Event, RunContext

from . import DEFAULT_FORKS
from ..model.numbers import is_whole
from ..targets import host_limits
# a site's outcome and the one-site case live apart, light: a one-site command imports them, not the threads
from .outcome import _EXIT, SiteOutcome, SiteState, Work, outcome_of_error, run_one  # noqa: F401 (re-exported)


class FleetView(Protocol):
    """What a fleet tells its renderer; called from site threads, so implementations lock."""

    def site_event(self, event: Event) -> None: ...
    def site_started(self, site: str) -> None: ...
    def site_finished(self, outcome: SiteOutcome) -> None: ...
    def note(self, text: str) -> None: ...
    def ask(self, question: str) -> bool: ...


@dataclass(frozen=True)
class Count:
    """`N` sites or `P%` of the fleet (rounded up: 10% of 5 sites is 1 site, never 0)."""

    value: int
    percent: bool = False

    def of(self, total: int) -> int:
        return math.ceil(total * self.value / 100) if self.percent else self.value

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


def parse_count(text: str | None, option: str, *, minimum: int) -> Count | None:
    if text is None:
        return None
    raw = text.strip()
    percent = raw.endswith("%")
    digits = raw[:-1].strip() if percent else raw
    if not is_whole(digits) or (percent and int(digits) > 100) or int(digits) < minimum:
        raise InputError(f"{option} {text!r}: give a whole number of sites ({minimum} or more) or a percentage of "
                         f"the fleet ({minimum}% to 100%), e.g. 10 or 10%")
    return Count(int(digits), percent)


@dataclass
class Rollout:
    forks: int = DEFAULT_FORKS
    batch: Count | None = None  # None: every site in one batch
    canary: int = 0
    max_fail: Count | None = None  # None: never stop for failures
    yes: bool = False
    max_per_host: int = host_limits.DEFAULT_MAX_PER_HOST  # sessions open to one server host at a time

    def __post_init__(self) -> None:
        if self.forks < 1:
            raise InputError(f"--forks {self.forks}: give 1 or more (sites worked on at the same time)")
        host_limits.check_limit(self.max_per_host)
        if self.canary < 0:
            raise InputError(f"--canary {self.canary}: give 0 (no canary) or more sites")

    def batches(self, sites: list[SiteRef]) -> list[list[SiteRef]]:
        out: list[list[SiteRef]] = []
        rest = sites
        if self.canary:
            out.append(rest[: self.canary])
            rest = rest[self.canary:]
        size = max(1, self.batch.of(len(sites))) if self.batch else max(1, len(rest))
        out += [rest[i:i + size] for i in range(0, len(rest), size)]
        return [b for b in out if b]

    def to_json(self) -> dict[str, Any]:
        return {"forks": self.forks, "batch": str(self.batch) if self.batch else None, "canary": self.canary,
                "max_fail": str(self.max_fail) if self.max_fail else None, "max_per_host": self.max_per_host}


@dataclass
class FleetResult:
    fleet_id: str | None
    command: str
    outcomes: list[SiteOutcome]
    stopped: str | None = None  # why the rollout stopped early
    paused: bool = False  # stopped after a passing canary, waiting for the operator
    seconds: float = 0.0
    journal: str | None = None

    def by_state(self, *states: SiteState) -> list[SiteOutcome]:
        return [o for o in self.outcomes if o.state in states]

    @property
    def exit_code(self) -> int:
        if not self.outcomes:
            return int(ExitCode.OK)
        # every site refused for bad input and none was touched: the input is what is wrong
        if all(o.exit_code == ExitCode.BAD_INPUT for o in self.outcomes):
            return int(ExitCode.BAD_INPUT)
        if self.paused and not self.by_state(SiteState.FAILED, SiteState.NOT_RESTORED, SiteState.MISMATCH):
            return int(ExitCode.OK)
        worst = max(_EXIT[o.state] for o in self.outcomes)
        # 4 outranks 3: a site that needs recovery matters more than one whose files differ
        if any(o.state == SiteState.NOT_RESTORED for o in self.outcomes):
            return int(ExitCode.NOT_RESTORED)
        return int(worst)

    @property
    def bytes(self) -> int:
        return sum(o.bytes for o in self.outcomes)

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in SiteState if s not in (SiteState.WAITING, SiteState.RUNNING)}
        for o in self.outcomes:
            out[str(o.state)] = out.get(str(o.state), 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"fleet": self.fleet_id, "command": self.command, "exit_code": self.exit_code,
                "stopped": self.stopped, "paused": self.paused, "seconds": round(self.seconds, 3),
                "journal": self.journal, "counts": self.counts(), "bytes": self.bytes,
                "sites": [o.to_json() for o in self.outcomes]}


@dataclass(eq=False)
class Fleet:
    command: str
    sites: list[SiteRef]
    work: Work
    rollout: Rollout
    view: FleetView
    journal: FleetJournal | None = field(default=None, kw_only=True)
    cancel: CancelToken = field(default_factory=CancelToken, kw_only=True)
    outcomes: dict[str, SiteOutcome] = field(default_factory=dict, init=False)
    bytes: dict[str, int] = field(default_factory=dict, init=False)  # site -> payload bytes sent so far
    failures: int = field(default=0, init=False)
    stop_reason: str | None = field(default=None, init=False)
    # the CLI's signal handler: before any site started, Ctrl-C just interrupts
    started_any: bool = field(default=False, init=False)
    # also taken by the CLI's signal handler, on the main thread
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    # --- one site, on a worker thread ----------------------------------------------------------

    def _one(self, site: SiteRef) -> SiteOutcome:
        with self._lock:
            stop = self.stop_reason or (f"cancelled ({self.cancel.why()})" if self.cancel.cancelled else None)
            if not stop:
                self.started_any = True
        if stop:
            return self._finish(SiteOutcome(site.name, SiteState.NOT_STARTED, f"not started: {stop}",
                                            exit_code=int(ExitCode.FAILED_RESTORED)))
        self._journal(site.name, SiteState.RUNNING)
        self.view.site_started(site.name)
        ctx = RunContext(site.name, self._site_sink, self.cancel.child())
        t0 = time.monotonic()
        try:
            outcome = self.work(site, ctx)
        except BaseException as exc:  # noqa: BLE001 - one site's failure is that site's outcome
            outcome = outcome_of_error(site.name, exc, time.monotonic() - t0)
        if not outcome.seconds:
            outcome.seconds = time.monotonic() - t0
        return self._finish(outcome)

    def _finish(self, outcome: SiteOutcome) -> SiteOutcome:
        with self._lock:
            outcome.bytes = outcome.bytes or self.bytes.get(outcome.site, 0)
            self.outcomes[outcome.site] = outcome
            if outcome.state.counts_as_failure:
                self.failures += 1
                limit = self.rollout.max_fail.of(len(self.sites)) if self.rollout.max_fail else None
                if limit is not None and self.failures > limit and not self.stop_reason:
                    self.stop_reason = (f"{self.failures} sites failed, more than --max-fail "
                                        f"{self.rollout.max_fail} allows")
        self._journal(outcome.site, outcome.state, run=outcome.run, message=outcome.message)
        self.view.site_finished(outcome)
        return outcome

    def _journal(self, site: str, state: SiteState, **info: Any) -> None:
        """A fleet journal that cannot be written (disk full, folder removed) stops the rollout
        from starting more sites: without it `--resume` could not tell what is done. The sites
        already running finish; their own journals, on their servers, are unaffected."""
        if self.journal is None:
            return
        try:
            self.journal.record(site, str(state), **info)
        except OSError as exc:
            with self._lock:
                if not self.stop_reason:
                    self.stop_reason = f"the fleet journal {self.journal.path} cannot be written ({exc})"

    def _site_sink(self, event: Event) -> Any:
        if event.kind == ev.QUESTION:
            return True  # the operator answered for the whole fleet before it started
        if event.kind == ev.BYTES:
            with self._lock:
                self.bytes[event.site] = self.bytes.get(event.site, 0) + int(event.data.get("bytes") or 0)
        self.view.site_event(event)
        return None

    # --- the rollout, on the calling thread ----------------------------------------------------

    def run(self) -> FleetResult:
        t0 = time.monotonic()
        host_limits.configure(self.rollout.max_per_host)  # every site session of this process is bounded by it
        try:
            paused = self._rollout()
        finally:
            # also when interrupted before any site started: the journal gets every state known
            if self.journal:
                try:
                    self.journal.note(stopped=self.stop_reason, finished_utc=_utc())
                except OSError:
                    pass  # already said: stop_reason names the journal that cannot be written
        return FleetResult(self.journal.id if self.journal else None, self.command,
                           [self.outcomes[s.name] for s in self.sites], self.stop_reason, paused,
                           time.monotonic() - t0, str(self.journal.path) if self.journal else None)

    def _rollout(self) -> bool:
        """Every batch in turn; True when it paused after a passing canary."""
        batches = self.rollout.batches(self.sites)
        paused = False
        with ThreadPoolExecutor(max_workers=min(self.rollout.forks, max(1, len(self.sites))),
                                thread_name_prefix="site") as pool:
            for i, batch in enumerate(batches):
                self._run_batch(pool, batch)
                if self.cancel.cancelled and not self.stop_reason:
                    self.stop_reason = f"cancelled ({self.cancel.why()})"
                if self.stop_reason or i == len(batches) - 1:
                    continue
                if i == 0 and self.rollout.canary:
                    canary = [self.outcomes[s.name] for s in batch]
                    bad = [o.site for o in canary if not o.state.finished_well]
                    if bad:
                        self.stop_reason = f"the canary failed on {', '.join(bad)}"
                    elif not (self.rollout.yes or self.view.ask(
                            f"The canary passed on {len(batch)} site(s); go on with the other "
                            f"{sum(len(b) for b in batches[1:])}?")):
                        self.stop_reason = "stopped after the canary, as asked"
                        paused = True
        for s in self.sites:  # sites of batches never submitted
            if s.name not in self.outcomes:
                self._finish(SiteOutcome(s.name, SiteState.NOT_STARTED, f"not started: {self.stop_reason}",
                                         exit_code=int(ExitCode.FAILED_RESTORED)))
        if self.stop_reason:
            self.view.note(f"The rollout stopped: {self.stop_reason}.")
        return paused

    def _run_batch(self, pool: ThreadPoolExecutor, batch: list[SiteRef]) -> None:
        pending: set[Future] = {pool.submit(self._one, s) for s in batch}
        while pending:
            # a short timeout keeps the main thread responsive to signals while sites run
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for f in done:
                f.result()  # _one catches what a site raises: anything here is a bug of the fleet itself


def _utc() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
