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
import socket
import threading
import time
from typing import Any

from ..errors import DeployerError, ExitCode, NetworkError
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


def run_site(task, request: dict[str, Any]) -> dict[str, Any]:
    """Celery task body (bound): run one site of a rollout and return its result as JSON data."""
    from .. import workflow
    from ..model.playbook import load_playbook
    from ..run.lock import read_lock
    from .bundle import Bundle, materialise

    b = task.app.deployer_broker
    redis = b.redis()
    rollout, site_name = request["rollout"], request["site"]
    if redis.exists(REVOKED.format(task.request.id)) or redis.exists(CANCEL.format(rollout)):
        return {"site": site_name, "status": "not_started", "error": "the rollout was cancelled before this site "
                "started; nothing was touched"}
    started = time.monotonic()
    worker = socket.gethostname() + f"/{task.request.hostname or ''}"
    claim = CLAIM.format(rollout, site_name)
    redelivered = not redis.set(claim, worker, nx=True, ex=7 * 24 * 3600)
    ctx = RunContext(site_name, _publisher(redis, rollout))
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(redis, rollout, ctx, stop), daemon=True)
    watcher.start()
    recovered: list[dict[str, Any]] = []
    try:
        root = materialise(Bundle.from_json(request["bundle"]), redis)
        bundle = request["bundle"]
        inv = workflow.inventory(root / bundle["inventory"])
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
            # a redelivery means the broker gave up on the worker that had the site (no ack within the
            # visibility timeout): its lock may be broken unless its holder is seen alive here
            breakable = lock is not None and (stale is True or (redelivered and stale is None))
            for r in workflow.recover(site, ctx, break_lock=breakable):
                recovered.append({"run": r.run, "status": str(r.status), "reason": r.error})
        pb = load_playbook(root / bundle["playbook"])
        outcome = workflow.apply_playbook(pb, site, ctx, break_lock=False)
        r = outcome.result
        assert r is not None  # questions are answered yes on a worker
        return {"site": site_name, "status": str(r.status), "run": r.run, "error": r.error,
                "remaining": r.remaining, "journal": r.journal, "seconds": round(time.monotonic() - started, 3),
                "actions_done": r.actions_done, "report": r.report.to_json() if r.report else None,
                "recovered": recovered, "worker": worker, "redelivered": redelivered}
    except DeployerError as exc:
        return {"site": site_name, "status": "error", "error": str(exc), "exit_code": int(exc.exit_code),
                "unreachable": isinstance(exc, NetworkError),  # raised before any change: its own outcome
                "recovered": recovered, "worker": worker, "redelivered": redelivered,
                "seconds": round(time.monotonic() - started, 3)}
    finally:
        stop.set()
        try:
            redis.delete(claim)  # reached only if this process lived to the end: the site is settled
        except Exception:  # noqa: BLE001 - the result matters more than the claim
            pass


def exit_code_of(result: dict[str, Any]) -> int:
    status = result.get("status")
    if status in ("committed", "nothing", "finished"):
        return int(ExitCode.OK)
    if status == "rolled_back":
        return int(ExitCode.FAILED_RESTORED)
    if status == "rollback_failed":
        return int(ExitCode.NOT_RESTORED)
    return int(result.get("exit_code", ExitCode.FAILED_RESTORED))
