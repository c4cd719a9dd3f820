"""Debian package descriptions as a summarization corpus: long description -> one-line summary.

apt keeps every package's English description in its i18n index files
(`/var/lib/apt/lists/*_i18n_Translation-en*`, lz4-compressed). Each entry has a
one-line summary (the `Description-en:` line) and a long description (the indented
lines below it, `.` marking a paragraph break). Entries are deduplicated on their
`Description-md5`, and packages are split by name stem (`foo`, `foo-doc`, `libfoo`...
share near-identical texts), so a test description has no sibling in training.

apt's lists do not last: this image sets `Acquire::Languages "none"`, and the next plain
`apt-get update` deletes the Translation files. So e2e reads its own copy in
`$E2E_DATA/debian-i18n/` (default ~/.local/share/e2e), which setup.sh fills and which the
first read from apt's lists fills too; once there, the corpus (and so every split) stays
the same whatever apt does later. Delete that folder to take a newer corpus from apt.
"""

from __future__ import annotations

import os
import re
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path

from e2e.data.sources import data_home
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get -o Acquire::Languages=en update"


def lists_folder() -> Path:
    return Path(os.environ.get("E2E_APT_LISTS", "/var/lib/apt/lists"))


def cache_folder() -> Path:
    """e2e's own copy of the Translation files, out of reach of `apt-get update`."""
    return data_home() / "debian-i18n"


@dataclass(frozen=True)
class Description:
    package: str
    summary: str
    long: str
    md5: str = ""  # Description-md5: the same English text has the same key in every language


def _translations(folder: Path, lang: str) -> list[Path]:
    return sorted(p for p in folder.glob(f"*_i18n_Translation-{lang}*")
                  if p.is_file() and not p.name.endswith(".diff"))


def translation_files(folder: Path | None = None, lang: str = "en",
                      install: str = INSTALL) -> list[Path]:
    """The Translation files of `lang`: e2e's cache first, else apt's lists (then cached).

    An explicit `folder` is read as it is, without the cache.
    """
    if folder is not None:
        files = _translations(folder, lang)
    else:
        cache, folder = cache_folder(), lists_folder()
        files = _translations(cache, lang) or cache_files(_translations(folder, lang), cache)
    if not files:
        raise DatasetMissing(f"Debian's package descriptions in '{lang}' (no "
                             f"*_i18n_Translation-{lang}* files in {folder} nor in "
                             f"{cache_folder()})", install)
    return files


def cache_files(files: list[Path], cache: Path) -> list[Path]:
    """Copy `files` into `cache` (written whole, then renamed); the copies, or the originals
    where the cache cannot be written (a read-only home, say)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        out = []
        for path in files:
            tmp = cache / f".{path.name}.tmp"
            shutil.copyfile(path, tmp)
            out.append(tmp.replace(cache / path.name))
        return out
    except OSError:
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


def parse_translation(text: str, lang: str = "en") -> list[Description]:
    """Entries of one Translation file (deb822 stanzas)."""
    out = []
    for stanza in text.split("\n\n"):
        package, md5, lines, in_description = "", "", [], False
        for line in stanza.split("\n"):
            if line.startswith("Package:"):
                package = line.split(":", 1)[1].strip()
            elif line.startswith("Description-md5:"):
                md5 = line.split(":", 1)[1].strip()
            elif line.startswith(f"Description-{lang}:"):
                lines, in_description = [line.split(":", 1)[1].strip()], True
            elif in_description and line.startswith(" "):
                lines.append(line[1:])
            else:
                in_description = False
        if package and len(lines) > 1:
            summary, long = lines[0], long_text(lines[1:])
            if summary and long:
                out.append(Description(package, summary, long, md5))
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


def split_by_stem(items: list[Description], val_fraction: float, test_fraction: float
                  ) -> tuple[list[Description], list[Description], list[Description]]:
    train, val, test = [], [], []
    for d in items:
        bucket = zlib.crc32(stem(d.package).encode()) % 10_000 / 10_000  # stable across runs
        (test if bucket < test_fraction else val if bucket < test_fraction + val_fraction
         else train).append(d)
    return train, val, test


def read_translated(lang: str = "es") -> list[tuple[Description, Description]]:
    """(English, `lang`) pairs of the same descriptions, joined on Description-md5."""
    install = f"sudo apt-get -o Acquire::Languages=en,{lang} update (then bash setup.sh)"
    english = {d.md5: d for d in read_descriptions() if d.md5}
    pairs, seen = [], set()
    for path in translation_files(lang=lang, install=install):
        try:
            entries = parse_translation(_read_text(path), lang)
        except (OSError, RuntimeError, ValueError) as e:
            raise E2EError(f"cannot read {path}: {e}; refresh it with {install}") from None
        for d in entries:
            if d.md5 in english and d.md5 not in seen:
                seen.add(d.md5)
                pairs.append((english[d.md5], d))
    return pairs


def translated_pairs(lang: str = "es", max_words: int = 60) -> list[tuple[str, str, str]]:
    """(package, English, `lang`) sentence-level pairs of the translated descriptions: the
    summaries, and the paragraphs where both sides have as many (and at most `max_words`)."""
    out = []
    for en, other in read_translated(lang):
        out.append((en.package, en.summary, other.summary))
        a, b = en.long.split("\n"), other.long.split("\n")
        if len(a) == len(b):
            out += [(en.package, x, y) for x, y in zip(a, b)
                    if len(x.split()) <= max_words and len(y.split()) <= max_words]
    return out
