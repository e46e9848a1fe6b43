"""The stand-in PCM instruction file a lab site's Logon.srv\\PCMINS.BOX holds.

The binary `.INS` layout is not published, so the lab writes what deployer reads: PCMDUMP's
text of one record (Q123499's first sample record, the audit job, with the site's code), so
that `deployer pcm dump` and `pcm lint` read the lab's own file as they read real output.
"""

from __future__ import annotations

from .dumptext import render
from .record import PcmFile, PcmRecord, PcmServer


def standin_ins(site_code: str) -> bytes:
    rec = PcmRecord(site_id=site_code, request_id=f"{site_code}001M", package_id=f"{site_code}0000A",
                    job_id=f"{site_code}000AA", install_flag=1, display_date="1999-11-19 17:56:00",
                    operating_system=15, run_command="audit.bat", wcl_name="Find Microsoft Software",
                    servers=[PcmServer(path=f"\\\\{site_code}SRV\\SMS_PKGC\\{site_code}0000A", type=2)],
                    package_name="Audit Software", comments="Find Microsoft Software")
    text = render(PcmFile(file_name=f"{site_code.lower()}00005.ins", records=[rec], newline="crlf"))
    return text.encode("ascii")
