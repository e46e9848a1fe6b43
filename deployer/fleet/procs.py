"""A fleet's sites spread over worker processes, so that a large fleet uses every core.

One path, not two: Fleet (fleet.py) runs its rollout exactly as on threads (batches, canary,
max-fail, journal, live panel), and each of its site threads hands its site to a worker
process instead of running it in place. The worker runs the same per-site function the
thread path runs (rebuilt there from the factory that made it, see `portable`) and sends back
the same SiteOutcome; the site's events are relayed to the parent's RunContext, so the one
console and the one fleet journal see them as before.

- Processes come from the 'forkserver' context (never fork with threads alive): the fork
  server imports deployer once, each worker is a fork of it.
- Ctrl-C: workers ignore SIGINT (the terminal sends it to the whole process group); the
  parent's cancel token is relayed site by site, and the worker cancels that site's own token,
  so it stops at its next safe point and rolls back, as on a thread. A parent that dies
  closes the pipe: the worker cancels every site it runs and exits once they rolled back.
- A worker that dies (killed, crashed) takes no site silently with it: each site it was running
  is reported NOT_RESTORED with the way forward (`deployer recover --site NAME`), since its
  journal on the site may say a run was half done.
- Several sites share one worker (each on a thread there), so `--forks` sites still run at once.
"""

from __future__ import annotations

import os
import re
import pickle
import queue
import signal
import threading
import time
from typing import Any, Callable

from ..errors import ExitCode
from .outcome import SiteOutcome, SiteState, Work, outcome_of_error
from ..model.inventory import SiteRef
from ..run import context as ev
from ..run.context import CancelToken, Event, RunContext

# Below this many sites a fleet stays on threads in one process: a worker costs about 0.3 s of
# start-up on this machine (the fork server's imports once, then a fork per worker) against
# about 0.1 s of CPU a mock site, so a small fleet would pay more than it gains. One site never
# gets here (the one-site commands do not use Fleet).
PROCESS_MIN_SITES = 16
# Unasked, a fleet gets worker processes only where they pay in wall time: the one process is
# bound to one core (the GIL), so workers gain only on cores that are free, and they cost CPU
# (the fork server imports deployer again: about 0.7 s, then pickling each site's events). Measured
# (README, Benchmarks): CPU a mock site by command, and the work a fleet must hold for two
# workers to gain more than their start-up costs.
CPU_A_SITE = {"apply_work": 0.11, "rollback_work": 0.08, "recover_work": 0.05, "plan_work": 0.02,
              "verify_work": 0.02, "runs_work": 0.005}
AUTO_MIN_CPU_SECONDS = 5.0
ENV = "DEPLOYER_PROCESSES"
PRELOAD = ["deployer.fleet.work", "deployer.fleet.workflow", "deployer.targets.mock", "deployer.steps"]  # the same override as --processes, for scripts and tests


def process_count(requested: int | None, sites: int, forks: int, max_per_host: int, kind: str | None = None) -> int:
    """How many worker processes a fleet of `sites` gets: `requested` when given (0: none),
    else `auto_processes` (one per free core, when the fleet's work pays for them). Never more
    than sites run at once (--forks) nor than --max-per-host, which is then split among them
    (each worker bounds its own sessions, so the total stays within the limit). `kind`: the
    work's factory (apply_work...), which says how much CPU a site costs."""
    if requested is None and re.fullmatch(r"[0-9]{1,4}", os.environ.get(ENV, "").strip()):
        requested = int(os.environ[ENV])  # ASCII digits only: str.isdigit() takes '²', which int() refuses
    if requested is None:
        requested = auto_processes(sites, kind)
    count = min(requested, forks, max_per_host, sites)
    return count if count >= 1 else 0


