"""KB import speed: N articles in one `deployer kb import` command, against one command
per article (how `manifest from-kb` had to be used: one article each), in the same run.

    .venv/bin/python bench/kb_import.py [--articles 150] [--runs 5] [--single 10]

The articles are those of ../shared/kb and ../shared/kb-train (repeated when there are
fewer than N). The one-command time is wall time of the whole process, start included,
median of --runs; the per-article figure is the median of --single separate processes,
and the ratio compares N of those with the one command. Figures, not assertions: this
machine is shared.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def run(args: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "deployer", "kb", "import", *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 3):  # 3: some rows need review, which is an answer, not a failure
        sys.exit(f"deployer kb import failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=150)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--single", type=int, default=10)
    a = ap.parse_args()
    found = sorted((SHARED / "kb").glob("Q*.md")) + sorted((SHARED / "kb-train").glob("Q*.md"))
    if not found:
        sys.exit(f"no articles under {SHARED}/kb or {SHARED}/kb-train")
    articles = [str(p) for p in itertools.islice(itertools.cycle(found), a.articles)]
    with tempfile.TemporaryDirectory() as tmp:
        batch = [run([*articles, "-o", f"{tmp}/batch{i}"]) for i in range(a.runs)]
        single = [run([articles[i], "-o", f"{tmp}/single{i}.yaml"]) for i in range(a.single)]
    one = statistics.median(batch)
    each = statistics.median(single)
    print(f"{a.articles} articles in one command: {one:.2f} s (median of {a.runs}; "
          f"{1000 * one / a.articles:.1f} ms an article, process start included)")
    print(f"one command per article: {each:.2f} s each (median of {a.single}), {each * a.articles:.1f} s for "
          f"{a.articles}")
    print(f"ratio: one command is {each * a.articles / one:.0f}x faster than one command per article")


if __name__ == "__main__":
    main()
