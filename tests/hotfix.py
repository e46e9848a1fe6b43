"""Hotfix files for tests against real servers (Samba, OpenSSH).

`deployer lab init` writes stand-ins, which deployer never uploads to a server that is not
the mock site (deployer/targets/standin.py). A test that applies Q241656 to a real server plays the
operator who put the vendor's files in place: each stand-in is rewritten here without the
lab's marker (same size, bytes otherwise, version resource and write time), and the lab's
record of what it wrote is removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from deployer.targets import standin

VENDOR_HEAD = b"MZ\x90\x00vendor test hotfix:"  # as long as the lab's head, so sizes stay


def vendor_payloads(payload_root: Path) -> list[Path]:
    assert len(VENDOR_HEAD) == len(standin.HEAD)
    done = []
    for p in sorted(payload_root.rglob("*")):
        if p.name == standin.RECORD:
            p.unlink()
            continue
        if not p.is_file():
            continue
        data = p.read_bytes()
        if standin.marked(data):
            st = p.stat()
            p.write_bytes(VENDOR_HEAD + data[len(VENDOR_HEAD):])
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
            done.append(p)
    return done
