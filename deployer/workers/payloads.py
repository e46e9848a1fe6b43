"""Hotfix files travel by content: published once per rollout under their sha256, cached by
each worker, and checked by hash before use. A worker never uses bytes it cannot verify:
whatever the broker, the network or its own disk did to them, a file whose sha256 is not
its name is refused (and fetched again once, then the site fails).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import PayloadUnverifiable

KEY = "deployer:payload:{}"
TTL = 7 * 24 * 3600  # a rollout's payloads outlive it long enough for a resume


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def publish(redis, path: Path, sha256: str | None = None) -> str:
    """Store `path` under its sha256 unless it is there already; the sha256."""
    sha256 = sha256 or sha256_file(path)
    key = KEY.format(sha256)
    if not redis.exists(key):
        redis.set(key, path.read_bytes(), ex=TTL)
    else:
        redis.expire(key, TTL)
    return sha256


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployer" / "payloads"


def fetch(redis, sha256: str, cache: Path | None = None) -> Path:
    """The verified local copy of payload `sha256`: from the cache, else from the store."""
    cache = cache or cache_dir()
    path = cache / sha256
    if path.is_file() and sha256_file(path) == sha256:
        return path
    data = redis.get(KEY.format(sha256))
    if data is None:
        raise PayloadUnverifiable(f"payload {sha256[:12]}... is not in the broker's store (expired, or never "
                                  "published): run the rollout again from the controller")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PayloadUnverifiable(f"payload {sha256[:12]}... from the broker does not hash to its name: refused")
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{sha256[:12]}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
    return path
