"""One credential cache per process: each distinct password source is read (or asked) once.

A fleet of 100 sites whose servers all take `password: {file: ~/.deployer/fleet.pw}` reads
that file once, not 100 times from 100 threads at the same moment; a `{prompt: true}`
password is asked once per account and host (`what`), even when a command opens the same
site's session more than once; `{env: VAR}` yields one Secret, checked against the process
environment at each use (a lookup in memory), so that a variable the process itself changed
is taken anew.

Keys name the source, never the value: (env, VARIABLE), (file, absolute path, and the
file's identity: inode, size, write time), (prompt, account on host). A password file
that is replaced or edited while a long-lived process runs is read again, because its
identity changed; one that is unchanged is not read again. A source that cannot be
resolved (unset variable, missing or public file, no terminal) is not cached: its error is
raised to each site that needs it, with its message. The values are Secrets (secrets.py):
masked in every str() and repr(), so neither the cache nor its keys can leak one into a
message or a log.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Hashable

from ..model.secrets import Secret, SecretSource


def source_key(source: SecretSource, base: Path, what: str) -> Hashable:
    if source.env:
        return ("env", source.env)
    if source.file:
        path = (base / os.path.expanduser(source.file)).resolve()
        try:
            st = path.stat()
        except OSError:
            return ("file", str(path), None)  # resolve() says what is wrong with it, every time
        return ("file", str(path), (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
    return ("prompt", what)


class CredentialCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, Secret] = {}
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get(self, source: SecretSource, base: Path, what: str) -> Secret:
        key = source_key(source, base, what)
        with self._lock:
            if self._fresh(key):
                return self._values[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        # one thread reads a source while the others that want it wait for its value, so that
        # ten sites starting at once still read the file (or ask the question) once
        with key_lock:
            with self._lock:
                if self._fresh(key):
                    return self._values[key]
            secret = source.resolve(base, what)
            with self._lock:
                if key[0] == "file":  # an older version of the same file is not wanted any more
                    for old in [k for k in self._values if k[0] == "file" and k[1] == key[1]]:  # type: ignore[index]
                        del self._values[old]
                if key[-1] is not None:
                    self._values[key] = secret
            return secret

    def _fresh(self, key: Hashable) -> bool:
        """Cached, and still what the source holds. A variable is compared with the process
        environment (a lookup in memory, no I/O): the process itself may have changed it."""
        if key not in self._values:
            return False
        if key[0] == "env":  # type: ignore[index]
            return os.environ.get(key[1]) == self._values[key].reveal()  # type: ignore[index]
        return True

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._key_locks.clear()


CACHE = CredentialCache()  # the process's one cache: every connection resolves its passwords here


def resolve(source: SecretSource, base: Path, what: str) -> Secret:
    return CACHE.get(source, base, what)
