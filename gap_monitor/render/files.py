"""Writing a rendered document: atomically, so a reader never sees half a report."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """`text` into `path` through a hidden temporary file beside it, renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
