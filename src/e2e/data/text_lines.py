"""Text inputs for the CLI: lines of a file or of stdin, with invalid UTF-8 reported by line."""

from __future__ import annotations

import sys
from pathlib import Path

from e2e.data.tsv import decode_line


def read_text_lines(path: str | Path | None) -> list[str]:
    """One input per line (blank lines kept: they give blank outputs, keeping lines aligned)."""
    if path is None:
        return [decode_line(raw, "stdin", n) for n, raw in enumerate(sys.stdin.buffer, start=1)]
    with open(path, "rb") as f:
        return [decode_line(raw, path, n) for n, raw in enumerate(f, start=1)]
