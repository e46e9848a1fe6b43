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

from upload_common import SHARE, arguments, measure, report

from servers.samba import NT1_EXTRA, Samba  # the tests' private smbd

from deployer.targets.smb1 import Smb1FileTransport


def transports(samba: Samba) -> tuple[Smb1FileTransport, Smb1FileTransport]:
    signed = Smb1FileTransport("BENCH", samba.smb1_link(timeout=60), SHARE, owns_link=True)
    unsigned = Smb1FileTransport("BENCH", samba.smb1_link(timeout=60, require_signing=False), SHARE, owns_link=True)
    signed.stat("upload.bin")  # logged on, so that the sessions can say whether they sign
    unsigned.stat("upload.bin")
    assert signed.link.signed and not unsigned.link.signed
    return signed, unsigned


def main() -> None:
    args = arguments(__doc__)
    size, times, where = measure(
        args, "deployer-bench-smb1-",
        lambda server, share: Samba(server, {SHARE: share}, protocol="NT1", extra=NT1_EXTRA).start(), transports)
    report(f"SMB1 (NT LM 0.12) upload of {size / 2**20:.0f} MiB to an NT1-only Samba on 127.0.0.1 (share on {where}), "
           f"{args.runs} runs, medians:", "smbclient -m NT1", size, times)


if __name__ == "__main__":
    main()
