"""Report rendering: the HTML page against the text report, for the same verification of a
large fleet-sized site (N files over M servers), in one run.

    .venv/bin/python bench/report_render.py [--files 2000] [--servers 50] [--repeat 20]

Prints the median time of each renderer and their ratio, and the page's size. Figures, not
assertions: this machine is shared.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import median_seconds  # noqa: E402  bench/, the script's own folder

from deployer.report import html  # noqa: E402
from deployer.report.out import Out  # noqa: E402
from deployer.report.text import render_report  # noqa: E402
from deployer.sms.verify import FileResult, Report  # noqa: E402


def report(files: int, servers: int) -> Report:
    r = Report("Q241656", "SMS: Memory Leak in Pcmsvc32", "BIG", "BIG", "or-later", "UTC")
    for i in range(files):
        ok = i % 17 != 0
        r.files.append(FileResult(
            server=f"SRV{i % servers:03d}", path=f"C:\\SMS\\Site.srv\\X86.BIN\\FILE{i}.DLL", name=f"File{i}.dll",
            platform="I386", expected_date="9/10/99", expected_time="7:00PM", expected_size="524KB",
            expected_version=None, expected_sha256=None, status="ok" if ok else "older",
            detail="" if ok else "written 9/9/99 7:00PM, earlier than listed", passed=ok, actual_date="9/10/99",
            actual_time="7:00PM", actual_size=535801))
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--servers", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    rep = report(a.files, a.servers)
    page = html.verify_page(rep)
    t_html = median_seconds(lambda: html.verify_page(rep), a.repeat)
    t_text = median_seconds(lambda: render_report(rep, Out(io.StringIO(), False)), a.repeat)
    print(f"{a.files} files on {a.servers} servers, median of {a.repeat}:")
    print(f"  html  {t_html * 1000:8.1f} ms  ({len(page.encode()) / 1024:.0f} KiB page)")
    print(f"  text  {t_text * 1000:8.1f} ms")
    print(f"  html / text: {t_html / t_text:.2f}x")


if __name__ == "__main__":
    main()
