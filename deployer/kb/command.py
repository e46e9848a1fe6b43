"""`deployer kb import ARTICLE... [-o FILE|DIR] [--playbook]`: the command's logic.

Many articles go through one process (starting Python costs more than reading an
article). Each article is imported on its own: a bad article is reported with its path
and the rest are still written. Exit 0 when every row of every article was read exactly,
3 when some need review (they are in the manifests, flagged), 2 when an article could not
be imported at all (nothing is written for it).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ExitCode, InputError, Location
from ..report.escape import visible
from .importer import ImportResult, import_article
from .playbook import draft_playbook


@dataclass(frozen=True)
class Written:
    result: ImportResult
    manifest: Path | None
    playbook: Path | None


class _Stderr:
    """Lines to standard error, outside text escaped: what the command gives when the caller
    passes no output of its own (the CLI passes its styled one; kb/ knows nothing of report/)."""

    def line(self, text: str, style: str | None = None) -> None:
        sys.stderr.write(visible(text) + "\n")


def run_import(articles: list[Path], output: Path | None, playbook: bool, playbook_dir: Path | None,
               force: bool = False, err=None) -> int:
    """err: where progress and errors go (anything with .line(text, style)); standard error by default."""
    err = err or _Stderr()
    if not articles:
        raise InputError("no article given: name one or more KB article files")
    # -o names a folder when it is one, when several articles are given, or when it does not end in .yaml/.yml
    to_dir = output is not None and (output.is_dir() or len(articles) > 1
                                     or output.suffix.casefold() not in (".yaml", ".yml"))
    if len(articles) > 1 and output is None:
        raise InputError(f"{len(articles)} articles: give -o DIR to write one manifest per article "
                         "(without -o, one article's manifest goes to standard output)")
    if output is not None and to_dir and output.exists() and not output.is_dir():
        raise InputError(f"-o {output}: with several articles, -o names a folder, and this is a file")
    if playbook and output is None:
        raise InputError("--playbook needs -o FILE|DIR: the draft playbook names its manifest by path")
    if to_dir:
        _mkdir(output)
    code = ExitCode.OK
    imported = review = failed = 0
    for path in articles:
        try:
            result = import_article(path)
        except InputError as exc:
            err.line(f"deployer: {exc}", "bad")
            failed += 1
            code = ExitCode.BAD_INPUT
            continue
        if output is None:
            sys.stdout.write(schema_line("manifest", None) + result.yaml)
            target = None
        else:
            target = output / f"{result.article.kb.lower()}.yaml" if to_dir else output
            try:
                _write(target, schema_line("manifest", target) + result.yaml, force)
            except InputError as exc:  # a hand-kept file (or a folder) there: this article only is skipped
                err.line(f"deployer: {exc}", "bad")
                failed += 1
                code = ExitCode.BAD_INPUT
                continue
        book = None
        if playbook and target is not None:
            try:
                book = _write_playbook(result, target, playbook_dir, force)
            except InputError as exc:
                err.line(f"deployer: {exc}", "bad")
                code = ExitCode.BAD_INPUT
        imported += result.imported
        review += result.review
        if result.review and code != ExitCode.BAD_INPUT:
            code = ExitCode.MISMATCH
        _say(err, result, target, book)
    if len(articles) > 1:
        err.line(f"{len(articles) - failed} of {len(articles)} articles: {imported} rows imported, {review} need review"
                 + (f"; {failed} articles could not be read" if failed else "") + ".")
    return int(code)


def _say(err, result: ImportResult, target: Path | None, book: Path | None) -> None:
    where = f"Wrote {target}: " if target else f"{result.article.source}: "
    tables = len(result.table_lines)
    files = len(result.manifest.files) if result.manifest else 0
    err.line(f"{where}{result.imported} rows imported, {result.review} need review "
             f"({files} files in the manifest, from {tables} table{'s' if tables != 1 else ''} in "
             f"{result.article.source}).", "good" if not result.review else None)
    for f in result.flagged:
        err.line(f"  {result.article.source}:{f.line}: {f.reason}", "dim")
    if book:
        err.line(f"Wrote {book}: a draft playbook; finish the lines marked FINISH, then remove `draft: true` (apply "
                 "refuses a draft).")


def _write_playbook(result: ImportResult, manifest: Path, playbook_dir: Path | None, force: bool) -> Path:
    folder = playbook_dir or manifest.parent
    _mkdir(folder)
    name = f"{result.article.kb.lower()}.yaml"
    target = folder / name
    if target.resolve() == manifest.resolve():
        target = folder / f"{result.article.kb.lower()}.playbook.yaml"
    rel_manifest = Path(os.path.relpath(manifest.resolve(), folder.resolve())).as_posix()
    # the repository's layout: playbooks/ and payloads/ side by side
    payloads = ("../" if folder.resolve().name == "playbooks" else "") + f"payloads/{result.article.kb.lower()}"
    _write(target, schema_line("playbook", target) + draft_playbook(result, rel_manifest, payloads), force)
    return target


def schema_line(kind: str, target: Path | None) -> str:
    """The line that names the file's JSON Schema to editors (the YAML language server): the
    shipped schema, relative to the file when it is written inside the source tree deployer
    runs from (as the repository's own files name it), else its absolute path (standard
    output's final place is unknown; a path up through the whole disk would break when moved)."""
    schema = Path(__file__).resolve().parent.parent / "schemas" / f"{kind}.json"
    tree, folder = schema.parents[2], target.resolve().parent if target is not None else None
    inside = folder is not None and (folder == tree or tree in folder.parents)
    ref = Path(os.path.relpath(schema, folder)).as_posix() if inside else schema.as_posix()
    return f"# yaml-language-server: $schema={ref}\n"


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder ({exc.strerror or exc})", Location(str(folder))) from None


# The last line of every file kb import writes: the hash of the text above it. A file whose
# mark is missing or no longer matches was written, or edited, by a person (a hand-kept
# manifest, a finished playbook): kb import never overwrites it without --force.
MARK = "# written by deployer kb import (sha256:{}); once edited, kb import does not overwrite it without --force"
_MARK = re.compile(r"# written by deployer kb import \(sha256:([0-9a-f]{16})\)")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def marked(text: str) -> str:
    return text + MARK.format(_digest(text)) + "\n"


def written_by_import(path: Path) -> bool:
    """The file is kb import's own output, unchanged since it was written."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    body, _, last = text.rstrip("\n").rpartition("\n")
    m = _MARK.match(last)
    return m is not None and m.group(1) == _digest(body + "\n")


def _write(path: Path, text: str, force: bool = False) -> None:
    # An OSError here is the user's path (a folder that is a file, no permission): exit 2, no traceback.
    _mkdir(path.parent)
    if path.exists() and not force and not written_by_import(path):
        raise InputError("exists and was not written by `deployer kb import` (or was edited since): not "
                         "overwritten; give -o another path, or --force to replace it", Location(str(path)))
    from ..model.owned import write_atomic

    # whole or not at all (a temporary file beside it, then a rename), as every file deployer writes;
    # whose file it is was decided above, by kb import's own stricter rule (unchanged since written)
    write_atomic(path, marked(text), what="the file", force=True)
