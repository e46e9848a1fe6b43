"""The one task a worker runs: one site of a rollout, from a bundle (bundle.py).

A task first looks after what an earlier delivery of it may have left: when the broker
hands a site out again (the worker that had it was killed, so it never acknowledged), the
site may hold an unfinished run and its dead holder's lock. The task then runs `recover`
on the site first (finish or roll back, as after any crash), and only then applies.

Events go back to the controller on a Redis channel of the rollout as they happen; the
controller asks a rollout to stop by setting a key that every running task watches (its
cancel token, so a running site rolls back at its next safe point).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from ..errors import DeployerError, ExitCode, InputError, NetworkError
from ..run.context import Event, RunContext

EVENTS = "deployer:events:{}"
CANCEL = "deployer:cancel:{}"
CLAIM = "deployer:claim:{}:{}"
REVOKED = "deployer:revoked:{}"  # a task id the controller gave up on: never started, even by a worker started later


def _publisher(redis, rollout: str):
    channel = EVENTS.format(rollout)

    def sink(event: Event) -> Any:
        data = {k: v for k, v in event.data.items() if isinstance(v, (str, int, float, bool, type(None)))}
        redis.publish(channel, json.dumps({"site": event.site, "kind": event.kind, "text": event.text,
                                           "data": data, "at": event.at}))
        return True  # a worker's runs are not interactive: the controller asked before dispatching

    return sink


def _watch_cancel(redis, rollout: str, ctx: RunContext, stop: threading.Event) -> None:
    key = CANCEL.format(rollout)
    while not stop.wait(0.5):
        try:
            reason = redis.get(key)
        except Exception:  # noqa: BLE001 - a broker blip must not end the run; it is retried
            continue
        if reason is not None:
            ctx.cancel.cancel(reason.decode("utf-8", "replace") or "the rollout was cancelled")
            return


LEASE = "deployer:lease:{}:{}"  # rollout, site: who runs it now; renewed while it runs
RESULT = "deployer:result:{}:{}"  # rollout, site: the result of the delivery that ran it
# seconds a lease outlives its last renewal: a worker gone is known within this. Renewed three
# times within it, whatever it is set to, so one missed beat (a broker blip) never loses it
LEASE_ENV = "DEPLOYER_WORKER_LEASE_TTL"
LEASE_TTL = 30


def lease_ttl() -> float:
    """The lease's time to live on this worker ($DEPLOYER_WORKER_LEASE_TTL, default 30 s)."""
    raw = os.environ.get(LEASE_ENV, "")
    try:
        ttl = float(raw) if raw else float(LEASE_TTL)
    except ValueError:
        raise InputError(f"{LEASE_ENV}={raw!r} is not a number of seconds; allowed: 1 to 604800 (a week)") from None
    if not 1 <= ttl <= 7 * 24 * 3600:  # NaN and infinity too: no lease could be set with them
        raise InputError(f"{LEASE_ENV}={raw!r} is out of range; allowed: a number of seconds, 1 to 604800 (a week)")
    return ttl


def _lease_checker(redis):
    """Whether a lock's holder still renews its lease in this broker (lock.register_lease_checker)."""
    def check(lease: dict[str, Any]) -> bool | None:
        key, holder = lease.get("key"), lease.get("holder")
        if not isinstance(key, str) or not isinstance(holder, str) or not key.startswith("deployer:lease:"):
            return None
        try:
            current = redis.get(key)
        except Exception:  # noqa: BLE001 - the broker unreachable: cannot tell, so never broken
            return None
        return current is not None and current.decode("utf-8", "replace") == holder

    return check


# compare-and-renew in one step: between a separate GET and SET the lease could lapse and go to
# another delivery, and the SET would then take it back from under that one
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then
  if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return 2 end
