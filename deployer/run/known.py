"""Known hashes: the sha256 of a file deployer hashed or wrote, kept with the file's fingerprint,
so that a later command trusts the hash instead of reading the file again (rsync's model).

A **fingerprint** is what the transport says of a file without reading it: size, last write
time, and, where the transport gives them, the change time and the file id (the mock: the
inode's ctime and number; SMB 2/3, SMB1 and SFTP give size and write time). A recorded hash is
trusted only when a fresh stat of the file returns exactly the recorded fingerprint; anything
else (no record, another size, time, change time or id) reads the file, and the hash read is
recorded in its place. What this cannot see: a rewrite in place that keeps the size, puts the
write time back and (where the transport reports them) keeps the file id and change time.
`--checksum` (plan, apply, verify) reads every file as before and trusts no record.

**Where**: `.deployer\\known.json` on the site server, next to the run store and the lock, one
per site (every server's files, keyed by server). The records describe that site's files, so
they travel with it: any controller, a regional worker or a fleet's process reads the same ones,
and a server rebuilt without its `.deployer` folder starts with none. It is written only by a
command that holds the site lock (apply, rollback, recover, prune), when the lock is released:
one writer at a time, plan and verify write nothing to the site. Written to a temporary name,
then renamed over the old one: a reader sees the old records or the new, never half of them; a
damaged or unreadable file counts as no records (the files are read, as before this existed).

`KnownFiles` wraps a server's FileTransport for a session: what asks for a sha256 (`sha256`,
`stat_sha256`, `stat_sha256_many`, `sha256_seen`) is answered from a record that holds, and
every hash it reads is recorded; a rename carries a record to the new name (bound to the new
name's fingerprint at its next stat, if size, time and id are the same); any other change to a
path forgets what was known of it and of everything below it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..model import winpath
from ..model.runpaths import STATE_DIR
from ..model.state import FileState
from ..model.transport import SERVER_COPY
from ..targets.base import FileStat, FileTransport, stat_many
from ..targets.connect import Endpoint, SiteConnection
from ..targets.temps import DEPLOYER, temp_name

STORE = winpath.join(STATE_DIR, "known.json")
STORE_TEMP = temp_name(STORE, DEPLOYER, "known")  # a registered temporary name (targets/temps.py)
FORMAT = 1
LIMIT = 50_000  # records kept per site (a site server holds a few hundred files deployer ever reads)

Fingerprint = tuple[int, int, "int | None", "int | None"]
log = logging.getLogger("deployer.known")


def fingerprint(stat: FileStat) -> Fingerprint:
    return (stat.size, stat.mtime_ns, stat.change_ns, stat.file_id)


@dataclass
class _Moved:
    """A record carried over by a rename: the content is the source's; the fingerprint is taken at
    the destination's next stat, if it still has the size, write time and id the source had."""

    size: int
    mtime_ns: int
    file_id: int | None
    sha256: str


