"""What the peers harness's own scripts share (standard library only: they run under any python3).

verify_fleet.py judges the peers' trees, deployer/verify_lab.py deployer's mock sites and
deployer/make_lab.py records a pristine lab: the same hash and the same verdict line, so the
tools are judged alike.
"""
import hashlib
import sys


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verdict(problems, sites, expect):
    """Print the first problems and the one line run_peers.sh reads; the exit code."""
    for name, b in problems[:20]:
        print(f"  {name}: {b}")
    print(f"verify {expect}: {len(sites)} sites, {len(problems)} problems")
    return 1 if problems or not sites else 0


def cli(main, doc):
    """usage: SCRIPT DIR patched|pristine"""
    if len(sys.argv) != 3 or sys.argv[2] not in ("patched", "pristine"):
        sys.exit(doc)
    sys.exit(main(sys.argv[1], sys.argv[2]))
