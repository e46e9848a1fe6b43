"""Reading over SMB 2/3: stat, listings, file contents and their hashes, each in as few round
trips as the protocol allows (see smb.py for the transport as a whole)."""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Iterator

from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask as Dir,
    FilePipePrinterAccessMask as File,
    Open,
    QueryDirectoryFlags,
)
from smbprotocol.tree import TreeConnect

from .base import CHUNK, ConnectionLost, FileStat, NotADirectory, TargetError, sha256_of
from .smbbase import _WILDCARDS, SHARE_ALL, SmbBase, _norm, filetime_to_ns
from .smbconn import END_OF_FILE, IO_SIZE, MISSING, NOT_A_DIRECTORY
from .smbknown import version_of


STATS_AT_ONCE = 32  # stat_many's chains in one compound (3 requests and about 300 bytes each)
NO_MORE = (0x80000006, 0xC000000F)  # STATUS_NO_MORE_FILES, STATUS_NO_SUCH_FILE: a listing is complete


def listed(entries: list[FileStat]) -> list[FileStat]:
    """A folder's entries as listdir() returns them: without "." and "..", sorted by name."""
    return sorted((e for e in entries if e.name not in (".", "..")), key=lambda e: e.name.casefold())


class SmbReads(SmbBase):
    """The reading half of SmbFileTransport."""

    # stat() is the folder's QUERY_DIRECTORY entry for one name: a listing's entries are the same
    # answers, so the planner may take a file's stat from the listing it already holds
    listing_is_stat = True

    def stat(self, path: str) -> FileStat | None:
        rel = _norm(path)
        with self._op("stat", rel):
            tree = self._tree()
            if not rel:
                fh = Open(tree, "")
                _, basic, _ = self._check(self.link.compound(tree, [
                    self._create(fh, File.FILE_READ_ATTRIBUTES, SHARE_ALL, CreateDisposition.FILE_OPEN,
                                 CreateOptions.FILE_DIRECTORY_FILE),
                    self._query_basic(fh), fh.close(send=False)]), "stat", rel)
                return FileStat("", 0, filetime_to_ns(basic["last_write_time"].get_value()), True, False)
            parent, _, name = rel.rpartition("\\")
            if _WILDCARDS & set(name):
                raise TargetError(f"stat: {name!r} is not a valid file name", server=self.server, path=rel,
                                  winerror=123)
            fh = Open(tree, parent)
            opened, found, _ = self.link.compound(tree, [
                self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                self._query_dir(fh, name, QueryDirectoryFlags.SMB2_RESTART_SCANS
                                | QueryDirectoryFlags.SMB2_RETURN_SINGLE_ENTRY),
                fh.close(send=False)])
        for r in (opened, found):
            if isinstance(r, SMBResponseException):
                if r.status in MISSING:
                    return None
                raise self._fail(r.status, "stat", rel)
        return found[0] if found else None

    _ahead: tuple[str, int, list[FileStat]] | None = None  # see stat_many

    def _requests(self) -> int:
        """Requests sent so far for this server (its share, its services): a listing taken ahead is
        good only while it is the last thing asked of the server. (Servers that are one machine
        share the link; each has its own share, and asking another server is no change here.)"""
        t = self.link.meter.by_server.get(self.server)
        return t.requests if t is not None else 0

    def listdir(self, path: str) -> list[FileStat]:
        rel = _norm(path)
        not_dir = {NOT_A_DIRECTORY: (NotADirectory, "is a file, not a folder")}
        with self._op("list", rel):
            ahead, self._ahead = self._ahead, None
            if ahead is not None and ahead[0] == rel.casefold() and ahead[1] == self._requests():
                return list(ahead[2])  # listed in the round trip of the stats just before, nothing sent since
            tree = self._tree()
            # open, two QUERY_DIRECTORYs and close in one round trip: enough for any folder whose
            # entries fit in two answers (64 KiB each, some 600 names); a larger one is listed again
            fh = Open(tree, rel)
            opened, first, second, _ = self.link.compound(tree, [
                self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                self._query_dir(fh, "*", QueryDirectoryFlags.SMB2_RESTART_SCANS), self._query_dir(fh, "*"),
                fh.close(send=False)])
            if isinstance(opened, SMBResponseException):
                raise self._fail(opened.status, "list", rel, override=not_dir)
            if isinstance(second, SMBResponseException) and second.status in NO_MORE:
                if isinstance(first, SMBResponseException):
                    raise self._fail(first.status, "list", rel)
                return listed(first)
            fh = Open(tree, rel)
            opened, first = self.link.compound(tree, [
                self._create(fh, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                self._query_dir(fh, "*", QueryDirectoryFlags.SMB2_RESTART_SCANS)])
            if isinstance(opened, SMBResponseException):
                raise self._fail(opened.status, "list", rel, override=not_dir)
            entries: list[FileStat] = []
            batch = first
            generation = self.link.generation
            try:
                while not isinstance(batch, SMBResponseException):
                    entries.extend(batch)
                    (batch,) = self.link.compound(tree, [self._query_dir(fh, "*")], related=False)
                if batch.status not in NO_MORE:
                    raise self._fail(batch.status, "list", rel)
                self.link.compound(tree, [fh.close(send=False)], related=False)
            except BaseException:
                self._close_quietly(fh, generation)
                raise
        return listed(entries)

    def stat_many(self, paths: list[str]) -> list[FileStat | None]:
        """stat() of several paths in one round trip (a related chain each: open the folder,
        ask for the one name, close). CaseResolver asks this for every folder on a path.

        Asked for the folders down one path (a chain of prefixes, as CaseResolver asks before a
        folder is used), the deepest is listed in the same round trip too: the planner lists a
        folder right after asking whether it is one. The listing answers listdir() only if that
        is the very next request for this server (nothing sent to it in between, its own changes
        included): it is then what a listing sent at that moment would have found."""
        rels = [_norm(p) for p in paths]
        plain = [r for r in rels if r and not _WILDCARDS & set(r.rpartition("\\")[2])]
        deepest = plain[-1].casefold() if plain else ""
        chain = all(deepest == r.casefold() or deepest.startswith(r.casefold() + "\\") for r in plain)
        out: dict[str, FileStat | None] = {}
        for i in range(0, len(plain), STATS_AT_ONCE):
            batch = plain[i:i + STATS_AT_ONCE]
            with self._op("stat", batch[0]):
                tree = self._tree()
                actions = []
                for rel in batch:
                    parent, _, name = rel.rpartition("\\")
                    d = Open(tree, parent)
                    actions += [self._create(d, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                                self._query_dir(d, name, QueryDirectoryFlags.SMB2_RESTART_SCANS
                                                | QueryDirectoryFlags.SMB2_RETURN_SINGLE_ENTRY),
                                d.close(send=False)]
                listing = chain and i + STATS_AT_ONCE >= len(plain)
                if listing:
                    d = Open(tree, batch[-1])
                    actions += [self._create(d, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
                                self._query_dir(d, "*", QueryDirectoryFlags.SMB2_RESTART_SCANS),
                                self._query_dir(d, "*"), d.close(send=False)]
                answers = self.link.compound(tree, actions)
                if listing:
                    opened, first, second, _ = answers[-4:]
                    if not isinstance(opened, SMBResponseException) and not isinstance(first, SMBResponseException) \
                            and isinstance(second, SMBResponseException) and second.status in NO_MORE:
                        self._ahead = (deepest, self._requests(), listed(first))
            for k, rel in enumerate(batch):
                opened, found = answers[3 * k], answers[3 * k + 1]
                bad = next((r for r in (opened, found) if isinstance(r, SMBResponseException)), None)
                if bad is not None and bad.status not in MISSING:
                    raise self._fail(bad.status, "stat", rel)
                out[rel] = found[0] if bad is None and found else None
        return [out[r] if r in out else self.stat(r) for r in rels]

    def read_chunks(self, path: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The file's bytes. Open, the first READ (up to IO_SIZE) and close go in one compound: one
        round trip for a file of that size or less (every file a hotfix names). A larger file is
        opened again for the rest, several READs in flight."""
        rel = _norm(path)
        with self._op("read", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            first = min(IO_SIZE, self.link.connection.max_read_size)
            opened, data, _ = self.link.compound(tree, [
                self._create(fh, File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
                self._read(fh, 0, first), fh.close(send=False)])
            if isinstance(opened, SMBResponseException):
                raise self._fail(opened.status, "read", rel)
            if isinstance(data, SMBResponseException):
                if data.status != END_OF_FILE:
                    raise self._fail(data.status, "read", rel)
                data = b""
            if len(data) < first:  # the whole file: its content as of the version the CREATE reported
                self.known.remember(rel, version_of(fh), hashlib.sha256(data).hexdigest(), wrote=False)
        for i in range(0, len(data), chunk):
            yield data[i:i + chunk]
        if len(data) == first:  # maybe more: the rest through a handle of its own
            yield from self._read_rest(rel, first, chunk)

    def _read_rest(self, rel: str, offset: int, chunk: int) -> Iterator[bytes]:
        with self._op("read", rel):
            tree = self._tree()
            fh = Open(tree, rel)
            self._check(self.link.compound(tree, [
                self._create(fh, File.FILE_READ_DATA | File.FILE_READ_ATTRIBUTES, SHARE_ALL,
                             CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)]), "read", rel)
            generation = self.link.generation
        reads = self.link.read_requests(tree, fh, fh.end_of_file, chunk, start=offset)
        done = False
        try:
            while True:
                # each answer has its own deadline; the time the caller spends between chunks is its own
                with self._op("read", rel):
                    if self.link.generation != generation:
                        raise ConnectionLost("read: the connection was lost while reading", server=self.server,
                                             path=rel)
                    receive = next(reads, None)
                    if receive is None:
                        break
                    data = receive()
                if data:
                    yield data
            with self._op("read", rel):
                self.link.compound(tree, [fh.close(send=False)])
            done = True
        finally:
            if not done:  # the caller stopped early, or the server failed us
                try:
                    if self.link.is_current(generation):
                        with self._op("read", rel):
                            reads.close()  # receives the answers still in flight
                    reads.close()
                except TargetError:
                    pass
                self._close_quietly(fh, generation)

    def sha256(self, path: str) -> str:
        """From what this session read or wrote of the file, when the server says it is that
        version still (one small compound, no data: see smbknown.py); else read and hashed."""
        rel = _norm(path)
        if self.known.might_know(rel):
            found = self.known.get(rel, self._version(rel))
            if found is not None:
                return found.sha256
        return sha256_of(self.read_chunks(path))

    def stat_sha256(self, path: str) -> tuple[FileStat | None, str | None]:
        """stat() and sha256() of a file in one round trip: the folder's listing entry and the file's
        open, first READ (or, for content this session knows, only its version) and close go in
        one compound, two related chains back to back. (FileStat, None) for a folder."""
        rel = _norm(path)
        parent, _, name = rel.rpartition("\\")
        if not rel or _WILDCARDS & set(name):
            found = self.stat(rel)
            return found, (None if found is None or found.is_dir else self.sha256(rel))
        with self._op("stat", rel):
            tree = self._tree()
            actions, finish = self._stat_sha256_chain(tree, rel)
            answers = self.link.compound(tree, actions)
        return finish(answers)

    def _stat_sha256_chain(self, tree: TreeConnect, rel: str, first: int | None = None
                           ) -> tuple[list[Any], Callable[[list[Any]], tuple[FileStat | None, str | None]]]:
        """The compound of stat_sha256 and what turns its answers into the result (which may read
        the rest of a large file). `first`: the first READ's length, if smaller than IO_SIZE (a
        caller that knows the size keeps the credits a batch of reads charges low)."""
        parent, _, name = rel.rpartition("\\")
        known = self.known.might_know(rel)
        first = min(first or IO_SIZE, IO_SIZE, self.link.connection.max_read_size)
        d, fh = Open(tree, parent), Open(tree, rel)
        actions = [
            self._create(d, Dir.FILE_LIST_DIRECTORY | Dir.FILE_READ_ATTRIBUTES, SHARE_ALL,
                         CreateDisposition.FILE_OPEN, CreateOptions.FILE_DIRECTORY_FILE),
            self._query_dir(d, name, QueryDirectoryFlags.SMB2_RESTART_SCANS
                            | QueryDirectoryFlags.SMB2_RETURN_SINGLE_ENTRY),
            d.close(send=False),
            self._create(fh, File.FILE_READ_ATTRIBUTES | (0 if known else File.FILE_READ_DATA), SHARE_ALL,
                         CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE),
            *([] if known else [self._read(fh, 0, first)]), fh.close(send=False)]

        def finish(answers: list[Any]) -> tuple[FileStat | None, str | None]:
            opened, entries = answers[0], answers[1]
            for r in (opened, entries):
                if isinstance(r, SMBResponseException):
                    if r.status in MISSING:
                        return None, None
                    raise self._fail(r.status, "stat", rel)
            if not entries:
                return None, None
            found: FileStat = entries[0]
            if found.is_dir:
                return found, None
            file_opened = answers[3]
            if isinstance(file_opened, SMBResponseException):
                # gone between the two chains: as stat() then sha256() would see it
                raise self._fail(file_opened.status, "read", rel)
            if known:
                hit = self.known.get(rel, version_of(fh))
                return found, (hit.sha256 if hit is not None else sha256_of(self.read_chunks(rel)))
            data = answers[4]
            if isinstance(data, SMBResponseException):
                if data.status != END_OF_FILE:
                    raise self._fail(data.status, "read", rel)
                data = b""
            if len(data) < first:
                digest = hashlib.sha256(data).hexdigest()
                self.known.remember(rel, version_of(fh), digest, wrote=False)
                return found, digest
            h = hashlib.sha256(data)
            for block in self._read_rest(rel, first, CHUNK):
                h.update(block)
            return found, h.hexdigest()

        return actions, finish