class KnownHashes:
    """One site's records: {(server, path key): (fingerprint, sha256, path)}."""

    def __init__(self, store_files: FileTransport, *, trust: bool = True):
        self._files = store_files  # the site server's own transport (not wrapped)
        self.trust = trust  # False: --checksum, every file read (and recorded)
        self._records: dict[tuple[str, str], tuple[Fingerprint, str, str]] | None = None
        self._moved: dict[tuple[str, str], _Moved] = {}
        self._gone: list[tuple[tuple[str, str], bool]] = []  # forgotten before the records were read
        self.dirty = False
        self.hits = 0  # hashes answered from a record (the session's debug line, `-v --log`)
        self.reads = 0  # hashes read

    @staticmethod
    def _key(server: str, path: str) -> tuple[str, str]:
        return server.casefold(), winpath.key(path)

    def _all(self) -> dict[tuple[str, str], tuple[Fingerprint, str, str]]:
        if self._records is None:
            self._records = {}
            try:
                if self._files.stat(STORE) is not None:
                    doc = json.loads(b"".join(self._files.read_chunks(STORE)))
                    if doc.get("format") == FORMAT:
                        for server, files in doc["servers"].items():
                            for path, r in files.items():
                                fp = (int(r["size"]), int(r["mtime_ns"]), r.get("change_ns"), r.get("file_id"))
                                self._records[self._key(server, path)] = (fp, str(r["sha256"]), path)
            except Exception as exc:  # noqa: BLE001 - a record file that cannot be read is no records, never a failure
                log.debug("known hashes not read (%s): every file is read", exc)
                self._records = {}
            gone, self._gone = self._gone, []
            for (server, path), below in gone:
                self._drop(self._records, server, path, below)
        return self._records

    def knows(self, server: str, path: str) -> bool:
        """Whether asking for a stat first can spare a read."""
        if not self.trust:
            return False
        k = self._key(server, path)
        return k in self._moved or k in self._all()

    def lookup(self, server: str, path: str, stat: FileStat | None) -> str | None:
        """The recorded sha256 if `stat` (fresh) is the recorded fingerprint."""
        if stat is None or stat.is_dir:
            return None
        self.saw(server, path, stat)
        if not self.trust:
            return None
        rec = self._all().get(self._key(server, path))
        if rec is None or rec[0] != fingerprint(stat):
            return None
        self.hits += 1
        return rec[1]

    def note(self, server: str, path: str, stat: FileStat | None, sha256: str | None, *, read: bool = True) -> None:
        """`sha256` was just read from the file that `stat` (taken before the read) describes
        (read=False: vouched for without a read, see vouched_copies)."""
        self.reads += read
        k = self._key(server, path)
        self._moved.pop(k, None)
        if stat is None or stat.is_dir or not sha256:
            self.forget(server, path)
            return
        recs = self._all()
        new = (fingerprint(stat), sha256, path)
        if recs.get(k) != new:
            recs[k] = new
            self.dirty = True

    def saw(self, server: str, path: str, stat: FileStat | None) -> None:
        """A fresh stat: a record a rename carried to this name is bound to it (or dropped)."""
        moved = self._moved.pop(self._key(server, path), None) if self._moved else None
        if moved is None:
            return
        if stat is not None and not stat.is_dir and (stat.size, stat.mtime_ns) == (moved.size, moved.mtime_ns) \
                and stat.file_id == moved.file_id:
            self._all()[self._key(server, path)] = (fingerprint(stat), moved.sha256, path)
            self.dirty = True

    def moved(self, server: str, src: str, dst: str, *, linked: bool = False) -> None:
        """src is now dst (linked: dst is a second name of src, an NTFS hard link)."""
        rec = None if self._records is None else self._records.get(self._key(server, src))
        if not linked:
            self.forget(server, src, below=True)
        self.forget(server, dst, below=True)
        if rec is not None:
            fp, sha, _ = rec
            self._moved[self._key(server, dst)] = _Moved(fp[0], fp[1], fp[3], sha)

    def forget(self, server: str, path: str, *, below: bool = False) -> None:
        """Nothing is known any more of `path` (below: nor of anything below it, a folder)."""
        s, k = self._key(server, path)
        self._drop(self._moved, s, k, below)
        if self._records is None:  # not read yet (and perhaps never needed): dropped when it is
            self._gone.append(((s, k), below))
            return
        if self._drop(self._records, s, k, below):
            self.dirty = True

    @staticmethod
    def _drop(table: dict, s: str, k: str, below: bool) -> bool:
        hit = table.pop((s, k), None) is not None
        if below and table:
            under = k + "\\"
            for key in [key for key in table if key[0] == s and key[1].startswith(under)]:
                del table[key]
                hit = True
        return hit

    def save(self) -> None:
        """Write the records (only a command holding the site lock calls this); best effort."""
        if not self.dirty or self._records is None:
            return
        servers: dict[str, dict[str, Any]] = {}
        for (server, _), (fp, sha, path) in list(self._records.items())[-LIMIT:]:
            servers.setdefault(server, {})[path] = {"size": fp[0], "mtime_ns": fp[1], "change_ns": fp[2],
                                                    "file_id": fp[3], "sha256": sha}
        data = json.dumps({"format": FORMAT, "servers": servers}, sort_keys=True).encode()
        try:
            self._files.write_file(STORE_TEMP, [data])
            self._files.rename(STORE_TEMP, STORE, replace=True)
            self.dirty = False
        except Exception as exc:  # noqa: BLE001 - unsaved records cost a read next time; they never decide a run
            log.debug("known hashes not saved: %s", exc)


