"""What a scan reads of a site: every file once, however many hotfixes name it.

`SiteReader` wraps each server's FileTransport in a `ReadOnce` facade and hands verify
(deployer/sms/verify.py, unchanged) a SiteConnection made of them, so that the scan judges each
manifest exactly as `deployer verify MANIFEST` does, from one reading of the site:

- before any judging, the union of the catalogue's paths is read: a folder in which three or
  more files are wanted is listed once, the others stat'ed (see LIST_AT); a folder that is not
  there answers for all its files, and a name listed twice in different case makes its
  hotfixes `cannot tell`;
- verify's stats (and its CaseResolver's, which stats every component of a path) are answered
  from that reading; a sha256 or the version resource is read at most once per file, and not
  at all when the file's date already decides (judge.py's _skip_needless_reads);
- nothing is written: every writing method raises ReadOnlyViolation, which no scan can catch
  as an ordinary target error.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

from ..model import winpath
from ..errors import DeployerError, NotADirectory, NotFound, TargetError
from ..targets.base import CHUNK, FileStat, FileTransport, stat_many
from ..targets.connect import Endpoint, SiteConnection

# Files wanted in one folder from which it is listed rather than stat'ed file by file: over SMB a
# listing is three round trips (open and query, the query that ends it, close), a stat one. A
# listing also shows names that differ only in case (a Samba share or an SFTP tree can hold
# PCMSVC32.EXE and Pcmsvc32.exe, Windows cannot): such a file is `cannot tell`. Listing every
# folder would catch them everywhere, at a round trip or two more than one verify.
LIST_AT = 3


class CaseTwins(TargetError):
    """A folder holds two names that differ only in case: which file a service uses cannot be told."""


class ReadOnlyViolation(DeployerError):
    """A scan tried to change a site: a defect of deployer, never the site's."""


@dataclass
class Reads:
    """What a scan cost on one server: the operations it sent."""

    stats: int = 0
    listings: int = 0
    reads: int = 0  # sha256 and version reads (whole or partial file reads)


