"""KB articles -> manifests (and draft playbooks).

  article.py   reading an article: lines, number, title
  tables.py    finding every file-attribute table, its parts and its sentence
  rows.py      reading one row into values
  values.py    what a value is, and how the manifest writes it
  writer.py    the manifest's YAML, with flagged rows commented out
  importer.py  putting them together: every row imported or flagged, never dropped
  playbook.py  drafting a playbook from the article's procedure
  command.py   `deployer kb import`
"""

from .article import ArticleError, NoTableError
from .importer import Flagged, ImportResult, import_article, parse_article

__all__ = ["ArticleError", "NoTableError", "Flagged", "ImportResult", "import_article", "parse_article"]