class KnownFiles:
    """A server's FileTransport whose sha256 questions go through the site's known hashes."""

    # optional transport methods (their presence is a capability): wrapped when the inner one has them
    _OPTIONAL = ("stat_many", "stat_sha256", "stat_sha256_many", "copy_many", "rename_many", "hard_link",
                 "hard_link_many")

    def __init__(self, inner: FileTransport, known: KnownHashes, server: str):
        self._inner = inner
        self._known = known
        self._server = server
        self.server = inner.server

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in self._OPTIONAL:
            value = getattr(self, "_" + name)
        elif not name.startswith("_") and callable(value):
            setattr(self, name, value)  # delegated from now on without this lookup
        return value

    def __repr__(self) -> str:
        return f"Known({self._inner!r})"

    @property
    def quick_check(self) -> bool:
        """Whether a file with its source's size and write time may be taken as a copy of it
        (rsync's quick check: the site reset's plan); False with --checksum: contents compared."""
        return self._known.trust

    # --- reading ---------------------------------------------------------------------------------

    def stat(self, path: str) -> FileStat | None:
        st = self._inner.stat(path)
        self._known.saw(self._server, path, st)
        return st

    def _stat_many(self, paths: list[str]) -> list[FileStat | None]:
        stats = list(self._inner.stat_many(paths))  # type: ignore[attr-defined]
        for p, st in zip(paths, stats):
            self._known.saw(self._server, p, st)
        return stats

    def _stat_now(self, paths: list[str]) -> list[FileStat | None]:
        many = getattr(self._inner, "stat_many", None)
        return self._stat_many(paths) if many is not None and len(paths) > 1 else [self.stat(p) for p in paths]

    def sha256_if_known(self, path: str, stat: FileStat) -> str | None:
        """The recorded sha256 if `stat`, just taken, is its fingerprint (no round trip)."""
        return self._known.lookup(self._server, path, stat)

    def vouch(self, path: str, stat: FileStat, sha256: str) -> None:
        """Record `sha256` for the file `stat` describes, unread: a server-side copy of content known
        (vouched_sources), whose size and write time came out as the source's."""
        self._known.note(self._server, path, stat, sha256, read=False)

    def sha256_as_copied(self, path: str, stat: FileStat, sha256: str) -> str | None:
        """A copy the site's programs made of content known (`sha256`), found with that content's
        size and write time (observe.holds, copied=True): its record if one holds, else `sha256`,
        recorded unread. None with --checksum: read it."""
        if not self._known.trust:
            return None
        known = self._known.lookup(self._server, path, stat)
        if known is None:
            self._known.note(self._server, path, stat, sha256, read=False)
        return known or sha256

    def sha256_seen(self, path: str, stat: FileStat) -> str:
        sha = self._known.lookup(self._server, path, stat)
        if sha is None:
            sha = self._inner.sha256(path)
            self._known.note(self._server, path, stat, sha)
        return sha

    def sha256(self, path: str) -> str:
        both = getattr(self._inner, "stat_sha256", None)
        if both is not None and not self._known.knows(self._server, path):
            st, sha = both(path)
            if sha is not None:
                self._known.note(self._server, path, st, sha)
                return sha
        st = self.stat(path)
        if st is None or st.is_dir:
            return self._inner.sha256(path)  # says what is wrong, as it always has
        return self.sha256_seen(path, st)

    def _stat_sha256(self, path: str) -> tuple[FileStat | None, str | None]:
        if self._known.knows(self._server, path):
            st = self.stat(path)
            if st is None or st.is_dir:
                return st, None
            return st, self.sha256_seen(path, st)
        st, sha = self._inner.stat_sha256(path)  # type: ignore[attr-defined]
        if sha is not None:
            self._known.note(self._server, path, st, sha)
        return st, sha

    def _stat_sha256_many(self, paths: list[str], sizes: list[int | None] | None = None
                          ) -> list[tuple[FileStat | None, str | None]]:
        out: list[tuple[FileStat | None, str | None] | None] = [None] * len(paths)
        asked = [k for k, p in enumerate(paths) if self._known.knows(self._server, p)]
        for k, st in zip(asked, self._stat_now([paths[k] for k in asked])):
            sha = self._known.lookup(self._server, paths[k], st)
            if sha is not None or st is None or st.is_dir:
                out[k] = (st, sha)
        rest = [k for k in range(len(paths)) if out[k] is None]
        if rest:
            got = self._inner.stat_sha256_many([paths[k] for k in rest],  # type: ignore[attr-defined]
                                               [sizes[k] for k in rest] if sizes is not None else None)
            for k, (st, sha) in zip(rest, got):
                if sha is not None:
                    self._known.note(self._server, paths[k], st, sha)
                out[k] = (st, sha)
        return out  # type: ignore[return-value]

    # --- changing: what was known of a changed path is forgotten, a renamed one carried over ------

    def write_file(self, path: str, chunks: Iterable[bytes], *, exclusive: bool = False) -> int:
        self._known.forget(self._server, path)
        return self._inner.write_file(path, chunks, exclusive=exclusive)

    def append(self, path: str, data: bytes, *, durable: bool = True) -> None:
        self._known.forget(self._server, path)
        self._inner.append(path, data, durable=durable)

    def copy(self, src: str, dst: str) -> None:
        self._known.forget(self._server, dst)
        self._inner.copy(src, dst)

    def _copy_many(self, pairs: list[tuple[str, str]], *args: Any, **kw: Any) -> list[Any]:
        for _, dst in pairs:
            self._known.forget(self._server, dst)
        return self._inner.copy_many(pairs, *args, **kw)  # type: ignore[attr-defined]

    def _hard_link(self, src: str, dst: str) -> None:
        self._known.moved(self._server, src, dst, linked=True)  # one file, two names: its record for both
        self._inner.hard_link(src, dst)  # type: ignore[attr-defined]

    def _hard_link_many(self, pairs: list[tuple[str, str]]) -> list[Any]:
        for src, dst in pairs:
            self._known.moved(self._server, src, dst, linked=True)
        errors = self._inner.hard_link_many(pairs)  # type: ignore[attr-defined]
        for (src, dst), error in zip(pairs, errors):
            if error is not None:  # not linked: nothing is known of the new name
                self._known.forget(self._server, dst)
        return errors

    def rename(self, src: str, dst: str, *, replace: bool = False) -> None:
        self._known.moved(self._server, src, dst)
        self._inner.rename(src, dst, replace=replace)

    def _rename_many(self, pairs: list[tuple[str, str]], *args: Any, **kw: Any) -> list[Any]:
        for src, dst in pairs:
            self._known.moved(self._server, src, dst)
        errors = self._inner.rename_many(pairs, *args, **kw)  # type: ignore[attr-defined]
        for (src, dst), error in zip(pairs, errors):
            if error is not None:  # not moved: nothing is known of either name
                self._known.forget(self._server, dst)
        return errors

    def set_mtime(self, path: str, mtime_ns: int) -> None:
        self._known.forget(self._server, path)
        self._inner.set_mtime(path, mtime_ns)

    def remove(self, path: str) -> None:
        self._known.forget(self._server, path, below=True)
        self._inner.remove(path)

    def rmdir(self, path: str) -> None:
        self._known.forget(self._server, path, below=True)
        self._inner.rmdir(path)


