"""The Bible as a parallel corpus: English (KJV) -> Spanish (Reina-Valera 1909), by verse.

Both texts come from Debian's SWORD modules (`sword-text-kjv`, `sword-text-sparv`) read
with PyPI `pysword`. Verses are aligned by their reference (book, chapter, verse); the
markup pysword leaves (paragraph marks, stray spaces) is cleaned away. Splits are by
whole books, so no test verse, nor its neighbours, is ever seen in training.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from e2e.errors import DatasetMissing, E2EError

INSTALL = ("sudo apt-get update && sudo apt-get install -y sword-text-kjv sword-text-sparv"
           ' && pip install "e2e[text]"')
MODULES = {"en": "engKJV2006eb", "es": "spaRV1909eb"}
DROP_CAPS = {"es"}  # modules that capitalize the whole first word of each chapter


@dataclass(frozen=True)
class Verse:
    book: str  # OSIS name: Gen, Ruth, Mark, ...
    chapter: int
    verse: int
    source: str
    target: str


def clean_verse(text: str, drop_cap: bool = False) -> str:
    """Strip SWORD leftovers: paragraph marks, markup, spacing; undo a chapter's drop cap."""
    text = text.replace("¶", " ").replace("\u2029", " ")
    text = re.sub(r"<[^>]+>", " ", text)  # any markup pysword's cleaner left
    text = re.sub(r"\s+", " ", text).strip()
    if drop_cap:  # RV1909 prints a chapter's first word in capitals: "EN el principio"
        text = re.sub(r"^([^\W\d_]{2,})\b", lambda m: m[1].capitalize() if m[1].isupper()
                      else m[1], text)
    return text


def _memoize_blocks(bible) -> None:
    """pysword decompresses a whole block for every verse; keep each block once (~50x faster)."""
    if not hasattr(bible, "_decompressed_text"):
        return
    raw, cache = bible._decompressed_text, {}

    def cached(testament, buf_num):
        key = (testament, buf_num)
        if key not in cache:
            cache[key] = raw(testament, buf_num)
        return cache[key]
    bible._decompressed_text = cached


def read_bible(source: str = "en", target: str = "es") -> list[Verse]:
    """Every verse present in both modules, in canonical order."""
    if (source, target) != ("en", "es"):
        raise E2EError(f"the Bible corpus is English -> Spanish (en-es), not {source}-{target}")
    try:
        from pysword.modules import SwordModules
    except ImportError:
        raise DatasetMissing("the Python package pysword", INSTALL) from None
    root = os.environ.get("E2E_SWORD", "/usr/share/sword")
    try:
        modules = SwordModules(root)
        found = modules.parse_modules()
    except Exception:  # pysword raises bare errors for a missing folder
        found = {}
    missing = [m for m in MODULES.values() if m not in found]
    if missing:
        raise DatasetMissing(f"the SWORD Bible module(s) {', '.join(missing)} (looked in {root})",
                             INSTALL)
    texts = {}
    for lang, name in MODULES.items():
        bible = modules.get_bible_from_module(name)
        _memoize_blocks(bible)
        books = bible.get_structure().get_books()
        verses = {}
        for book in books["ot"] + books["nt"]:
            for c in range(1, book.num_chapters + 1):
                for v, text in enumerate(bible.get_iter(books=[book.osis_name], chapters=[c]),
                                         start=1):
                    verses[(book.osis_name, c, v)] = clean_verse(text, v == 1 and
                                                                 lang in DROP_CAPS)
        texts[lang] = verses
    out = []
    for ref, en in texts["en"].items():
        es = texts["es"].get(ref, "")
        if en and es:  # a handful of verses are empty in one module
            out.append(Verse(*ref, en, es))
    return out


def split_by_book(verses: list[Verse], val_books: list[str], test_books: list[str]
                  ) -> tuple[list[Verse], list[Verse], list[Verse]]:
    known = {v.book for v in verses}
    unknown = [b for b in [*val_books, *test_books] if b not in known]
    if unknown:
        raise E2EError(f"unknown Bible book(s) {unknown}; use OSIS names such as "
                       f"{', '.join(sorted(known)[:8])}, ...")
    overlap = set(val_books) & set(test_books)
    if overlap:
        raise E2EError(f"book(s) {sorted(overlap)} are in both data.val_books and data.test_books")
    train = [v for v in verses if v.book not in val_books and v.book not in test_books]
    val = [v for v in verses if v.book in val_books]
    test = [v for v in verses if v.book in test_books]
    return train, val, test
