"""`replace: {files: [...], into: TEMPLATE, platforms: [...]}`: replace each file, for each
platform the site carries, in the folder `into` renders to. Attributes come from the manifest.

Plan: the current file is judged against the manifest; one already at (or later than) it is
skipped. Prepare: the current file is backed up on its server (server-side copy, checked
against what the plan observed) and the hotfix file uploaded beside it under a temporary
name, its write time set and its size, time and sha256 read back. Execute: one atomic
rename over the destination. Undo: the backup put back the same way (or the new file
removed when there was none before).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, field_validator

from ..model import templating, winpath
from ..model.common import Strict
from ..model.manifest import FileName, PlatformField
from ..model.state import FileState, Touched, describe as file_state
from ..model.runpaths import backup_path
from ..model.transport import RENAME_MANY
from ..targets.temps import staged_name as temp_path
from ..model.suggest import did_you_mean
from ..targets.base import FileStat, TargetError, stat_many
from ..model.templating import TemplateProblem, check_syntax
from ..sms.verify import Check, Judgement, judge
from .base import StepKind, StepModel, by_identity, plural


class ReplaceSpec(Strict):
    files: list[FileName] = Field(min_length=1, description="file names, each listed in the manifest (which gives "
                                  "its date, time and size)")
    into: str = Field(description="the folder, a jinja2 template such as '{{ sms_root }}\\Site.srv\\{{ platform }}.bin'; "
                      "variables: sms_root, platform, platform_name, platform_folder, site, site_code, server, "
                      "server_platform, role and the site's vars; it must stay below the SMS root")
    platforms: list[PlatformField] | None = Field(default=None, description="only these platforms (default: every "
                                                  "platform the site carries)")

    @field_validator("into")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            check_syntax(v)
        except TemplateProblem as exc:
            raise ValueError(str(exc)) from None
        return v


class ReplaceStep(StepModel):
    replace: ReplaceSpec = Field(description="replace files, for each platform the site carries, in the folder `into` "
                                 "names")


@dataclass
class ReplaceFile:
    number: int
    step: int
    server: str
    path: str  # RelPath below the server's SMS root
    where: str  # as the operator would type it
    file: str
    platform: str
    source: str  # the local payload file
    new: FileState
    before: FileState | None  # None: the file does not exist yet
    status: str  # the judgement of the current file against the manifest
    detail: str
    entry_index: int
    kind: str = "replace"


class Replace(StepKind):
    key = "replace"
    model = ReplaceStep
    action = ReplaceFile
    summary_rank = 0
    summary_group = "files"
    changes_files = True
    needs_quiet = True

    def manifest_problems(self, doc, index, step, manifest):
        errors = []
        for j, name in enumerate(step.replace.files):
            entries = [f for f in manifest.manifest.files if f.name.casefold() == name.casefold()]
            if not entries:
                errors.append(doc.error(("steps", index, "replace", "files", j),
                                        f"{name} is not in the manifest {manifest.path.name}"
                                        f"{did_you_mean(name, {f.name for f in manifest.manifest.files})}; files there: "
                                        + ", ".join(sorted({f.name for f in manifest.manifest.files}))))
                continue
            for p in step.replace.platforms or []:
                if not any(f.platform == p for f in entries):
                    have = ", ".join(f.platform.key for f in entries)
                    errors.append(doc.error(("steps", index, "replace", "files", j),
                                            f"the manifest lists {name} for {have}, not for {p.key}"))
        return errors

    # --- plan -------------------------------------------------------------------------------------

    def installs(self, step):
        return [str(f) for f in step.replace.files]

    def plan(self, planner, i, step):
        spec = step.replace
        manifest = planner.pb.manifest.manifest
        wanted = spec.platforms or planner.site.site.platform_list
        plats = [p for p in planner.site.site.platform_list if p in wanted]
        for ep in planner.servers(i, step.servers):
            for plat in plats:
                try:
                    rendered = templating.render(spec.into, planner.template_vars(ep, plat))
                    folder = winpath.relative_to_root(rendered, ep.sms_root)
                except (templating.TemplateProblem, winpath.PathRuleError) as exc:
                    raise planner.error(("steps", i, "replace", "into"), str(exc)) from None
                folder_state = planner.obs.folder(ep, folder)
                if folder_state == "folder":
                    folder = planner.obs.real_case(ep, folder)
                elif folder_state == "missing":
                    # SMS creates its folders at setup: a missing one is a wrong `into:` or a wrong server
                    raise planner.error(("steps", i, "replace", "into"),
                                        f"destination folder {ep.where(folder)} does not exist on {ep.name}; "
                                        "check the step's `into:` template and `servers:` (the platform folders "
                                        "of an SMS site exist from setup on)")
                else:
                    planner.problems.append(f"step {i + 1}: destination folder {ep.where(folder)} "
                                            f"{'is a file' if folder_state == 'file' else 'does not exist'}; "
                                            "replacing files there will fail")
                # the files whose content _plan_file reads, in one batch
                planner.obs.prefetch(ep, [winpath.join(folder, n) for n in spec.files
                                          if (e := manifest.entry(n, plat)) is not None
                                          and self._content_read(planner, ep, winpath.join(folder, n), e)])
                for j, name in enumerate(spec.files):
                    entry = manifest.entry(name, plat)
                    if entry is None:
                        raise planner.error(("steps", i, "replace", "files", j),
                                            f"the manifest has no {name} for {plat.key}, a platform of site "
                                            f"{planner.site.name}; limit the step with platforms: [...]")
                    self._plan_file(planner, i, j, ep, folder, name, entry)

    def _content_read(self, planner, ep, path, entry) -> bool:
        """Whether _plan_file reads the file's content (asked only where a batch can read it,
        Observer.prefetch): the manifest lists its sha256 and that
        can change the verdict (not by_identity, or its date and size pass), or it will be
        replaced and its backup is checked against its sha256 (not by_identity). A file with a
        version resource is read by version() instead (one read answers both)."""
        if entry.version or not getattr(ep.files, "listing_is_stat", False):
            return False  # (without a listing to answer it, the stat below would cost a round trip)
        seen = planner.obs.file(ep, path, content=False)
        if seen is None or seen.size < 0:
            return False
        identity = by_identity(ep, swapped=True)
        if entry.sha256 and not identity:
            return True
        verdict = judge(entry, FileStat(seen.name or winpath.basename(path), seen.size, seen.mtime_ns), planner.tz)
        return (bool(entry.sha256) and verdict.status == "ok") or (
            not identity and not verdict.passes(planner.pb.manifest.manifest.rule))

    def _plan_file(self, planner, i, j, ep, folder, name, entry):
        manifest = planner.pb.manifest.manifest
        entry_index = manifest.files.index(entry)
        payload = planner.payload(("steps", i, "replace", "files", j), entry)
        path = winpath.join(folder, name)
        planner.checks.append(Check(ep.name, path, entry_index, "playbook"))
        # The content is read only where it decides something: a manifest that lists sha256s, or
        # a file that will be replaced (its backup and restore are checked against it). A file the
        # manifest's size and date already pass is not read at all.
        ver = None
        if entry.version:
            seen = planner.obs.file(ep, path, content=False)
            if seen is not None and seen.size >= 0:
                ver = planner.obs.version(ep, path)  # read with its sha256: the saved plan's check covers it
        # after version(): its one read also answers content=True (the file is not read twice).
        # The listed sha256 decides only for a file whose date and size already pass: any other is
        # not the manifest's file whatever its bytes, so its content is not read to say so.
        # (Where the file, if replaced, is identified by its content anyway, it is read at once.)
        content_first = bool(entry.sha256) and not by_identity(ep, swapped=True)
        current = planner.obs.file(ep, path, content=content_first)
        stat = None if current is None or current.size < 0 else \
            FileStat(current.name or name, current.size, current.mtime_ns)
        verdict = judge(entry, stat, planner.tz, sha256=current.sha256 if current else None, version=ver)
        if entry.sha256 and stat is not None and current.sha256 is None and verdict.status == "ok":
            current = planner.obs.file(ep, path, content=True)
            verdict = judge(entry, stat, planner.tz, sha256=current.sha256 if current else None, version=ver)
        if current is not None and current.size < 0:
            verdict = Judgement("mismatch", "is a folder, not a file")
            planner.problems.append(f"{ep.where(path)} is a folder; it cannot be replaced by a file")
        if current is not None and current.name:
            path = winpath.join(folder, current.name)
        if verdict.passes(manifest.rule):
            planner.skip(i, ep.name, ep.where(path),
                         f"already {'at' if verdict.status == 'ok' else 'later than'} the manifest"
                         + (f" ({verdict.detail})" if verdict.detail else ""))
            return
        # the file to be replaced: identified by size and write time where its backup and restore
        # never cross the wire (by_identity), else by its content, which they are checked against
        if current is not None and current.size >= 0 and current.sha256 is None and not by_identity(ep, swapped=True):
            current = planner.obs.file(ep, path, content=True)
        planner.add(ReplaceFile(
            number=planner.number(), step=i, server=ep.name, path=path, where=ep.where(path),
            file=entry.name, platform=plat_key(entry), source=str(payload.path),
            new=FileState(payload.size, entry.mtime_ns(planner.tz), payload.sha256, winpath.basename(path)),
            before=current, status=verdict.status, detail=verdict.detail, entry_index=entry_index))

    # --- run --------------------------------------------------------------------------------------

    def prepare(self, run, a):
        if a.before is not None:
            # execute swaps the file by a rename: the old one lives on under the backup's name
            run.backup(a.server, a.path, a.before, backup_path(run.run, a.number, a.file), a.number, swapped=True)
        run.stage(a.server, a.path, a.source, a.new, a.number, a.file)

    def execute(self, run, a):
        ep = run.ep(a.server)
        ep.files.rename(temp_path(a.path, run.run), a.path, replace=True)
        _check_swapped(a, ep.files.stat(a.path))

    def batchable(self, run, a):
        """Several replaces run together where the server's transport renames many files at once
        (declares RENAME_MANY)."""
        return run.ep(a.server).can(RENAME_MANY)

    def execute_many(self, run, actions):
        """execute() of several actions: each server's swaps sent together (rename_many), then
        their files' stats in one batch; the first failure is raised once its server's batch is in."""
        by_server: dict[str, list] = {}
        for a in actions:
            by_server.setdefault(a.server, []).append(a)
        for server, items in by_server.items():
            files = run.ep(server).files
            errors = files.rename_many([(temp_path(a.path, run.run), a.path) for a in items], replace=True)
            swapped = [a for a, e in zip(items, errors) if e is None]
            got = dict(zip((a.number for a in swapped), stat_many(files, [a.path for a in swapped])))
            for a, error in zip(items, errors):
                if error is not None:
                    raise error
                _check_swapped(a, got[a.number])

    def undo_batchable(self, undo, a):
        """Several undone together where the server's transport restores in batches (Undo.restore_on):
        its copies by copy_many, its swaps back by rename_many (declared RENAME_MANY)."""
        ep = undo.conn.endpoint(a.server)
        return ep.can(RENAME_MANY) and getattr(ep.files, "copy_many", None) is not None

    def undo_many(self, undo, actions):
        """undo() of several actions at once: each server's files restored in one batch."""
        undo.restore_files([(a.server, a.path, a.before, backup_path(undo.run, a.number, a.file)) for a in actions])

    def undo(self, undo, a):
        undo.restore_file(a.server, a.path, a.before, backup_path(undo.run, a.number, a.file))

    # --- facts and words --------------------------------------------------------------------------

    def touched(self, a):
        return [Touched(a.server, a.path, a.before, a.new)]

    def uploads(self, a):
        return [(a.server, a.source, a.new.sha256)]

    def server_paths(self, a):
        return [(("path",), a.path)]

    def describe(self, a):
        return f"replace {a.where}"

    def label(self, a):
        return f"replace {a.file}"

    def render(self, a, tz):

        verb = "replace" if a.before is not None else "create"
        second = (f"       {file_state(a.before, tz)} [{a.status}]  ->  {file_state(a.new, tz)}"
                  if a.before is not None else f"       (none)  ->  {file_state(a.new, tz)}")
        return [(f"{verb} {a.where}", None), (second, "dim")]

    def summarize(self, actions):
        return plural(len(actions), "file") + " to replace"


def _check_swapped(a: ReplaceFile, got: FileStat | None) -> None:
    if got is None or (got.size, got.mtime_ns) != (a.new.size, a.new.mtime_ns):
        raise TargetError("after the swap the file does not have the new size and write time",
                          server=a.server, path=a.path)


def plat_key(entry) -> str:
    return entry.platform.key
