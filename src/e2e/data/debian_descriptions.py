"""Debian package descriptions as a summarization corpus: long description -> one-line summary.

apt keeps every package's English description in its i18n index files
(`/var/lib/apt/lists/*_i18n_Translation-en*`, lz4-compressed). Each entry has a
one-line summary (the `Description-en:` line) and a long description (the indented
lines below it, `.` marking a paragraph break). Entries are deduplicated on their
`Description-md5`, and packages are split by name stem (`foo`, `foo-doc`, `libfoo`...
share near-identical texts), so a test description has no sibling in training.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get -o Acquire::Languages=en update"


def lists_folder() -> Path:
    return Path(os.environ.get("E2E_APT_LISTS", "/var/lib/apt/lists"))


@dataclass(frozen=True)
class Description:
    package: str
    summary: str
    long: str


def translation_files(folder: Path | None = None) -> list[Path]:
    folder = folder or lists_folder()
    files = sorted(p for p in folder.glob("*_i18n_Translation-en*") if not p.name.endswith(".diff"))
    if not files:
        raise DatasetMissing(f"Debian's English package descriptions (no *_i18n_Translation-en* "
                             f"files in {folder})", INSTALL)
    return files


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.suffix == ".lz4":
        import lz4.frame

        data = lz4.frame.decompress(data)
    elif path.suffix in (".gz", ".xz"):
        import gzip
        import lzma

        data = (gzip.decompress if path.suffix == ".gz" else lzma.decompress)(data)
    return data.decode("utf-8", errors="replace")


def parse_translation(text: str) -> list[Description]:
    """Entries of one Translation file (deb822 stanzas)."""
    out = []
    for stanza in text.split("\n\n"):
        package, lines, in_description = "", [], False
        for line in stanza.split("\n"):
            if line.startswith("Package:"):
                package = line.split(":", 1)[1].strip()
            elif line.startswith("Description-en:"):
                lines, in_description = [line.split(":", 1)[1].strip()], True
            elif in_description and line.startswith(" "):
                lines.append(line[1:])
            else:
                in_description = False
        if package and len(lines) > 1:
            summary, long = lines[0], long_text(lines[1:])
            if summary and long:
                out.append(Description(package, summary, long))
    return out


def long_text(lines: list[str]) -> str:
    """Debian's description markup as plain text: ` .` is a paragraph break, bullets kept."""
    paragraphs, current = [], []
    for line in lines:
        if line.strip() == ".":
            paragraphs.append(" ".join(current))
            current = []
        else:
            current.append(line.strip())
    paragraphs.append(" ".join(current))
    return "\n".join(p for p in (re.sub(r"\s+", " ", p).strip() for p in paragraphs) if p)


def read_descriptions(folder: Path | None = None) -> list[Description]:
    """Unique (summary, long description) pairs across every English Translation file."""
    seen, out = set(), []
    for path in translation_files(folder):
        try:
            entries = parse_translation(_read_text(path))
        except (OSError, RuntimeError, ValueError) as e:
            raise E2EError(f"cannot read {path}: {e}; refresh it with {INSTALL}") from None
        for d in entries:
            key = (d.summary, d.long)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def stem(package: str) -> str:
    """`libfoo-dev`, `foo-doc`, `python3-foo` -> `foo`: siblings land in the same split."""
    name = re.sub(r"^(lib|python3?-|golang-|node-|ruby-|r-cran-|libghc-|perl-)", "", package)
    return re.split(r"[-.0-9]", name, maxsplit=1)[0] or package


def lead_sentence(long: str) -> str:
    """The lead baseline: the first sentence of the long description."""
    first = long.split("\n", 1)[0]
    match = re.search(r"(?<=[.!?])\s+(?=[A-Z(])", first)
    return first[:match.start()] if match else first


def split_by_stem(items: list[Description], val_percent: float, test_percent: float
                  ) -> tuple[list[Description], list[Description], list[Description]]:
    train, val, test = [], [], []
    for d in items:
        bucket = zlib.crc32(stem(d.package).encode()) % 10_000 / 100  # stable across runs
        (test if bucket < test_percent else val if bucket < test_percent + val_percent
         else train).append(d)
    return train, val, test
