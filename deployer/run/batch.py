"""Many files of one server at once, where its transport can (SMB 2/3: smbbatch.py), else one
at a time: a run's backups and read-backs cost the round trips of one file, not one each."""

from __future__ import annotations

from typing import Sequence

from ..model.state import FileState
from ..plan.observe import read_file
from ..targets.connect import Endpoint


def read_files(ep: Endpoint, paths: Sequence[str], sizes: Sequence[int | None] | None = None
               ) -> list[FileState | None]:
    """read_file (size, write time, sha256) of each path; `sizes`: what each is expected to hold
    (a hint for how much to ask for at once). Raises the first error, as one at a time would."""
    many = getattr(ep.files, "stat_sha256_many", None)
    if many is None or len(paths) < 2:
        return [read_file(ep, p) for p in paths]
    out: list[FileState | None] = []
    for stat, sha in many(list(paths), list(sizes) if sizes is not None else None):
        if stat is None:
            out.append(None)
        elif stat.is_dir:
            out.append(FileState(-1, stat.mtime_ns, None, stat.name))
        else:
            out.append(FileState(stat.size, stat.mtime_ns, sha, stat.name))
    return out
