"""The local log of a command: what the terminal showed, plus debug detail, never a secret.

Every command that works on a site writes one (`$XDG_STATE_HOME/deployer/logs/`, by default
`~/.local/state/deployer/logs/`, or `--log FILE`), readable by its owner only. Lines go
through Python's logging: the renderers log what they show under `deployer.output`, the
run's internals log debug detail under `deployer.*`; `-v` also shows that detail on stderr.
Every line is passed through `secrets.redact`, which blanks any password this process has
read, so a secret that reached a message by mistake still never reaches the file.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .escape import visible

LOGGER = "deployer"
OUTPUT = "deployer.output"


def log_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "deployer" / "logs"


class _Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # imported here, not with the module: report.out imports this module for every command,
        # and secrets brings pydantic, which `deployer --version` and `--help` do not need
        from ..model.redact import redact

        return visible(redact(super().format(record)))  # a log read with `less -R` or cat is a terminal too


class _Readable(_Redacting):
    """-v on a terminal: a journal record as words (`#3 backup: action 3, server DEMOSRV, ...`),
    not its raw JSON line, which the log file keeps whole."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        head, sep, tail = text.partition(": {")
        if not sep or not tail.endswith("}"):
            return text
        try:
            data = json.loads("{" + tail)
        except ValueError:
            return text
        data.pop("ts", None)
        seq, event = data.pop("seq", None), data.pop("event", "record")
        parts = []
        for k, v in data.items():
            if isinstance(v, (dict, list)):
                v = f"{len(v)} entries"
            elif isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
                v = v[:12] + "..."  # a sha256: its start identifies it
            parts.append(f"{k} {v}")
        return f"{head}: " + (f"#{seq} " if seq is not None else "") + f"{event}: " + ", ".join(parts)


def redact_every_record() -> None:
    """Every log record of this process, whoever's handler writes it (Celery's and kombu's own
    logging on a worker, which names the broker's URL), is redacted when it is made: its
    message is formatted once, passed through `redact`, and kept as plain text."""
    from ..model.redact import redact

    previous = logging.getLogRecordFactory()
    if getattr(previous, "deployer_redacts", False):
        return

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's own error to report
            return record
        record.msg, record.args = redact(text), None
        if record.exc_info and not record.exc_text:
            # a traceback quotes the values of its frames' errors (a connection error names its URL)
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    factory.deployer_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _open_private(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


@contextmanager
def command_log(command: str, path: Path | None = None, *, verbose: bool = False,
                enabled: bool = True) -> Iterator[Path | None]:
    """Log this command to `path` (or a new file in log_dir()) while the block runs; yields the path.

    A log that cannot be written is a warning on stderr, never a reason to stop: the log
    serves the operator, the run serves the site."""
    logger = logging.getLogger(LOGGER)
    handlers: list[logging.Handler] = []
    where: Path | None = None
    if enabled:
        where = path or log_dir() / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{command}.log"
        try:
            stream = _open_private(where)
        except OSError as exc:
            print(f"deployer: warning: no log written ({where}: {exc.strerror or exc})", file=sys.stderr)
            where = None
        else:
            if path is None:  # the default folder is kept bounded (report/logkeep.py)
                from .logkeep import prune

                prune(where.parent, keep_also=where)
            fh = logging.StreamHandler(stream)
            fh.setLevel(logging.DEBUG)
            fh.setFormatter(_Redacting("%(asctime)s %(levelname)-5s %(name)s: %(message)s"))
            handlers.append(fh)
    if verbose:
        sh = logging.StreamHandler(sys.stderr)
        sh.setLevel(logging.DEBUG)
        sh.setFormatter(_Readable("debug: %(name)s: %(message)s"))
        sh.addFilter(lambda r: not r.name.startswith(OUTPUT))  # the terminal shows those already
        handlers.append(sh)
    previous = logger.level
    logger.setLevel(logging.DEBUG if handlers else logging.WARNING)
    for h in handlers:
        logger.addHandler(h)
    logger.debug("deployer %s (pid %d, cwd %s)", " ".join(sys.argv[1:]), os.getpid(), os.getcwd())
    try:
        yield where
    finally:
        for h in handlers:
            logger.removeHandler(h)
            try:
                h.close()
                if isinstance(h, logging.StreamHandler) and h.stream not in (sys.stderr, sys.stdout):
                    h.stream.close()
            except OSError:
                pass
        logger.setLevel(previous)


def output(text: str) -> None:
    """A line the terminal showed, for the log."""
    logger = logging.getLogger(OUTPUT)
    if logger.isEnabledFor(logging.INFO):
        logger.info(text)
