"""What bench/smb_upload.py and bench/smb1_upload.py share: the same file uploaded by
deployer's transport and by Samba's smbclient, interleaved, signed and unsigned, to a
private smbd on 127.0.0.1 whose share is on tmpfs when there is one; medians and ratios."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers.samba import Samba  # noqa: E402 - the tests' private smbd

SHARE = "BENCH"


def arguments(doc: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    return ap.parse_args()


def deployer_upload(files: Any, src: Path, name: str) -> float:
    start = time.perf_counter()
    with open(src, "rb") as fh:
        files.write_file(name, iter(lambda: fh.read(1 << 20), b""))
    return time.perf_counter() - start


def smbclient_upload(samba: Samba, src: Path, name: str, protection: str | None) -> float:
    """Seconds for `put`, from the rate smbclient reports (bytes per millisecond). An NT1-only
    Samba gives smbclient its `-m NT1` itself (Samba.client_args)."""
    extra = [f"--client-protection={protection}"] if protection else []
    out = samba.smbclient(SHARE, f'put "{src}" "{name}"', extra_args=extra)
    rate = float(re.search(r"\(([\d.]+) kb/s\)", out).group(1))  # smbclient: bytes / ms
    return src.stat().st_size / (rate * 1000)


def measure(args: argparse.Namespace, prefix: str, start: Callable[[Path, Path], Samba],
            transports: Callable[[Samba], tuple[Any, Any]]) -> tuple[int, dict[str, list[float]], str]:
    """(bytes uploaded, seconds of each run by client, where the share was)."""
    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        share = base / "share"
        share.mkdir()
        src = base / "upload.bin"
        with open(src, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(1 << 20))
        size = src.stat().st_size
        samba = start(base / "server", share)
        try:
            signed, unsigned = transports(samba)
            for t in (signed, unsigned):
                t.stat("upload.bin")  # log on before timing
            runs = {
                "deployer, signed": lambda i: deployer_upload(signed, src, f"signed-{i}.bin"),
                "smbclient, signed": lambda i: smbclient_upload(samba, src, f"sc-signed-{i}.bin", "sign"),
                "deployer, unsigned": lambda i: deployer_upload(unsigned, src, f"unsigned-{i}.bin"),
                "smbclient, default": lambda i: smbclient_upload(samba, src, f"sc-default-{i}.bin", None),
            }
            times: dict[str, list[float]] = {k: [] for k in runs}
            for i in range(args.runs):
                for name, run in runs.items():
                    times[name].append(run(i))
                for f in share.iterdir():
                    f.unlink()
            signed.close()
            unsigned.close()
        finally:
            samba.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return size, times, "tmpfs" if scratch else "disk"


def report(title: str, client: str, size: int, times: dict[str, list[float]]) -> None:
    print(title)
    mbs = {k: size / statistics.median(v) / 1e6 for k, v in times.items()}
    for k, v in mbs.items():
        each = ", ".join(f"{size / t / 1e6:.0f}" for t in times[k])
        print(f"  {k:<20} {v:7.0f} MB/s   (runs: {each})")
    print(f"  ratio deployer / {client}, signed:   {mbs['deployer, signed'] / mbs['smbclient, signed']:.2f}")
    print(f"  ratio deployer / {client}, unsigned: {mbs['deployer, unsigned'] / mbs['smbclient, default']:.2f}")
    print(f"  ratio deployer (default, signed) / {client} (default): "
          f"{mbs['deployer, signed'] / mbs['smbclient, default']:.2f}")
