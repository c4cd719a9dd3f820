"""Users' own text pairs: a TSV file of `source<TAB>target`, one pair a line.

Blank lines are skipped. Invalid UTF-8 and lines with the wrong number of columns are
reported with their line number, so a user can fix the file instead of guessing.
"""

from __future__ import annotations

from pathlib import Path

from e2e.errors import E2EError


def decode_line(raw: bytes, name: str | Path, number: int) -> str:
    """One line of bytes as text; invalid UTF-8 is an error that names the line."""
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        raise E2EError(f"{name}, line {number}: invalid UTF-8 (byte {e.start}: "
                       f"{raw[e.start:e.start + 1]!r}); re-encode it as UTF-8, e.g. "
                       "iconv -f latin1 -t utf-8") from None


def read_pairs_tsv(path: str | Path) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise E2EError(f"{path} does not exist or is not a file; expected a TSV of "
                       "source<TAB>target lines")
    pairs = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            line = decode_line(raw, path, number)
            if not line.strip():
                continue
            cols = line.split("\t")
            if len(cols) != 2:
                raise E2EError(f"{path}, line {number}: expected 2 tab-separated columns "
                               f"(source, target), found {len(cols)}: {line[:60]!r}")
            source, target = cols[0].strip(), cols[1].strip()
            if not source or not target:
                raise E2EError(f"{path}, line {number}: the "
                               f"{'source' if not source else 'target'} column is empty")
            pairs.append((source, target))
    if not pairs:
        raise E2EError(f"{path} holds no source<TAB>target pairs")
    return pairs
