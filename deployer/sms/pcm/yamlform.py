"""deployer's own file form of PCM instruction records: YAML, one mapping per record.

```yaml
format: deployer-pcm/1
file_name: mdm00005.ins            # PCMDUMP's File Name line (optional)
records:
  - pcm_version: Beta 455
    site_id: BPC
    request_id: BPC001M
    package_id: BPC0000A
    job_id: BPC000AA
    install_flag: 0                # 0-1 any network speed, 2 not over a slow link
    install_by_date: null          # null: not set (PCMDUMP's 00/00/00 00:00:00)
    install_by_full: 0             # 1: mandatory
    display_date: '1994-09-21 17:56:00'
    display_full: 1
    expiration_date: '1995-03-07 17:56:00'
    expiration_full: 1             # 0: never expires
    user_input_flags: 0            # 1: requires user input
    operating_system: [WIN16, WIN32_X86, WIN32_MIPS, WIN32_ALPHA]   # or the bit mask, 15
    disk_usage: ''
    run_command: acmewkst.exe smsproxy\\complete.stf /I:C
    wcl_name: Complete
    servers:
      - {path: '\\\\CNS-SMS\\SMS_PKGD\\BPC0000A\\', type: WINNT3, zone: '\\\\CNS-SMS\\SMS_PKGD\\BPC0000A\\'}
    package_name: Microsoft Office Professional 4
    comments: Microsoft Office Professional 4.3
    domain_name: ''
    reserved: 00 E6 F8 77 ...
    automated_command_line: true   # optional, not in PCMDUMP's layout (Q166765's package properties)
    background_task: true          # optional, likewise
transcript:                        # optional: what surrounded the records in PCMDUMP's output
  prompt: 'D:\\SMS\\LOGON.SRV\\PCMINS.BOX>PCMDUMP MDM00005.INS'
  banner: true
  newline: lf
  end: ' '
```
Dates are written year first and may name a day no calendar has (kept for `pcm lint` to
report). Converting to PCMDUMP's text and back gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from ...model.common import Strict, validate
from ...model import yamlsrc
from ...model.yamlsrc import load_yaml
from ...report.escape import yaml_text
from .record import KNOWN_OS_MASK, SERVER_TYPES, LineEnd, PcmFile, PcmRecord, os_names

FORMAT = "deployer-pcm/1"


class Transcript(Strict):
    prompt: str | None = None
    banner: bool = True
    newline: Literal["crlf", "lf"] = "crlf"
    end: LineEnd = Field("", description="spaces or tabs closing the last line")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str | None) -> str | None:
        if v is not None and ("\n" in v or "\r" in v or not v.strip()):
            raise ValueError("the prompt is one non-empty line (the console line that ran PCMDUMP)")
        return v


class PcmYaml(Strict):
    format: Literal["deployer-pcm/1"] = Field(description="deployer-pcm/1")
    file_name: str | None = None
    records: list[PcmRecord] = Field(min_length=1, description="one mapping per PCM record")
    transcript: Transcript = Transcript()


def load(path: Path | str) -> PcmFile:
    doc = load_yaml(path)
    y = validate(doc, PcmYaml)
    t = y.transcript
    return PcmFile(file_name=y.file_name, records=y.records, prompt=t.prompt, banner=t.banner, newline=t.newline,
                   end=t.end)


def record_data(rec: PcmRecord) -> dict[str, Any]:
    data = rec.model_dump()
    mask = rec.operating_system
    data["operating_system"] = os_names(mask) if mask and not mask & ~KNOWN_OS_MASK else mask
    data["servers"] = [{"path": s.path, "type": SERVER_TYPES[s.type], **({"zone": s.zone} if s.zone else {})}
                       for s in rec.servers]
    for key in ("automated_command_line", "background_task"):
        if data[key] is None:
            del data[key]
    return data


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml when present (3x faster here)
    pass


def _str(dumper: yaml.SafeDumper, v: str) -> yaml.Node:
    if "\n" in v:
        return dumper.represent_scalar("tag:yaml.org,2002:str", v, style="|")
    # deployer's loader reads some plain scalars PyYAML writes bare as numbers (0E0, 1_0): quote those
    return dumper.represent_scalar("tag:yaml.org,2002:str", v, style=None if _reads_back(v) else "'")


def _reads_back(v: str) -> bool:
    """Whether deployer's YAML loader reads `v`, written bare, as the same string."""
    try:
        return yamlsrc._scalar(yaml.ScalarNode("tag:yaml.org,2002:str", v)) == v
    except ValueError:
        return False


def _flow_list(dumper: yaml.SafeDumper, v: list) -> yaml.Node:
    flow = all(isinstance(x, (str, int)) for x in v)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=flow)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _flow_list)


def to_yaml(f: PcmFile) -> str:
    data: dict[str, Any] = {"format": FORMAT}
    if f.file_name is not None:
        data["file_name"] = f.file_name
    data["records"] = [record_data(r) for r in f.records]
    data["transcript"] = {"prompt": f.prompt, "banner": f.banner, "newline": f.newline, "end": f.end}
    head = "# PCM instruction records (Q123499) in deployer's form; `deployer pcm convert` turns it into PCMDUMP's\n"
    # (report/escape.yaml_text: a bidi control in a record's text is written as its YAML escape, not raw)
    return head + yaml_text(lambda **unicode: yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, **unicode))
