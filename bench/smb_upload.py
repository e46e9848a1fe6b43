"""Upload throughput to Samba on loopback: deployer's SMB transport against Samba's own smbclient.

Starts a private smbd on 127.0.0.1 (as the tests do), then uploads the same 256 MiB file
several times with each client, interleaved, and prints the median MB/s of each and the
ratios, like for like:
  - signed: deployer as the inventory's default (`require_signing: true`) against
    `smbclient --client-protection=sign`;
  - unsigned: deployer with `require_signing: false` against smbclient's default (which does
    not sign when the server does not ask).
deployer's figure is a whole `write_file` as apply uses it (the file read in 1 MiB pieces,
the data flushed to disk before it returns); smbclient's is the rate it reports for `put`.
The share lives on tmpfs when there is one, so that the disk does not set the pace.

    .venv/bin/python bench/smb_upload.py [--mib 256] [--runs 5]
"""

from __future__ import annotations

from upload_common import SHARE, arguments, measure, report

from servers.samba import Samba  # the tests' private smbd

from deployer.targets.smb import SmbFileTransport


def transports(samba: Samba) -> tuple[SmbFileTransport, SmbFileTransport]:
    return (SmbFileTransport("BENCH", samba.link(timeout=60), SHARE, owns_link=True),
            SmbFileTransport("BENCH", samba.link(timeout=60, require_signing=False), SHARE, owns_link=True))


def main() -> None:
    args = arguments(__doc__)
    size, times, where = measure(args, "deployer-bench-",
                                 lambda server, share: Samba(server, {SHARE: share}).start(), transports)
    report(f"upload of {size / 2**20:.0f} MiB to Samba on 127.0.0.1 (share on {where}), {args.runs} runs, medians:",
           "smbclient", size, times)


if __name__ == "__main__":
    main()
