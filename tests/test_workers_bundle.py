"""Payloads in the broker and bundles on a worker host (issue 19, items 10 and 11), with a real
redis-server: a stored copy that does not hash to its key is replaced, never trusted for
existing; a bundle folder is built whole and published once, whatever number of tasks of
one rollout start at the same time on one host."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from deployer.errors import PayloadUnverifiable
from deployer.workers.broker import broker
from deployer.workers.bundle import Bundle, materialise
from deployer.workers.payloads import KEY, fetch, publish

pytestmark = pytest.mark.slow


@pytest.fixture
def store(redis_server, monkeypatch):
    monkeypatch.setenv("DEPLOYER_BROKER_PASSWORD", redis_server.password)
    r = broker(redis_server.url).redis()
    yield r
    r.close()


def _payload(tmp_path: Path, name: str, size: int = 300_000) -> tuple[Path, str]:
    data = hashlib.sha256(name.encode()).digest() * (size // 32)
    p = tmp_path / name
    p.write_bytes(data)
    return p, hashlib.sha256(data).hexdigest()


def test_a_stored_payload_that_does_not_hash_to_its_key_is_replaced_on_publish(store, tmp_path: Path):
    p, sha = _payload(tmp_path, "a-bad-copy.dll")
    store.set(KEY.format(sha), b"truncated by someone")  # a damaged copy under the right name
    assert publish(store, p, sha) == sha
    assert hashlib.sha256(store.get(KEY.format(sha))).hexdigest() == sha
    # and the worker's fetch now gets the right bytes
    assert fetch(store, sha, tmp_path / "cache").read_bytes() == p.read_bytes()


def test_a_payload_that_changed_since_the_bundle_named_it_is_not_published(store, tmp_path: Path):
    p, sha = _payload(tmp_path, "changed.dll")
    p.write_bytes(b"other bytes")
    with pytest.raises(PayloadUnverifiable, match="changed while the rollout was starting"):
        publish(store, p, sha)
    assert store.get(KEY.format(sha)) is None  # nothing stored under a name its bytes do not have


def test_a_worker_refuses_bad_bytes_from_the_store_and_never_caches_them(store, tmp_path: Path):
    p, sha = _payload(tmp_path, "fetched.dll")
    store.set(KEY.format(sha), b"not the hotfix")
    cache = tmp_path / "cache"
    with pytest.raises(PayloadUnverifiable, match="does not hash to its name"):
        fetch(store, sha, cache)
    assert not cache.exists() or not list(cache.iterdir())  # not even a temporary file
    publish(store, p, sha)  # the next rollout's publish mends the store
    assert fetch(store, sha, cache).read_bytes() == p.read_bytes()


def test_tasks_starting_at_once_on_one_host_publish_one_whole_bundle_folder(store, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    src = tmp_path / "src"
    src.mkdir()
    payloads = {}
    for i in range(6):
        p, sha = _payload(src, f"F{i}.DLL", 200_000)
        publish(store, p, sha)
        payloads[f"payloads/F{i}.DLL"] = sha
    texts = {"playbooks/p.yaml": "kb: Q1\n" * 2000, "manifests/m.yaml": "files: []\n" * 2000,
             "sites.yaml": "sites: {}\n" * 2000}
    bundle = Bundle("playbooks/p.yaml", "sites.yaml", texts, payloads)
    base = tmp_path / "projects"
    roots, errors, seen_bad = [], [], []
    start = threading.Barrier(8)

    def task() -> None:
        start.wait()
        try:
            root = materialise(bundle, store, base)
        except Exception as exc:  # noqa: BLE001 - what the test counts
            errors.append(repr(exc))
            return
        roots.append(root)
        # what this task sees as soon as it has its folder must be whole, whatever the others still do
        for rel, text in texts.items():
            if (root / rel).read_text() != text:
                seen_bad.append(rel)
        for rel, sha in payloads.items():
            f = root / rel
            if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != sha:
                seen_bad.append(rel)

    for _ in range(5):  # five rollouts' first tasks (a new bundle folder each time)
        shutil.rmtree(base, ignore_errors=True)
        threads = [threading.Thread(target=task) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and not seen_bad, (errors, seen_bad)
        (root,) = set(roots)
        # immutable once published: one folder, nothing rewritten after the first task got it
        stamps = {rel: (root / rel).stat().st_mtime_ns for rel in texts}
        again = materialise(bundle, store, base)
        assert again == root and {rel: (root / rel).stat().st_mtime_ns for rel in texts} == stamps
        assert [p.name for p in base.iterdir()] == [root.name]  # no temporary folder left behind
        roots.clear()


def test_a_lock_held_under_a_renewed_lease_is_alive_from_any_host_and_dead_once_it_lapses(store):
    from deployer.run import lock as site_lock
    from deployer.workers.tasks import LEASE, _lease_checker

    site_lock.register_lease_checker(_lease_checker(store))
    key = LEASE.format("r-lease-test", "S01")
    lease = {"key": key, "holder": "jump-2/deployer-east-1@jump-2#ab12"}
    info = site_lock.LockInfo({"host": "jump-2", "pid": 4242, "user": "svc"}, "2026-01-01T00:00:00+00:00", "apply",
                              "run-1", "tok", lease=lease)
    store.set(key, lease["holder"], ex=30)
    assert info.stale() is False  # another host, yet known alive: its lease is renewed
    assert "lease is still renewed" in site_lock.lock_advice("S01", info, info.stale(), "apply")
    store.set(key, "another-delivery#cd34", ex=30)
    assert info.stale() is True  # the lease went to another delivery: this holder is gone
    store.delete(key)
    assert info.stale() is True  # lapsed
    no_lease = site_lock.LockInfo({"host": "jump-2", "pid": 4242}, "x", "apply", None)
    assert no_lease.stale() is None  # without a lease, another host still cannot be judged


def test_a_lease_is_renewed_only_by_its_holder_and_a_lost_one_stops_the_run(store):
    """One beat of the renewal, against a real Redis: it renews its own lease, takes a lapsed one
    back when nobody holds it, never takes another delivery's, and a task whose lease went to
    another delivery is cancelled (it rolls back at its next safe point instead of racing it)."""
    from deployer.run.context import RunContext
    from deployer.workers.tasks import LEASE, _renew, renew

    key = LEASE.format("r-renew-test", "S02")
    store.set(key, "me#1", px=5000)
    assert renew(store, key, "me#1", 30) == "renewed" and store.pttl(key) > 5000
    store.delete(key)  # lapsed: a beat missed for longer than the TTL
    assert renew(store, key, "me#1", 30) == "retaken" and store.get(key) == b"me#1"
    store.set(key, "another-delivery#2", px=30000)
    assert renew(store, key, "me#1", 30) == "lost" and store.get(key) == b"another-delivery#2"
    said: list[str] = []
    ctx = RunContext("S02", lambda e: said.append(e.text) or True)
    stop = threading.Event()
    beats = threading.Thread(target=_renew, args=(store, key, "me#1", 1.5, ctx, stop), daemon=True)
    beats.start()
    beats.join(30)
    stop.set()
    assert ctx.cancel.cancelled and "went to another delivery" in ctx.cancel.why()
    assert store.get(key) == b"another-delivery#2"  # never taken back from it
    store.delete(key)
