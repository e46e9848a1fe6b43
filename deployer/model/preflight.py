"""A site's preflight settings (`preflight:` in sites.yaml): where Q166765's backup evidence is."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from .winpath import PathRuleError, check_component, split
from .common import Strict, number_in


class PreflightSettings(Strict):
    backup_marker: str | None = Field(
        default=None, description="a file each server's backup job writes, relative to its SMS root "
                                  "(e.g. BACKUP\\LASTBACKUP.OK); its write time is the last backup")
    backup_max_age_hours: Annotated[int, number_in(1, 24 * 366, "backup_max_age_hours")] = Field(
        default=24, description="how old the backup marker may be")

    @field_validator("backup_marker")
    @classmethod
    def _marker(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if ":" in v[:2] or v.startswith(("\\", "/")):
            raise ValueError(f"backup_marker {v!r} is relative to each server's SMS root (e.g. BACKUP\\LAST.OK): "
                             "deployer reaches a server only through its SMS share")
        parts = split(v)
        try:
            for p in parts:
                check_component(p, "backup_marker component")
        except PathRuleError as exc:
            raise ValueError(str(exc)) from None
        if not parts:
            raise ValueError("backup_marker is empty")
        return "\\".join(parts)