end
return 0
"""


def renew(redis, key: str, me: str, ttl: float) -> str:
    """One beat: "renewed"; "retaken" (it had lapsed, and no other delivery holds it: this task
    still holds the site lock, so taking it back is safe); "lost" (another delivery holds it)."""
    got = int(redis.eval(_RENEW, 1, key, me, int(ttl * 1000)))
    return {1: "renewed", 2: "retaken"}.get(got, "lost")


def _renew(redis, key: str, me: str, ttl: float, ctx: RunContext, stop: threading.Event) -> None:
    while not stop.wait(ttl / 3):
        try:
            state = renew(redis, key, me, ttl)
        except Exception:  # noqa: BLE001 - a broker blip: the next beat renews it
            continue
        if state == "retaken":
            ctx.say(f"the site's lease in the broker had lapsed (a beat was missed for over {ttl:g} s); taken back")
        elif state == "lost":
            # another delivery holds the lease: it may judge this task's site lock dead, so this
            # run stops at its next safe point and rolls back rather than race it on the site
            ctx.cancel.cancel(f"the site's lease in the broker went to another delivery (no beat for over {ttl:g} s)")
            return


def _take_lease(redis, key: str, result_key: str, me: str, ctx: RunContext, ttl: float
                ) -> dict[str, Any] | None:
    """Hold the site's lease of this rollout; None once held. While another delivery of the same
    site (the broker's redelivery after its visibility timeout) holds it alive, wait, touching
    nothing; if that one finishes, its result is this one's too (the same result, reported once)."""
    said = False
    while not redis.set(key, me, nx=True, px=int(ttl * 1000)):
        if (done := redis.get(result_key)) is not None:
            return json.loads(done)
        if ctx.cancel.cancelled:
            return {"status": "not_started", "error": f"cancelled ({ctx.cancel.why()}) while another worker ran "
                    "the site; this delivery touched nothing"}
        if not said:
            holder = (redis.get(key) or b"?").decode("utf-8", "replace")
            ctx.say(f"delivered again while {holder.split('#')[0]} still runs it (its lease is renewed): waiting, "
                    "without touching the site")
            said = True
        time.sleep(1.0)
    return None


def run_site(task, request: dict[str, Any]) -> dict[str, Any]:
    """Celery task body (bound): run one site of a rollout and return its result as JSON data."""
    from pathlib import Path

    from ..fleet import workflow
    from ..steps.playbook import load_playbook
    from ..run import lock as site_lock
    from ..run.lock import read_lock
    from .bundle import PROJECT_ENV, Bundle, materialise

    b = task.app.deployer_broker
    redis = b.redis()
    rollout, site_name = request["rollout"], request["site"]
    if redis.exists(REVOKED.format(task.request.id)) or redis.exists(CANCEL.format(rollout)):
        return {"site": site_name, "status": "not_started", "error": "the rollout was cancelled before this site "
                "started; nothing was touched"}
    started = time.monotonic()
    worker = socket.gethostname() + f"/{task.request.hostname or ''}"
    me = f"{worker}#{os.urandom(4).hex()}"
    claim = CLAIM.format(rollout, site_name)
    lease_key, result_key = LEASE.format(rollout, site_name), RESULT.format(rollout, site_name)
    redelivered = not redis.set(claim, worker, nx=True, ex=7 * 24 * 3600)
    ctx = RunContext(site_name, _publisher(redis, rollout))
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(redis, rollout, ctx, stop), daemon=True)
    watcher.start()
    site_lock.register_lease_checker(_lease_checker(redis))
    recovered: list[dict[str, Any]] = []
    result: dict[str, Any] | None = None
    held = False
    try:
        ttl = lease_ttl()
        if (earlier := _take_lease(redis, lease_key, result_key, me, ctx, ttl)) is not None:
            # another delivery's result: returned as it is (result stays None: never stored again)
            return {"site": site_name, **earlier} if "site" not in earlier else earlier
        held = True
        threading.Thread(target=_renew, args=(redis, lease_key, me, ttl, ctx, stop), daemon=True).start()
        if (done := redis.get(result_key)) is not None:  # an earlier delivery finished just before
            return json.loads(done)
        site_lock.LEASE = {"key": lease_key, "holder": me}  # written into the site lock this task takes
        root = materialise(Bundle.from_json(request["bundle"]), redis)
        bundle = request["bundle"]
        # the inventory's relative paths are the worker's own (its project folder), never the bundle's cache
        base = Path(getattr(task.app.conf, "deployer_project", None) or os.environ.get(PROJECT_ENV) or os.getcwd())
        inv = replace(workflow.inventory(root / bundle["inventory"]), base=base)
        site = inv.site(site_name)
        if ctx.cancel.cancelled:
            return {"site": site_name, "status": "not_started", "error": ctx.cancel.why(), "worker": worker}
        with workflow.session(site) as conn:
            pending = workflow.unfinished_message(conn)
            lock = read_lock(conn.site_server.files)
            stale = lock.stale() if lock else None
        if pending or (redelivered and lock is not None):
            ctx.say(f"picked up again after its worker was lost: recovering site {site_name} first"
                    if redelivered else f"site {site_name} has an unfinished run: recovering it first")
            # this task holds the rollout's lease of the site, so an earlier delivery is gone (its lease
            # expired): its lock may be broken. A lock whose holder is seen alive (its own lease renewed,
            # or its process on this host) never is.
            breakable = lock is not None and (stale is True or (redelivered and stale is None))
            for r in workflow.recover(site, ctx, break_lock=breakable):
                recovered.append({"run": r.run, "status": str(r.status), "reason": r.error})
        pb = load_playbook(root / bundle["playbook"])
        outcome = workflow.apply_playbook(pb, site, ctx, break_lock=False)
        r = outcome.result
        assert r is not None  # questions are answered yes on a worker
        result = {"site": site_name, "status": str(r.status), "run": r.run, "error": r.error,
                  "remaining": r.remaining, "warnings": r.warnings, "journal": r.journal,
                  "seconds": round(time.monotonic() - started, 3),
                  "actions_done": r.actions_done, "report": r.report.to_json() if r.report else None,
                  "recovered": recovered, "worker": worker, "redelivered": redelivered}
        return result
    except DeployerError as exc:
        message = str(exc)
        if "root" in locals():
            # the bundle's copy in this worker's cache is no file the operator knows: name the controller's
            message = message.replace(str(root / request["bundle"]["inventory"]),
                                      f"{request['bundle']['inventory']} (the controller's inventory)")
        if "base" in locals() and str(base) in message:
            message += (f" (the inventory's relative paths are read on worker {worker} from its project folder "
                        f"{base}: `deployer worker --project DIR`)")
        status = "error"
        if "site" in locals():
            # an error before this task changed anything, on a site an earlier run left half-patched: that
            # site is not restored, whatever this error was (the controller says so, with the way out)
            try:
                with workflow.session(site) as conn:
                    if pending := workflow.unfinished_message(conn):
                        status, message = "unfinished", f"{message}; {pending}"
            except DeployerError:
                pass
        result = {"site": site_name, "status": status, "error": message, "exit_code": int(exc.exit_code),
                  "unreachable": isinstance(exc, NetworkError),  # raised before any change: its own outcome
                  "recovered": recovered, "worker": worker, "redelivered": redelivered,
                  "seconds": round(time.monotonic() - started, 3)}
        return result
    finally:
        stop.set()
        site_lock.LEASE = None
        try:
            if result is not None:
                # before the lease goes: a delivery waiting on it then finds the result, not a free site
                redis.set(result_key, json.dumps(result), ex=7 * 24 * 3600)
            if held and (redis.get(lease_key) or b"").decode("utf-8", "replace") == me:
                redis.delete(lease_key)
            redis.delete(claim)  # reached only if this process lived to the end: the site is settled
        except Exception:  # noqa: BLE001 - the result matters more than the claim
            pass


def exit_code_of(result: dict[str, Any]) -> int:
    status = result.get("status")
    if status in ("committed", "nothing", "finished"):
        return int(ExitCode.OK)
    if status == "rolled_back":
        return int(ExitCode.FAILED_RESTORED)
    if status in ("rollback_failed", "unfinished"):
        return int(ExitCode.NOT_RESTORED)
    return int(result.get("exit_code", ExitCode.FAILED_RESTORED))
