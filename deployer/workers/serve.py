"""`deployer worker`: a Celery worker that consumes one region's queue."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

from ..errors import InputError
from .broker import broker, celery_app, check, queue
from .bundle import PROJECT_ENV


def project_dir(given: Path | None) -> Path:
    """Where this worker reads the inventory's relative paths: --project, $DEPLOYER_WORKER_PROJECT, or
    the folder it was started in (as on the controller, where they are relative to the inventory's folder)."""
    folder = (given or Path(os.environ.get(PROJECT_ENV) or os.getcwd())).expanduser().resolve()
    if not folder.is_dir():
        raise InputError(f"--project {folder}: not a folder; give the folder the inventory's relative paths (mock "
                         "folders, key and password files) are read from on this worker")
    return folder


def serve(region: str, concurrency: int, url: str | None, *, loglevel: str = "INFO",
          project: Path | None = None) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", region):
        raise InputError(f"region {region!r} must be a name of letters, digits, '-', '_' or '.'")
    if not 1 <= concurrency <= 256:
        raise InputError("--concurrency is the number of sites run at once: 1 to 256")
    from ..report.log import redact_every_record

    redact_every_record()  # Celery logs its broker URL and connection errors with its own handlers
    folder = project_dir(project)
    from .tasks import lease_ttl

    ttl = lease_ttl()  # a bad $DEPLOYER_WORKER_LEASE_TTL stops the worker at start, not each site
    b = broker(url)
    check(b)  # Celery would retry a refused password for ever, logging the URL each time
    app = celery_app(b)
    app.conf.deployer_project = str(folder)  # read by each task, in the worker's child processes
    print(f"deployer worker for region {region}: queue {queue(region)} on {b.describe()}, "
          f"{concurrency} site(s) at a time, a site's lease renewed every {ttl / 3:g} s (lapsing {ttl:g} s after its "
          f"last beat); the inventory's relative paths are read from {folder}", flush=True)
    # prefork: each site in its own process, so one site's crash never takes another's run with it
    app.worker_main(["worker", "-Q", queue(region), "-c", str(concurrency), "-P", "prefork",
                     "-n", f"deployer-{region}-{os.getpid()}@{socket.gethostname()}", "--loglevel", loglevel,
                     "--without-gossip", "--without-mingle", "--without-heartbeat"])
