"""The files of an SMS 1.2 SP4 site before the 1999 hotfixes: what `deployer lab init` lays out.

Microsoft's binaries cannot be shipped, so lab sites hold stand-ins with realistic names,
sizes and dates. Where a later KB article lists a file's exact size the stand-in uses it:
the PCM files are those of the Q225056 fix (1/28/99), the state of a site that applied it
and now needs Q241656.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BaselineFile:
    name: str  # as SMS 1.2 wrote it: upper case 8.3
    date: str  # M/D/YY, the site's local time
    time: str
    size: int
    version: str | None = None


SP4 = "11/13/98"

# Site.srv\<Platform>.bin: the server binaries, one row per file: its date, then each
# platform's time and size (every one is version 1.2.0.0)
_SITE_ROWS = (
    ("SITEINS.EXE", SP4, ("4:10PM", 118_544), ("4:40PM", 214_288)),
    ("SMSEXEC.EXE", SP4, ("4:11PM", 61_712), ("4:41PM", 103_696)),
    ("PREINST.EXE", SP4, ("4:10PM", 168_720), ("4:40PM", 296_208)),
    ("CLICFG.EXE", SP4, ("4:09PM", 93_968), ("4:39PM", 163_600)),
    ("INVWIN32.EXE", SP4, ("4:12PM", 251_664), ("4:42PM", 447_760)),
    ("PCMSVC32.EXE", "1/28/99", ("3:30PM", 269_280), ("3:33PM", 798_480)),  # Q225056
    ("BASE.DLL", SP4, ("4:08PM", 522_512), ("4:38PM", 741_648)),
    ("BASE3.DLL", SP4, ("4:08PM", 371_984), ("4:38PM", 633_616)),
    ("BASE4.DLL", SP4, ("4:08PM", 531_728), ("4:38PM", 910_608)),
    ("SMSINST.DLL", SP4, ("4:13PM", 251_152), ("4:43PM", 476_944)),
)
SITE_BIN: dict[str, tuple[BaselineFile, ...]] = {
    plat: tuple(BaselineFile(name, date, row[col][0], row[col][1], "1.2.0.0") for name, date, *row in _SITE_ROWS)
    for col, plat in enumerate(("x86", "alpha"))
}

# Site.srv\Maincfg.box\Client.src\<Platform>.bin: what workstations run
CLIENT_BIN: dict[str, tuple[BaselineFile, ...]] = {
    "x86": (
        BaselineFile("PCMWIN32.EXE", "1/28/99", "3:30PM", 468_912, "1.2.0.0"),  # Q225056
        BaselineFile("PCMWIN16.EXE", "1/28/99", "3:31PM", 453_904, "1.2.0.0"),  # Q225056
        BaselineFile("PCMDOS_2.EXE", SP4, "4:15PM", 241_760),
        BaselineFile("PCMDOS_4.EXE", SP4, "4:15PM", 276_320),
        BaselineFile("INVWIN32.EXE", SP4, "4:12PM", 251_664, "1.2.0.0"),
        BaselineFile("INVWIN16.EXE", SP4, "4:12PM", 198_144, "1.2.0.0"),
        BaselineFile("INVDOS.EXE", SP4, "4:12PM", 154_358),
    ),
    "alpha": (
        BaselineFile("PCMWIN32.EXE", "1/28/99", "3:31PM", 1_173_264, "1.2.0.0"),  # Q225056
        BaselineFile("INVWIN32.EXE", SP4, "4:42PM", 447_760, "1.2.0.0"),
    ),
}

# Logon.srv scripts (text)
LOGON_SCRIPTS: dict[str, str] = {
    "UPGRADE.BAT": "@echo off\r\nrem Systems Management Server client upgrade\r\n%0\\..\\X86.BIN\\SETUPW32.EXE /upgrade\r\n",
    "RUNSMS.BAT": "@echo off\r\nrem Systems Management Server logon script\r\n%0\\..\\X86.BIN\\CLIENT32.EXE /S\r\n",
}
