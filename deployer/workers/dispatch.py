"""The controller's side: send a site to its region's workers and follow it there.

A rollout publishes its hotfix files once (by sha256), then sends one task per site to the
queue of the site's region. The task's events come back on the rollout's Redis channel
and are replayed into the site's RunContext, so a remote site is drawn and journaled by
the controller exactly like a local one. Cancelling the rollout revokes the tasks that have
not started and sets the rollout's cancel key, which every running task watches.

A region whose workers are all down leaves its tasks queued: a site not started within
`start_timeout` is revoked and reported as never started (nothing touched), so a rollout
always ends.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run.context import RunContext
from .broker import TASK, Broker, celery_app, queue
from .bundle import Bundle
from .payloads import publish
from .tasks import CANCEL, EVENTS, REVOKED

NOT_STARTED = "not_started"
_log = logging.getLogger("deployer.dispatch")


@dataclass
class RemoteOutcome:
    site: str
    region: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.result.get("status", NOT_STARTED)


class Dispatcher:
    """One rollout's link to the broker: payloads, tasks, the event relay, cancellation."""

    def __init__(self, broker: Broker, rollout: str, bundle: Bundle, *, start_timeout: float = 300.0):
        self.broker = broker
        self.rollout = rollout
        self.bundle = bundle
        self.app = celery_app(broker)
        self.redis = broker.redis()
        self.start_timeout = start_timeout
        self.contexts: dict[str, RunContext] = {}
        self.tasks: dict[str, Any] = {}
        self._stop = threading.Event()
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(EVENTS.format(rollout))
        self._relay = threading.Thread(target=self._relay_events, daemon=True, name="deployer-events")
        self._relay.start()
        for relpath, sha in bundle.payloads.items():
            publish(self.redis, Path(bundle.sources[relpath]), sha)  # the controller's file, links followed

    def _relay_events(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._pubsub.get_message(timeout=0.2)
            except Exception:  # noqa: BLE001 - Redis restarting: resubscribe and go on
                time.sleep(0.5)
                try:
                    self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    self._pubsub.subscribe(EVENTS.format(self.rollout))
                except Exception:  # noqa: BLE001
                    pass
                continue
            if not msg or msg.get("type") != "message":
                continue
            try:
                ev = json.loads(msg["data"])
            except (ValueError, TypeError):
                _log.debug("event relay: not an event: %r", msg.get("data"))
                continue
            _log.debug("event relay: %s", ev)
            ctx = self.contexts.get(ev.get("site", ""))
            # plans, questions and results are the controller's own business: only the narrative is relayed
            if ctx is not None and ev.get("kind") in ("say", "warn", "progress", "bytes"):
                ctx.emit(ev["kind"], ev.get("text", ""), **(ev.get("data") or {}), remote=True)

    def run(self, site: str, region: str, ctx: RunContext, *, break_lock: bool = False) -> RemoteOutcome:
        """Send `site` to `region`'s queue and wait for its result; cancellation follows ctx.cancel."""
        self.contexts[site] = ctx
        request = {"rollout": self.rollout, "site": site, "bundle": self.bundle.to_json(), "break_lock": break_lock}
        task_id = f"{self.rollout}:{site}"
        async_result = self.app.send_task(TASK, args=[request], queue=queue(region), task_id=task_id)
        self.tasks[site] = async_result
        ctx.say(f"sent to region {region} (queue {queue(region)})")
        waited = time.monotonic()
        started = False
        while True:
            if ctx.cancel.cancelled:
                self.cancel(ctx.cancel.why())
            try:
                state = async_result.state
            except Exception:  # noqa: BLE001 - the result store restarting
                time.sleep(0.5)
                continue
            if state in ("SUCCESS", "FAILURE", "REVOKED"):
                break
            if state != "PENDING":
                started = True
            elif not started and time.monotonic() - waited > self.start_timeout:
                self._revoke(async_result)
                return RemoteOutcome(site, region, {"site": site, "status": NOT_STARTED, "error":
                                                    f"no worker of region {region} took it within "
                                                    f"{self.start_timeout:.0f} s; nothing was touched"})
            time.sleep(0.2)
        if state == "SUCCESS":
            return RemoteOutcome(site, region, async_result.result)
        if state == "REVOKED":
            return RemoteOutcome(site, region, {"site": site, "status": NOT_STARTED,
                                                "error": "cancelled before it started; nothing was touched"})
        return RemoteOutcome(site, region, {"site": site, "status": "error",
                                            "error": f"the worker's task failed: {async_result.result!r}"})

    def cancel(self, reason: str) -> None:
        """Stop the rollout: tasks not started are revoked, running ones roll back."""
        self.redis.set(CANCEL.format(self.rollout), reason or "cancelled", ex=24 * 3600)
        for r in self.tasks.values():
            try:
                if r.state == "PENDING":
                    self._revoke(r)
            except Exception:  # noqa: BLE001
                pass

    def _revoke(self, async_result) -> None:
        # Celery's revoke reaches only the workers running now: the key stops one started later
        self.redis.set(REVOKED.format(async_result.id), "1", ex=7 * 24 * 3600)
        async_result.revoke()

    def close(self) -> None:
        self._stop.set()
        self._relay.join(timeout=2)
        try:
            self._pubsub.close()
        except Exception:  # noqa: BLE001
            pass
