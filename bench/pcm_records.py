"""PCM instruction files: how fast deployer reads and writes PCMDUMP's text and its YAML form.

A Pcmins.box holds one .INS per client, each with a record per offered package. This
builds a file of N records (default 800: the YAML form of that stays under the 1 MiB
deployer accepts for any YAML input) from Q123499's four-record sample (request IDs made unique), then times, in
one run: parsing PCMDUMP's text, printing it again, linting, writing the YAML form and
loading it back. Medians of `--repeat` runs; the ratio is YAML load time over text parse
time. Figures, not assertions: this machine is shared.

    .venv/bin/python bench/pcm_records.py [--records 800] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.sms.pcm import dumptext, lint, yamlform  # noqa: E402

ARTICLE = ROOT.parent / "shared" / "seeds" / "Q123499-pcmdump-instruction-files.txt"


def big_file(n: int) -> str:
    text = ARTICLE.read_text(encoding="utf-8")
    sample = text[text.index("D:\\SMS"):text.index("\n\nAdditional query words") + 1]
    f = dumptext.parse(sample)
    records = [r.model_copy(update={"request_id": f"R{i:06d}"}) for i in range(n) for r in [f.records[i % 4]]]
    return dumptext.render(f.model_copy(update={"records": records}))


def timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    text = big_file(a.records)
    parse_s, f = timed(lambda: dumptext.parse(text), a.repeat)
    render_s, again = timed(lambda: dumptext.render(f), a.repeat)  # type: ignore[arg-type]
    assert again == text
    lint_s, found = timed(lambda: lint.lint(f, datetime(1994, 10, 1)), a.repeat)  # type: ignore[arg-type]
    dump_s, y = timed(lambda: yamlform.to_yaml(f), a.repeat)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "big.yaml"
        p.write_text(y)  # type: ignore[arg-type]
        load_s, back = timed(lambda: yamlform.load(p), a.repeat)
    assert dumptext.render(back) == text  # type: ignore[arg-type]
    n = a.records
    print(f"{n} records, {len(text) / 1e6:.1f} MB of PCMDUMP text; medians of {a.repeat}")
    for what, s in (("parse text", parse_s), ("render text", render_s), ("lint", lint_s), ("write YAML", dump_s),
                    ("load YAML", load_s)):
        print(f"  {what:<12} {s * 1000:8.0f} ms  {n / s:10,.0f} records/s")
    print(f"  load YAML / parse text: {load_s / parse_s:.1f}x; lint findings: {len(found)}")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
