"""Where the broker is, and the Celery app that talks to it.

The broker URL (`--broker` or DEPLOYER_BROKER) carries no password: a URL is printed in
process lists, shell histories and logs. The Redis password comes from the environment
variable DEPLOYER_BROKER_PASSWORD or from a file only its owner can read
(DEPLOYER_BROKER_PASSWORD_FILE, checked as inventory password files are), and is put into
the URL only inside this process; what deployer prints is `describe()`, never the URL.

Celery is configured for what a deployment needs, not for throughput: JSON messages only
(no pickle: a message is data, never code), tasks acknowledged after they finish and
requeued when the worker running them dies (acks_late, reject_on_worker_lost), one task
prefetched per worker process (a worker does not sit on sites another could run), and a
queue per region, `deployer.<region>`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from ..errors import BrokerUnreachable, InputError
from ..model.redact import scrub
from ..model.secrets import Secret, read_secret_file

ENV_URL = "DEPLOYER_BROKER"
ENV_PASSWORD = "DEPLOYER_BROKER_PASSWORD"
ENV_PASSWORD_FILE = "DEPLOYER_BROKER_PASSWORD_FILE"
# seconds before a task whose worker vanished (killed, power lost) is handed to another
# worker; a task runs one site, so an hour is generous (Celery's own default)
ENV_VISIBILITY = "DEPLOYER_BROKER_VISIBILITY_TIMEOUT"
TASK = "deployer.run_site"


def queue(region: str) -> str:
    return f"deployer.{region}"


@dataclass(frozen=True)
class Broker:
    url: str  # without a password
    password: Secret | None

    def describe(self) -> str:
        return self.url + (" (password from " + ("a file" if os.environ.get(ENV_PASSWORD_FILE) else ENV_PASSWORD)
                           + ")" if self.password else "")

    def full_url(self) -> str:
        """The URL with the password: for the libraries only, never to be printed."""
        if self.password is None:
            return self.url
        parts = urlsplit(self.url)
        netloc = f":{quote(self.password.reveal(), safe='')}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    def redis(self):
        import redis

        parts = urlsplit(self.url)
        db = int(parts.path.strip("/") or 0)
        return redis.Redis(host=parts.hostname or "127.0.0.1", port=parts.port or 6379, db=db,
                           password=self.password.reveal() if self.password else None,
                           socket_connect_timeout=10, health_check_interval=30)


def broker(url: str | None) -> Broker:
    url = url or os.environ.get(ENV_URL)
    if not url:
        raise InputError(f"no broker: pass --broker redis://HOST:PORT/DB or set {ENV_URL}")
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise InputError(f"broker {parts.scheme}://... is not supported; deployer's workers use Redis "
                         "(redis://HOST:PORT/DB or rediss:// for TLS)")
    if parts.password or parts.username:
        raise InputError(f"the broker URL must not carry a user or password (it would show in process lists and "
                         f"logs); set {ENV_PASSWORD} or {ENV_PASSWORD_FILE} instead")
    if not parts.hostname:
        raise InputError(f"broker URL {scrub(url)!r} names no host")
    try:
        db = int(parts.path.strip("/") or 0)
        _ = parts.port
    except ValueError:
        raise InputError(f"broker URL {scrub(url)!r}: the port and the database must be numbers") from None
    password = None
    if os.environ.get(ENV_PASSWORD):
        password = Secret(os.environ[ENV_PASSWORD])
    elif os.environ.get(ENV_PASSWORD_FILE):
        password = Secret(read_secret_file(Path(os.environ[ENV_PASSWORD_FILE]).expanduser(), "the broker password"))
    return Broker(urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", "")), password)


def check(b: Broker) -> None:
    """Reach the broker and log in, before anything is journaled or sent: a refused password is
    bad input (exit 2), a broker that cannot be reached is a server that could not be reached
    (exit 1, nothing changed); both said in words, never a traceback."""
    import redis

    client = b.redis()
    try:
        client.ping()
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError) as exc:
        raise InputError(f"the broker {b.describe()} refused the password ({scrub(str(exc))}); set {ENV_PASSWORD} "
                         f"or {ENV_PASSWORD_FILE} to the password its `requirepass` names") from None
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
            raise InputError(f"the broker {b.describe()} wants a password ({scrub(str(exc))}); set {ENV_PASSWORD} "
                             f"or {ENV_PASSWORD_FILE}") from None
        raise BrokerUnreachable(f"the broker {b.describe()} answered with an error: {scrub(str(exc))}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        raise BrokerUnreachable(f"the broker {b.describe()} cannot be reached ({scrub(str(exc))}); nothing was sent "
                            "and no site was touched") from None
    finally:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a connection that never opened
            pass


def celery_app(b: Broker):
    """The Celery app for this broker, with the one task deployer runs on workers."""
    from celery import Celery

    from . import tasks

    app = Celery("deployer", broker=b.full_url(), backend=b.full_url(), set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_track_started=True, result_extended=True, result_expires=7 * 24 * 3600,
        # the tasks of a dead worker are swept back into the queue every 10 s once past the
        # visibility timeout: kombu scans only every 10th sweep by default, which came 100 s late
        broker_transport_options={"visibility_timeout": int(os.environ.get(ENV_VISIBILITY, "3600")),
                                  "unacked_restore_interval": 10, "unacked_restore_throttle": 1},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_send_task_events=False, task_send_sent_event=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(tasks.run_site)
    app.deployer_broker = b
    return app