class ReadOnce:
    """A FileTransport answering from one reading of each path; it writes nothing."""

    def __init__(self, real: FileTransport):
        self.real = real
        self.server = real.server
        self.cost = Reads()
        self._stat: dict[str, FileStat | None | TargetError] = {}
        self._listed: dict[str, dict[str, FileStat] | TargetError | None] = {}  # None: no such folder
        self._sha: dict[str, str] = {}
        self._chunks: dict[str, tuple[list[bytes], bool]] = {}  # bytes read so far, whether that is all
        self._unread: set[str] = set()
        self._twins: dict[str, dict[str, list[str]]] = {}  # folder -> casefolded name -> the names found

    # --- reading the union first ---------------------------------------------------------------

    def prefetch(self, paths: Iterable[str]) -> None:
        folders: dict[str, list[str]] = defaultdict(list)
        for p in paths:
            folders[winpath.key(winpath.parent(p))].append(p)
        alone: list[str] = []
        # a transport that stats many paths in one round trip (SMB 2/3) is asked as verify asks it:
        # every path in a few stat_many round trips, where a listing per folder costs one each
        batched = getattr(self.real, "stat_many", None) is not None  # not ReadOnce's own: the transport's
        for folder, wanted in folders.items():
            names = {winpath.key(p) for p in wanted}
            if len(names) >= LIST_AT and not batched:
                self._list(winpath.parent(wanted[0]))
            else:
                alone.extend(p for p in wanted if winpath.key(p) not in self._stat)
        if batched:  # the folders above them too: verify asks each for its spelling
            for p in list(alone):
                parts = winpath.split(p)
                alone.extend("\\".join(parts[:i]) for i in range(1, len(parts)))
        alone = list({winpath.key(p): p for p in alone if winpath.key(p) not in self._stat}.values())
        if len(alone) > 1:
            # the paths of folders not worth a listing, in as few round trips as the transport
            # can (SMB 2/3 compounds them, as verify asks): the same stats, fewer turns
            try:
                found = stat_many(self.real, alone)
            except TargetError:
                found = None  # each is then asked alone below, and keeps its own error
            if found is not None:
                self.cost.stats += len(alone)
                for path, st in zip(alone, found):
                    self._stat[winpath.key(path)] = st
        for p in alone:
            self.stat(p)

    def _list(self, folder: str) -> None:
        k = winpath.key(folder)
        if k in self._listed:
            return
        self.cost.listings += 1
        try:
            entries = self.real.listdir(folder)
        except (NotFound, NotADirectory):
            self._listed[k] = None
            return
        except TargetError as exc:
            self._listed[k] = exc
            return
        listing: dict[str, FileStat] = {}
        for e in entries:
            if e.name.casefold() in listing:
                self._twins.setdefault(k, {}).setdefault(e.name.casefold(), [listing[e.name.casefold()].name]).append(
                    e.name)
            listing.setdefault(e.name.casefold(), e)
        self._listed[k] = listing

    # --- FileTransport, reading ------------------------------------------------------------------

    def stat_many(self, paths: list[str]) -> list[FileStat | None]:
        """Each path's stat, from this reading where it has one; the rest asked in one batch (verify's
        spelling of the folders above its files goes through here: one round trip, not one a folder)."""
        missing = list({winpath.key(p): p for p in paths if winpath.key(p) not in self._stat
                        and not self._from_listing(p)}.values())
        if len(missing) > 1:
            try:
                found = stat_many(self.real, missing)
            except TargetError:
                found = None  # each is then asked alone, and keeps its own error
            if found is not None:
                self.cost.stats += len(missing)
                for path, st in zip(missing, found):
                    self._stat[winpath.key(path)] = st
        return [self.stat(p) for p in paths]

    def _from_listing(self, path: str) -> bool:
        parent = winpath.key(winpath.parent(path)) if winpath.split(path)[:-1] else None
        return parent is not None and parent in self._listed

    def stat(self, path: str) -> FileStat | None:
        k = winpath.key(path)
        if k not in self._stat:
            parent = winpath.key(winpath.parent(path)) if winpath.split(path)[:-1] else None
            if parent is not None and parent in self._listed:
                listing = self._listed[parent]
                if isinstance(listing, TargetError):
                    self._stat[k] = listing
                elif (twins := self._twins.get(parent, {}).get(winpath.basename(path).casefold())):
                    self._stat[k] = CaseTwins(
                        f"{winpath.parent(path)} holds {len(twins)} files whose names differ only in case: "
                        f"{', '.join(sorted(twins))}; Windows treats them as one, so which one is in use cannot be "
                        "told", server=self.server, path=path)
                else:
                    self._stat[k] = None if listing is None else listing.get(winpath.basename(path).casefold())
            else:
                self.cost.stats += 1
                try:
                    self._stat[k] = self.real.stat(path)
                except TargetError as exc:
                    self._stat[k] = exc
        found = self._stat[k]
        if isinstance(found, TargetError):
            raise found
        return found

    def listdir(self, path: str) -> list[FileStat]:
        self._list(path)
        listing = self._listed[winpath.key(path)]
        if isinstance(listing, TargetError):
            raise listing
        if listing is None:
            raise NotFound("the system cannot find the path specified", server=self.server, path=path)
        return list(listing.values())

    def sha256(self, path: str) -> str | None:  # type: ignore[override]
        k = winpath.key(path)
        if k in self._unread:
            return None  # verify then compares no hash: the date alone decided
        if k not in self._sha:
            self.cost.reads += 1
            self._sha[k] = self.real.sha256(path)
        return self._sha[k]

    def skip_content(self, path: str) -> None:
        """No hotfix's verdict on this file depends on its content (see judge.py): not read."""
        self._unread.add(winpath.key(path))

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """Verify reads until the version resource: the chunks it took are kept and replayed for
        the next hotfix naming the file; reading further than the first reader did (never, for
        the same question) reads the file again."""
        k = winpath.key(path)
        if k in self._unread:
            return
        if k in self._chunks:
            kept, whole = self._chunks[k]
            yield from kept
            if whole:
                return
            self.cost.reads += 1
            yield from list(self.real.read_chunks(path, chunk))[len(kept):]
            return
        kept: list[bytes] = []
        self._chunks[k] = (kept, False)
        self.cost.reads += 1
        for block in self.real.read_chunks(path, chunk):
            kept.append(block)
            yield block
        self._chunks[k] = (kept, True)

    def close(self) -> None:
        pass  # the real transport belongs to the connection

    # --- FileTransport, writing: never ---------------------------------------------------------

    def _refuse(self, *args: object, **kwargs: object):
        raise ReadOnlyViolation(f"a scan must not change {self.server}: refused {args[:1]}")

    write_file = append = copy = rename = remove = rmdir = mkdir = makedirs = set_mtime = _refuse


class SiteReader:
    """The site as a scan sees it: every server's files read once (see the module's docstring)."""

    def __init__(self, conn: SiteConnection):
        self.real = conn
        self.files = {name: ReadOnce(ep.files) for name, ep in conn.every_endpoint().items()}
        self.conn = SiteConnection(
            conn.site,
            endpoints={n: self._wrap(ep) for n, ep in conn.endpoints.items()},
            hosts={n: self._wrap(ep) for n, ep in conn.hosts.items()},
            unreachable=dict(conn.unreachable),
        )

    def _wrap(self, ep: Endpoint) -> Endpoint:
        return replace(ep, files=self.files[ep.name])

    def prefetch(self, wanted: Iterable[tuple[str, str]]) -> None:
        """(server, path) pairs: the union of what every hotfix of the catalogue names."""
        by_server: dict[str, list[str]] = defaultdict(list)
        for server, path in wanted:
            by_server[self.conn.endpoint(server).name].append(path)
        for server, paths in by_server.items():
            self.files[server].prefetch(paths)

    @property
    def cost(self) -> Reads:
        total = Reads()
        for f in self.files.values():
            total.stats += f.cost.stats
            total.listings += f.cost.listings
            total.reads += f.cost.reads
        return total
