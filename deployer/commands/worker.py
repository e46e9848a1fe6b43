"""`deployer worker`: a Celery worker running one region's sites for controllers elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..model.numbers import whole


def worker(
    region: Annotated[str, typer.Option("--region", "-r", help="Consume this region's queue (sites with region: NAME).")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", parser=whole, help="Sites run at once.")] = 4,
    broker: Annotated[Optional[str], typer.Option("--broker", help="Redis URL without password (default: $DEPLOYER_BROKER); the password comes from $DEPLOYER_BROKER_PASSWORD or the 0600 file named by $DEPLOYER_BROKER_PASSWORD_FILE.")] = None,
    project: Annotated[Optional[Path], typer.Option("--project", metavar="DIR", help="The folder the inventory's relative paths (mock folders, key and password files) are read from on this worker (default: $DEPLOYER_WORKER_PROJECT, else the folder the worker is started in).")] = None,
) -> None:
    """Run sites of one region for controllers elsewhere (Celery worker; needs `pip install 'deployer[workers]'`)."""
    from ..workers.serve import serve

    serve(region, concurrency, broker, project=project)
