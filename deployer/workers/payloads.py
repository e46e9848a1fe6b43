"""Hotfix files travel by content: published once per rollout under their sha256, cached by
each worker, and checked by hash before use. A worker never uses bytes it cannot verify:
whatever the broker, the network or its own disk did to them, a file whose sha256 is not
its name is refused (and fetched again once, then the site fails).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

from ..errors import PayloadUnverifiable
from ..targets.base import local_sha256

KEY = "deployer:payload:{}"
TTL = 7 * 24 * 3600  # a rollout's payloads outlive it long enough for a resume


def sha256_file(path: Path) -> str:
    return local_sha256(path)


def publish(redis, path: Path, sha256: str | None = None) -> str:
    """Store `path` under its sha256 unless the store already holds those very bytes; the sha256.

    A key that exists is not trusted for existing: its bytes are read back and hashed, and
    replaced when they do not hash to the key (a damaged store, an earlier writer's bug), so
    that one bad copy cannot fail every later rollout of the hotfix. The file's own bytes are
    hashed as they are sent: a file that changed since the bundle named it is refused."""
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise PayloadUnverifiable(f"the hotfix file {path} changed while the rollout was starting (its sha256 is "
                                  f"{actual[:12]}..., the rollout names {sha256[:12]}...): start the rollout again")
    key = KEY.format(actual)
    stored = redis.get(key)
    if stored is None or hashlib.sha256(stored).hexdigest() != actual:
        redis.set(key, data, ex=TTL)
    else:
        redis.expire(key, TTL)
    return actual


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployer" / "payloads"


def fetch(redis, sha256: str, cache: Path | None = None) -> Path:
    """The verified local copy of payload `sha256`: from the cache, else from the store."""
    cache = cache or cache_dir()
    path = cache / sha256
    if path.is_file() and sha256_file(path) == sha256:
        return path
    for attempt in (1, 2):
        data = redis.get(KEY.format(sha256))
        if data is None:
            raise PayloadUnverifiable(f"payload {sha256[:12]}... is not in the broker's store (expired, or never "
                                      "published): run the rollout again from the controller")
        if hashlib.sha256(data).hexdigest() == sha256:
            break
        if attempt == 1:
            time.sleep(1.0)  # a controller may be replacing a bad copy right now (publish)
    else:
        # never cached: the next task, or the next rollout (whose publish replaces the bad copy), fetches again
        raise PayloadUnverifiable(f"payload {sha256[:12]}... from the broker does not hash to its name, twice: "
                                  "refused and not cached; start the rollout again from the controller, which "
                                  "replaces the damaged copy in the broker")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{sha256[:12]}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
