"""What the SMB 2/3 transport knows of a file's content without reading it again.

A run reads a file's bytes to hash them (plan: the files it will replace), then asks for the
hash again and again: the backup after the server-side copy, the staged file after the
upload, the file after the swap. Over a WAN each of those is a download. `KnownContent`
keeps, per file, the sha256 of content deployer itself read or wrote in this session, with
the file's **version** as the server reported it when that content was there: (size, last
write time, change time), from the CREATE or the CLOSE (SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB)
that bracketed the read or write. `sha256()` asks the server for the version (one small
compound, no file data) and answers from memory only when it is unchanged.

Why that proves what the read-back proved:
- a file deployer **read**: the server's own change time moves with every write and every
  attribute change (programs cannot set it back through SMB writes), so an equal version
  means the bytes read are the bytes there. Only where the change time is real: Samba
  reports the write time in its place (a program that rewrites a file in place and puts
  its write time back would go unseen), so there, and until the session has seen its
  server's change time move on its own (the first set_mtime shows it), what was read is
  read again when asked;
- a file deployer **wrote** (write_file): each WRITE's answer confirmed its byte count, the
  FLUSH that the data is on disk, and SMB 3 signing (or encryption) that the bytes that
  reached the server are the bytes sent. Only then is the written content remembered: an
  unsigned session's writes are read back as before;
- a **server-side copy**: the server reported every chunk and byte copied, from a source
  whose version matched the content known (checked on the copy's own CREATE of the source);
- rename and set_mtime carry the content over (version before checked, version after from
  the CLOSE). Anything else deployer does to a path (remove, append, a folder's removal or
  rename) forgets it and everything below it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Version = tuple[Any, Any, Any]  # (end of file, last write time, change time) as the server reports them


def version_of(fh: Any) -> Version | None:
    """The version an smbprotocol Open carries from its CREATE (or its CLOSE with attributes)."""
    v = (fh.end_of_file, fh.last_write_time, fh.change_time)
    return None if None in v else v


@dataclass(frozen=True)
class Known:
    version: Version
    sha256: str
    wrote: bool  # content deployer wrote (or copied from content it wrote); else content it read


class KnownContent:
    def __init__(self) -> None:
        self._by_key: dict[str, Known] = {}
        self.change_time_real: bool | None = None  # None: not seen yet (see set_mtime in smb.py)

    def get(self, rel: str, version: Version | None) -> Known | None:
        """What is known of the file at this version, if that knowledge can be trusted here."""
        k = self._by_key.get(rel.casefold())
        if k is None or version is None or k.version != version:
            return None
        return k if k.wrote or self.change_time_real else None

    def might_know(self, rel: str) -> bool:
        k = self._by_key.get(rel.casefold())
        return k is not None and (k.wrote or bool(self.change_time_real))

    def remember(self, rel: str, version: Version | None, sha256: str | None, *, wrote: bool) -> None:
        self.forget(rel)
        if version is not None and sha256 is not None:
            self._by_key[rel.casefold()] = Known(version, sha256, wrote)

    def move(self, src: str, dst: str, before: Version | None, after: Version | None) -> None:
        """src is now dst (or, src == dst, has new times): carried over if src was as known."""
        k = self._by_key.get(src.casefold())
        k = k if k is not None and before is not None and k.version == before else None
        self.forget(src)
        if k is not None:
            self.remember(dst, after, k.sha256, wrote=k.wrote)
        else:
            self.forget(dst)

    def saw_times_set(self, version: Version | None) -> None:
        """After deployer set a file's write time (to a hotfix's, long past): a server whose
        change time then equals it reports no real change time."""
        if version is not None and self.change_time_real is None:
            self.change_time_real = version[2] != version[1]

    def forget(self, *rels: str) -> None:
        for rel in rels:
            key = rel.casefold()
            if not key:
                self._by_key.clear()
                return
            self._by_key.pop(key, None)
            below = key + "\\"
            for k in [k for k in self._by_key if k.startswith(below)]:
                del self._by_key[k]
