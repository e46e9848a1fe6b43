"""Read a PCM instruction file in either form: PCMDUMP's text output or deployer's YAML."""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError, Location
from ...model.textcodec import decode_bom
from ...model.yamlsrc import read_input
from . import dumptext, yamlform
from .record import PcmFile

MAX_BYTES = 4 * 1024 * 1024


def is_yaml(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".yaml", ".yml"):
        return True
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return line.startswith("format:")
    return False


def load(path: Path | str) -> PcmFile:
    path = Path(path)
    raw = read_input(path, expected="PCMDUMP output or a deployer-pcm YAML file", max_bytes=MAX_BYTES)
    text = decode_bom(raw, str(path))  # PowerShell 5's `PCMDUMP FILE.INS > FILE.txt` writes UTF-16 LE
    if text is not None:
        return yamlform.load(path) if is_yaml(path, text) else dumptext.parse(text, path)
    if b"\x00" in raw:
        raise InputError("a binary file (a .INS instruction file itself?): its layout is not published, so deployer "
                         "reads PCMDUMP's text output of it; run `PCMDUMP FILE.INS > FILE.txt` and give that file",
                         Location(str(path), raw[:raw.index(b"\x00")].count(b"\n") + 1))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp437")  # PCMDUMP ran in a DOS console: its output is in the OEM code page
    if is_yaml(path, text):
        return yamlform.load(path)
    return dumptext.parse(text, path)
