"""Moved to the `deployer.kb` package (finding tables, reading rows, normalising values,
writing the manifest, drafting the playbook); this name stays for code that imports it."""

from .kb import ArticleError, Flagged, ImportResult, NoTableError, import_article, parse_article

__all__ = ["ArticleError", "Flagged", "ImportResult", "NoTableError", "import_article", "parse_article"]
