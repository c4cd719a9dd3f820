"""Tux Paint's stamp descriptions, English -> Spanish: ~800 short everyday sentences.

Debian's tuxpaint-stamps-default (GPL-2+, see /usr/share/doc/tuxpaint-stamps-default/copyright)
describes each stamp picture in a `.txt` file beside it: the first line in English ("A brown
hat.", "A candy cane is a traditional Christmas treat in the United States."), then one
`LANG.utf8=text` line per translation. The pair is the first line and the `es.utf8=` line.

Skipped, with a count: files without a Spanish line, lines left untranslated (the same text),
repeated pairs (stamps drawn twice). The document of a pair is its stamp folder
(`animals/birds`), so a split by document holds out whole themes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from e2e.data.tuxpaint import INSTALL, stamps_dir  # one stamps folder, one variable
from e2e.errors import DatasetMissing

LICENSE = "GPL-2+ (Tux Paint stamps, Debian package tuxpaint-stamps-default)"


@dataclass(frozen=True)
class Sentence:
    document: str  # the stamp folder, relative to the stamps root: animals/birds
    source: str
    target: str


def read_description(path: Path, lang: str = "es") -> tuple[str, str] | None:
    """(English, `lang`) text of one stamp's `.txt`, or None where it has no `lang` line."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines:
        return None
    english, key = " ".join(lines[0].split()), f"{lang}.utf8="
    for line in lines[1:]:
        if line.startswith(key):
            return english, " ".join(line[len(key):].split())
    return None


def read_tuxpaint(root: Path | None = None, counts: Counter | None = None) -> list[Sentence]:
    """Unique (English, Spanish) stamp descriptions, tagged with their stamp folder."""
    root = root or stamps_dir()
    files = sorted(root.rglob("*.txt"))
    if not files:
        raise DatasetMissing(f"Tux Paint's stamp descriptions (no .txt files in {root})", INSTALL)
    counts = Counter() if counts is None else counts
    seen, out = set(), []
    for path in files:
        pair = read_description(path)
        if pair is None or not pair[0] or not pair[1]:
            counts["no Spanish line"] += 1
        elif pair[0] == pair[1]:
            counts["same on both sides"] += 1
        elif pair in seen:
            counts["duplicates"] += 1
        else:
            seen.add(pair)
            out.append(Sentence(str(path.parent.relative_to(root)), *pair))
    return out
