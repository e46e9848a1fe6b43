"""Upload throughput over SMB1 (NT LM 0.12) to an NT1-only Samba on loopback: deployer's SMB1
transport against Samba's own `smbclient -m NT1 put`, in the same run.

Starts a private smbd limited to NT1 on 127.0.0.1 (as the tests do, SMB1 signing offered),
uploads the same file several times with each client, interleaved, and prints the median
MB/s of each and their ratios, like for like:
  - signed: deployer as the inventory's default (`require_signing: true`) against
    `smbclient -m NT1 --client-protection=sign`;
  - unsigned: deployer with `require_signing: false` against smbclient's default.
deployer's figure is a whole `write_file` as apply uses it (the file read in 1 MiB pieces,
written through and flushed before it returns); smbclient's is the rate it reports for `put`.
The share lives on tmpfs when there is one, so that the disk does not set the pace.

    .venv/bin/python bench/smb1_upload.py [--mib 256] [--runs 5]
"""

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

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from servers.samba import NT1_EXTRA, Samba  # the tests' private smbd

from deployer.targets.smb1 import Smb1FileTransport

SHARE = "BENCH"


def deployer_upload(files: Smb1FileTransport, src: Path, name: str) -> float:
    start = time.perf_counter()
    with open(src, "rb") as fh:
        files.write_file(name, iter(lambda: fh.read(1 << 20), b""))
    return time.perf_counter() - start


def smbclient_upload(samba: Samba, src: Path, name: str, protection: str | None) -> float:
    """Seconds for `put`, from the rate smbclient reports (bytes per millisecond)."""
    extra = [f"--client-protection={protection}"] if protection else []
    out = samba.smbclient(SHARE, f'put "{src}" "{name}"', extra_args=extra)  # -m NT1 from samba.client_args
    rate = float(re.search(r"\(([\d.]+) kb/s\)", out).group(1))  # smbclient: bytes / ms
    return src.stat().st_size / (rate * 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    scratch = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    base = Path(tempfile.mkdtemp(prefix="deployer-bench-smb1-", dir=scratch))
    try:
        share = base / "share"
        share.mkdir()
        src = base / "upload.bin"
        with open(src, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(1 << 20))
        size = src.stat().st_size
        samba = Samba(base / "server", {SHARE: share}, protocol="NT1", extra=NT1_EXTRA).start()
        try:
            signed = Smb1FileTransport("BENCH", samba.smb1_link(timeout=60), SHARE, owns_link=True)
            unsigned = Smb1FileTransport("BENCH", samba.smb1_link(timeout=60, require_signing=False), SHARE,
                                         owns_link=True)
            for t in (signed, unsigned):
                t.stat("upload.bin")  # log on before timing
            assert signed.link.signed and not unsigned.link.signed
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

    where = "tmpfs" if scratch else "disk"
    print(f"SMB1 (NT LM 0.12) upload of {size / 2**20:.0f} MiB to an NT1-only Samba on 127.0.0.1 (share on {where}), "
          f"{args.runs} runs, medians:")
    mbs = {k: size / statistics.median(v) / 1e6 for k, v in times.items()}
    for k, v in mbs.items():
        each = ", ".join(f"{size / t / 1e6:.0f}" for t in times[k])
        print(f"  {k:<20} {v:7.0f} MB/s   (runs: {each})")
    print(f"  ratio deployer / smbclient -m NT1, signed:   {mbs['deployer, signed'] / mbs['smbclient, signed']:.2f}")
    print(f"  ratio deployer / smbclient -m NT1, unsigned: {mbs['deployer, unsigned'] / mbs['smbclient, default']:.2f}")
    print(f"  ratio deployer (default, signed) / smbclient -m NT1 (default): "
          f"{mbs['deployer, signed'] / mbs['smbclient, default']:.2f}")


if __name__ == "__main__":
    main()
