"""What deferred writes promise, checked on any transport that declares DEFERRED_WRITES
(test_smb1_group.py, test_sftp_group.py; SMB 2/3's own in test_wan_pipeline.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

from deployer.targets.base import AlreadyExists

BASE_TIME = 917_566_200_000_000_000  # 1999-01-29, whole seconds (SFTP carries no finer)


def check_deferred_writes(files, folder: str, on_disk: Path, names: list[str], trips: Callable[[], int],
                          most: int) -> None:
    """`names` written in `folder` (on_disk: the same folder as the server's disk holds it) in one
    block cost nothing until it ends, then at most `most` round trips, each file whole with its
    write time; another request in a block sends what was queued first; an exclusive write onto
    an existing file raises at the end while the block's other files are written; a block left
    by an exception sends nothing."""
    files_made = [(n, os.urandom(40_000 + 7_000 * k), BASE_TIME + k * 10**10) for k, n in enumerate(names)]
    start = trips()
    with files.deferred_writes():
        for name, data, when in files_made:
            files.write_file(f"{folder}\\{name}", iter([data[:1000], data[1000:]]), exclusive=True)
            files.set_mtime(f"{folder}\\{name}", when)
        queued = trips() - start, sorted(p.name for p in on_disk.iterdir())
    assert queued == (0, []), queued
    assert trips() - start <= most, trips() - start
    assert [((on_disk / n).read_bytes() == d, (on_disk / n).stat().st_mtime_ns) for n, d, _ in files_made] \
        == [(True, w) for _, _, w in files_made]
    first = names[0]
    with pytest.raises(AlreadyExists):
        with files.deferred_writes():
            files.write_file(f"{folder}\\{first}.new", [b"new"])
            seen = files.stat(f"{folder}\\{first}.new")  # sends the queue first
            files.write_file(f"{folder}\\{first}", [b"clash"], exclusive=True)
            files.write_file(f"{folder}\\{first}.late", [b"late"])
    assert seen is not None and (on_disk / f"{first}.late").read_bytes() == b"late"
    assert (on_disk / first).read_bytes() == files_made[0][1]
    with pytest.raises(RuntimeError):
        with files.deferred_writes():
            files.write_file(f"{folder}\\{first}.never", [b"x"])
            raise RuntimeError("cancelled")
    assert not (on_disk / f"{first}.never").exists()
