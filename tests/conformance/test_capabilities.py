"""What each file transport declares it can do (model/transports/) is what it does.

The declaration is what deployer acts on (a backup is a hard link only where HARD_LINK is
declared, run/apply.py), so a declaration that promises more than the transport does, or
hides what it does, is caught here against the real servers."""

from __future__ import annotations

from conformance.adapters import FilesUnderTest
from deployer.model.transport import HARD_LINK, REGISTRY, SERVER_COPY
from deployer.targets.traffic import meters_of, summary

SIZE = 256 * 1024


def _capabilities(kind: str) -> frozenset[str]:
    found = [impl for decl in REGISTRY.all().values() if decl.files for name, impl in decl.implementations.items()
             if name == kind]
    assert len(found) == 1, f"no file implementation {kind!r} is declared (model/transports/)"
    return found[0].capabilities


def _bytes_read(t: FilesUnderTest) -> int:
    return summary(meters_of([t.files]))["total"]["bytes_read"]


def test_a_hard_link_is_declared_exactly_where_the_transport_makes_one(files_target: FilesUnderTest):
    t = files_target
    declared = HARD_LINK in _capabilities(t.kind)
    assert declared == callable(getattr(t.files, "hard_link", None)), t.kind
    if declared:
        src, dst = f"{t.base}\\Base.dll", f"{t.base}\\Base.dll.bak"
        t.files.write_file(src, [b"v1" * 1000])
        t.files.hard_link(src, dst)
        t.files.rename(f"{t.base}\\Base.dll", f"{t.base}\\Old.dll")  # the other name lives on under a swap
        assert b"".join(t.files.read_chunks(dst)) == b"v1" * 1000


def test_a_server_side_copy_is_declared_exactly_where_the_bytes_stay_on_the_server(files_target: FilesUnderTest):
    t = files_target
    src = f"{t.base}\\Big.dll"
    t.files.write_file(src, [bytes(range(256)) * (SIZE // 256)])
    if not meters_of([t.files]):
        assert SERVER_COPY in _capabilities(t.kind), f"{t.kind}: unmetered, so a local copy (the mock)"
        return
    before = _bytes_read(t)
    t.files.copy(src, f"{t.base}\\Copy.dll")
    moved = _bytes_read(t) - before
    assert (moved < SIZE) == (SERVER_COPY in _capabilities(t.kind)), f"{t.kind}: {moved} bytes came back to deployer"
