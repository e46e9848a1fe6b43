"""What each file transport declares it can do (model/transports/) is what it does.

The declaration is what deployer acts on (a backup is a hard link only where HARD_LINK is
declared, run/apply.py), so a declaration that promises more than the transport does, or
hides what it does, is caught here against the real servers."""

from __future__ import annotations

from conformance.adapters import FilesUnderTest
from deployer.model.transport import (DEFERRED_WRITES, GROUPED_APPEND, HARD_LINK, REGISTRY, RENAME_MANY,
                                      SERVER_COPY)
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


def test_the_batch_capabilities_are_declared_exactly_where_the_transport_does_them(files_target: FilesUnderTest):
    """run/apply.py groups a run's work by these declarations (GROUPED_APPEND: an action's "done"
    rides with the next record and a run of swaps' begins go in one append; RENAME_MANY: the swaps
    sent together; DEFERRED_WRITES: the prepare's uploads sent together), so each is declared
    where the transport does it, and only there."""
    t = files_target
    caps = _capabilities(t.kind)
    assert (RENAME_MANY in caps) == callable(getattr(t.files, "rename_many", None)), t.kind
    assert (DEFERRED_WRITES in caps) == callable(getattr(t.files, "deferred_writes", None)), t.kind
    if DEFERRED_WRITES in caps:
        with t.files.deferred_writes():  # type: ignore[attr-defined]
            for i in range(3):
                t.files.write_file(f"{t.base}\\New{i}.dll", [b"MZ" * (i + 1)], exclusive=True)
                t.files.set_mtime(f"{t.base}\\New{i}.dll", 937_015_200 * 10**9 + i * 10**9)
        for i in range(3):
            got = t.files.stat(f"{t.base}\\New{i}.dll")
            assert got is not None and (got.size, got.mtime_ns) == (2 * (i + 1), 937_015_200 * 10**9 + i * 10**9)
    # a network transport's append of several records costs what one costs: one round trip
    journal = f"{t.base}\\journal.jsonl"
    t.files.append(journal, b'{"event": "run"}\n', durable=True)  # the handle opened and kept
    metered = bool(meters_of([t.files]))
    before = summary(meters_of([t.files]))["total"]["round_trips"] if metered else 0
    t.files.append(journal, b'{"event": "done"}\n{"event": "begin"}\n{"event": "begin"}\n', durable=True)
    if metered:
        trips = summary(meters_of([t.files]))["total"]["round_trips"] - before
        assert (trips == 1) == (GROUPED_APPEND in caps), f"{t.kind}: {trips} round trips for one grouped append"
    else:
        assert GROUPED_APPEND not in caps, f"{t.kind}: local appends go one record at a time"
    assert b"".join(t.files.read_chunks(journal)).count(b"\n") == 4