# --- the read-back after a server-side copy ------------------------------------------------------


def vouched_sources(ep: Endpoint, items: Sequence[tuple[str, FileState]],
                    stats: Sequence[FileStat | None] | None = None) -> list[bool]:
    """Before copying each (source, the content it must hold) on its server: whether the source
    holds it by its recorded fingerprint (a stat, no read; `stats`: taken just now). Only for a
    copy that runs on the server (SERVER_COPY: the bytes never cross the wire, so nothing in
    transit can change them) and a session that trusts records (not --checksum)."""
    seen = getattr(ep.files, "sha256_if_known", None)
    if seen is None or not ep.can(SERVER_COPY) or not items:
        return [False] * len(items)
    if stats is None:
        stats = stat_many(ep.files, [src for src, _ in items])
    # a content identified by fingerprint only (steps/base.py by_identity: no sha256 read) is vouched for by it
    return [st is not None and not st.is_dir and (st.size, st.mtime_ns) == (want.size, want.mtime_ns)
            and (want.sha256 is None or seen(src, st) == want.sha256)
            for (src, want), st in zip(items, stats)]


def vouched_copies(ep: Endpoint, items: Sequence[tuple[str, FileState]], vouched: Sequence[bool]
                   ) -> list[FileState | None]:
    """After the copies: each (copy, the content it must hold) whose source was vouched for and
    whose copy the server made with the size and write time of that content, as that content
    (recorded, not read); None for every other one, which the caller reads back as before."""
    out: list[FileState | None] = [None] * len(items)
    asked = [k for k, v in enumerate(vouched) if v]
    if not asked:
        return out
    for k, st in zip(asked, stat_many(ep.files, [items[k][0] for k in asked])):
        dst, want = items[k]
        if st is not None and not st.is_dir and (st.size, st.mtime_ns) == (want.size, want.mtime_ns):
            if want.sha256:
                ep.files.vouch(dst, st, want.sha256)  # type: ignore[attr-defined]
            out[k] = FileState(st.size, st.mtime_ns, want.sha256, st.name)
    return out


def attach(conn: SiteConnection, *, checksum: bool = False) -> KnownHashes:
    """Every endpoint of a site connection answers sha256 questions from the site's records."""
    known = KnownHashes(conn.site_server.files, trust=not checksum)
    for ep in conn.every_endpoint().values():
        ep.files = KnownFiles(ep.files, known, ep.name)  # type: ignore[assignment]
    conn.known = known
    return known


def describe(conn: SiteConnection) -> str | None:
    """What the session's records spared, for the log."""
    k = conn.known
    if not isinstance(k, KnownHashes):
        return None
    return f"{k.hits} hashes from known fingerprints, {k.reads} read" + ("" if k.trust else " (--checksum)")


def save(conn: SiteConnection) -> None:
    """The records a session learned, written by the holder of the site lock (session.locked)."""
    if isinstance(conn.known, KnownHashes):
        conn.known.save()


__all__ = ["KnownFiles", "KnownHashes", "attach", "fingerprint", "save", "vouched_copies", "vouched_sources"]