def free_cores() -> float:
    """Cores this process may use less the run queue's last minute (load average): what other
    work leaves. On the project's 2-core machine, shared by seven test runs, it is below 0."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 0.0  # unknown: threads, as when busy
    return cores - load


def auto_processes(sites: int, kind: str | None) -> int:
    """One worker per free core, when at least two are free (with one, the command's own
    process already has it) and the fleet's CPU (sites x CPU_A_SITE) is at least
    AUTO_MIN_CPU_SECONDS: an apply from about 46 mock sites, a plan or verify from 250.
    Otherwise threads: the measured faster path on a busy controller."""
    if sites < PROCESS_MIN_SITES or sites * CPU_A_SITE.get(kind or "", 0.05) < AUTO_MIN_CPU_SECONDS:
        return 0
    free = int(free_cores())
    return free if free >= 2 else 0


_CACHE = object()  # stands for a PayloadCache in a portable spec: each worker makes its own


def portable(factory: Callable[..., Work]) -> Callable[..., Work]:
    """Marks a work factory (fleet_work.apply_work...) whose work can run in a worker: the
    work it returns carries (factory, args, kwargs), from which a worker builds its own."""
    def make(*args: Any, **kwargs: Any) -> Work:
        work = factory(*args, **kwargs)
        work.spec = (factory.__module__, factory.__name__, args, kwargs)  # type: ignore[attr-defined]
        return work

    make.__name__, make.__doc__ = factory.__name__, factory.__doc__
    make.__wrapped__ = factory  # type: ignore[attr-defined]
    return make


def _spec_bytes(spec: tuple) -> bytes:
    from ..plan.planner import PayloadCache

    module, name, args, kwargs = spec
    swap = (lambda v: _CACHE if isinstance(v, PayloadCache) else v)
    return pickle.dumps((module, name, tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()}))


def _died_outcome(site: str, why: str) -> SiteOutcome:
    return SiteOutcome(site, SiteState.NOT_RESTORED,
                       f"the worker process running this site {why}: the site may be half changed; its journal on "
                       f"the site says what was done. Run `deployer recover --site {site} --break-lock` (the "
                       "site's lock is the dead worker's)",
                       exit_code=int(ExitCode.NOT_RESTORED))


class _Worker:
    """One worker process, seen from the parent: a pipe, and the sites it runs now."""

    def __init__(self, mp: Any, spec: bytes, limit: int):
        parent_end, child_end = mp.Pipe()
        # failpoints armed for the command by environment apply in its workers too (the fork
        # server was started with whatever environment the process had then)
        env = {k: os.environ.get(k) for k in ("DEPLOYER_FAILPOINTS",)}
        self.process = mp.Process(target=_child_main, args=(child_end, spec, limit, env), daemon=True,
                                  name="deployer-site-worker")
        self.process.start()
        child_end.close()
        self.conn = parent_end
        self.send_lock = threading.Lock()
        self.lock = threading.Lock()
        self.waiting: dict[str, queue.Queue] = {}
        self.inventories: set[int] = set()
        self.alive = True
        threading.Thread(target=self._read, daemon=True, name="site-worker-reader").start()

    def load(self) -> int:
        with self.lock:
            return len(self.waiting)

    def send(self, msg: tuple) -> bool:
        try:
            with self.send_lock:
                self.conn.send(msg)
            return True
        except (OSError, ValueError):
            return False

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break
            with self.lock:
                q = self.waiting.get(msg[1])
            if q is not None:
                q.put(msg)
        self.process.join(5)
        code = self.process.exitcode
        why = (f"was killed (signal {-code})" if code is not None and code < 0
               else f"ended (exit code {code})")
        with self.lock:
            self.alive = False
            for q in self.waiting.values():
                q.put(("died", "", why))

    def run(self, site: SiteRef, ctx: RunContext) -> SiteOutcome:
        q: queue.Queue = queue.Queue()
        key = id(site.inventory)
        with self.lock:
            if not self.alive:
                return _died_outcome(site.name, "had ended before the site started")
            self.waiting[site.name] = q
            inv = None if key in self.inventories else site.inventory
            self.inventories.add(key)
        try:
            # the inventory goes once per worker (a SiteRef pickles all of it); then names
            if not self.send(("run", site.name, key, inv)):
                return _died_outcome(site.name, "could not be reached")
            cancelled = False
            while True:
                if not cancelled and ctx.cancel.cancelled:
                    cancelled = True
                    self.send(("cancel", site.name, ctx.cancel.why()))
                try:
                    msg = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if msg[0] == "event":
                    ctx.emit(msg[2].kind, msg[2].text, **msg[2].data)
                elif msg[0] == "done":
                    return msg[2]
                else:  # died
                    return _died_outcome(site.name, msg[2])
        finally:
            with self.lock:
                self.waiting.pop(site.name, None)


class ProcessWork:
    """A Work for Fleet that runs each site in one of `count` worker processes."""

    def __init__(self, work: Work, count: int, max_per_host: int):
        import multiprocessing

        self.spec = _spec_bytes(work.spec)  # type: ignore[attr-defined]
        self.count = count
        self.limit = max(1, max_per_host // count)
        self.mp = multiprocessing.get_context("forkserver")
        # the fork server imports the site machinery once; each worker is a fork of it, with
        # nothing left to import (without this, every worker imported it again: ~1 s of CPU each)
        self.mp.set_forkserver_preload(PRELOAD)
        self.workers: list[_Worker] = []
        self.started = 0  # worker processes started, replacements included (tests count them)
        self._lock = threading.Lock()

    def _pick(self) -> _Worker:
        with self._lock:
            self.workers = [w for w in self.workers if w.alive]
            if len(self.workers) < self.count:
                # started under the lock: two site threads must not both start the last one
                self.workers.append(_Worker(self.mp, self.spec, self.limit))
                self.started += 1
                return self.workers[-1]
            return min(self.workers, key=_Worker.load)

    def __call__(self, site: SiteRef, ctx: RunContext) -> SiteOutcome:
        return self._pick().run(site, ctx)

    def close(self) -> None:
        for w in self.workers:
            w.send(("stop", ""))
        deadline = time.monotonic() + 10
        for w in self.workers:
            w.process.join(max(0.1, deadline - time.monotonic()))
            if w.process.is_alive():  # no site is running any more: nothing is left half done
                w.process.kill()  # (SIGTERM would only cancel its sites, of which it has none)
                w.process.join(2)
            w.conn.close()
        if self.workers and all(not w.process.is_alive() for w in self.workers):
            _stop_fork_server()


def _stop_fork_server() -> None:
    """The fork server ends with the fleet, reaped here: the command leaves no process behind,
    and the CPU of its workers (reaped by the fork server) counts in the command's own usage
    (bench/fleet.py measures it so). Its next fleet in the same process starts a new one."""
    from multiprocessing import forkserver

    try:
        forkserver._forkserver._stop()  # the documented-for-tests way; absent, it ends with us
    except (AttributeError, OSError):
        pass


def for_fleet(work: Work, sites: int, requested: int | None, forks: int, max_per_host: int) -> Work:
    """`work` itself, or a ProcessWork running it in workers when the fleet pays for them."""
    if getattr(work, "spec", None) is None:
        return work  # not portable (a region's dispatcher, a test's lambda): threads
    count = process_count(requested, sites, forks, max_per_host, work.spec[1])  # type: ignore[attr-defined]
    return ProcessWork(work, count, max_per_host) if count else work


# --- the worker process ---------------------------------------------------------------------------


def _child_main(conn: Any, spec: bytes, limit: int, env: dict[str, str | None]) -> None:
    # The terminal sends SIGINT and SIGHUP to the whole process group: the parent decides, and
    # relays a cancel per site. A SIGTERM sent to a worker alone cancels its sites (they roll back).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    import importlib

    from ..plan.planner import PayloadCache
    from ..targets import host_limits

    host_limits.configure(limit)
    module, name, args, kwargs = pickle.loads(spec)
    cache = PayloadCache()  # shared by this worker's sites, as the parent's is by its threads
    fix = (lambda v: cache if type(v) is object else v)  # _CACHE, unpickled here as a new object()
    factory = getattr(importlib.import_module(module), name)
    factory = getattr(factory, "__wrapped__", factory)
    work = factory(*(fix(a) for a in args), **{k: fix(v) for k, v in kwargs.items()})
    send_lock = threading.Lock()
    tokens: dict[str, CancelToken] = {}
    threads: list[threading.Thread] = []
    inventories: dict[int, Any] = {}

    def send(msg: tuple) -> None:
        try:
            data = pickle.dumps(msg)
        except Exception:  # noqa: BLE001 - a detail that does not pickle is left out, never the outcome
            if msg[0] == "done":
                msg[2].detail = None
            else:
                msg = (msg[0], msg[1], Event(msg[2].site, msg[2].kind, msg[2].text, {}))
            data = pickle.dumps(msg)
        with send_lock:
            try:
                conn.send_bytes(data)
            except OSError:
                pass  # the parent is gone: the site's token is cancelled by the reader below

    def sink(event: Event) -> Any:
        if event.kind == ev.QUESTION:
            return True  # as Fleet._site_sink: the operator answered for the whole fleet
        send(("event", event.site, event))
        return None

    def one(site: SiteRef, token: CancelToken) -> None:
        t0 = time.monotonic()
        try:
            out = work(site, RunContext(site.name, sink, token))
        except BaseException as exc:  # noqa: BLE001 - as Fleet._one: a site's failure is its outcome
            out = outcome_of_error(site.name, exc, time.monotonic() - t0)
        send(("done", site.name, out))

    def on_term(signum: int, frame: Any) -> None:
        for t in list(tokens.values()):
            t.cancel(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_term)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            for t in tokens.values():  # the parent died: every site stops and rolls back
                t.cancel("the fleet's controlling process ended")
            break
        if msg[0] == "run":
            _, site_name, key, inv = msg
            if inv is not None:
                inventories[key] = inv
            tokens[site_name] = CancelToken()
            th = threading.Thread(target=one, args=(inventories[key].site(site_name), tokens[site_name]),
                                  name=f"site-{site_name}")
            th.start()
            threads.append(th)
        elif msg[0] == "cancel" and msg[1] in tokens:
            tokens[msg[1]].cancel(msg[2])
        elif msg[0] == "stop":
            break
    for th in threads:
        th.join()
