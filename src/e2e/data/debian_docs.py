"""Debian's translated documentation, English -> Spanish, aligned sentence by sentence.

Five manuals ship their English and Spanish pages side by side, each page translated from the
same source file (po4a / itstool), so the two pages have the same structure:

| manual | Debian package(s) | license | pages |
| --- | --- | --- | --- |
| debian-handbook | debian-handbook | GPL-2+ or CC-BY-SA-3.0 | html/en-US/*.html, es-ES |
| debian-reference | debian-reference-en, -es | GPL-2+ | *.en.html, *.es.html |
| gnome-help | gnome-user-docs | CC-BY-SA-3.0 | help/C/gnome-help/*.page, help/es |
| installation-guide | installation-guide-amd64 | GPL-2 | en/*.html, es/*.html |
| maint-guide | maint-guide, maint-guide-es | GPL-2+ | *.en.html, *.es.html |

A page's text blocks (paragraphs, headings, list items, table cells; not code: `pre`,
`screen`) are read in document order on both sides and paired by position where the two
sequences of block kinds agree (a difflib match over the kinds, so one extra block on one side
shifts nothing after it). Each paragraph pair is split into sentences and aligned with
Gale-Church (`e2e.data.sentence_align`); a pair is dropped, with a count, when it was left
untranslated (the same text, or most of its words), is a navigation link ("Next",
"Siguiente"), has no words, is longer than `max_words`, or has an implausible length ratio (a
sign the two blocks are not each other's translation). Repeated pairs (a heading in every
page's table of contents, a licence paragraph on every page) are kept once.

The document of a pair is its manual and page (`debian-handbook/apt`): a split by document
holds out whole pages.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from e2e.data.sentence_align import plausible, sentence_pairs
from e2e.errors import DatasetMissing

LICENSE = ("debian-handbook: GPL-2+ or CC-BY-SA-3.0; debian-reference: GPL-2+; gnome-user-docs: "
           "CC-BY-SA-3.0; installation-guide: GPL-2; maint-guide: GPL-2+")
PACKAGES = ("debian-handbook", "debian-reference-en", "debian-reference-es", "gnome-user-docs",
            "installation-guide-amd64", "maint-guide", "maint-guide-es")
INSTALL = ("sudo apt-get update && sudo apt-get install -y --no-install-recommends "
           + " ".join(PACKAGES))

BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "td", "th", "title", "desc",
          "caption", "figcaption"}
SKIP = {"pre", "screen", "script", "style", "credit", "mal:credit", "license", "synopsis",
        "head"}  # code, and the pages' credits and boilerplate
# the pages' navigation links ("Next", "Prev8.9.", "Siguiente"), not text
NAVIGATION = re.compile(r"^(Prev|Next|Up|Home|Anterior|Siguiente|Subir|Inicio)(\d|$)")
PARA_DIV = re.compile(r"\b(para|formalpara|simpara)\b")  # Publican's <div class="para"> paragraphs
NAV_CLASS = re.compile(r"\b(docnav|navheader|navfooter)\b")  # the pages' Prev / Next links


ARCH = os.environ.get("E2E_INSTALL_GUIDE_ARCH", "amd64")  # installation-guide-arm64, ...


def share() -> Path:
    return Path(os.environ.get("E2E_SHARE", "/usr/share"))


def _suffix_pages(en: str, es: str, suffix_en: str, suffix_es: str
                  ) -> Callable[[], Iterator[tuple[str, Path, Path]]]:
    """Pages named NAME.en.html in folder `en`, NAME.es.html in folder `es`."""
    def pages() -> Iterator[tuple[str, Path, Path]]:
        for path in sorted((share() / en).glob(f"*{suffix_en}")):
            yield (path.name.removesuffix(suffix_en), path,
                   share() / es / (path.name.removesuffix(suffix_en) + suffix_es))
    return pages


MANUALS: dict[str, Callable[[], Iterator[tuple[str, Path, Path]]]] = {
    "debian-handbook": _suffix_pages("doc/debian-handbook/html/en-US",
                                     "doc/debian-handbook/html/es-ES", ".html", ".html"),
    "debian-reference": _suffix_pages("debian-reference", "debian-reference", ".en.html",
                                      ".es.html"),
    "gnome-help": _suffix_pages("help/C/gnome-help", "help/es/gnome-help", ".page", ".page"),
    "installation-guide": _suffix_pages(f"doc/installation-guide-{ARCH}/en",
                                        f"doc/installation-guide-{ARCH}/es", ".html", ".html"),
    "maint-guide": _suffix_pages("doc/maint-guide/html", "doc/maint-guide-es/html", ".en.html",
                                 ".es.html"),
}


@dataclass(frozen=True)
class DocPair:
    document: str  # manual/page: debian-handbook/apt
    source: str
    target: str


class _Blocks(HTMLParser):
    """The text blocks of an HTML or Mallard page, as (kind, text) in document order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open: list[tuple[int, str, list[str]]] = []  # (order, tag, text parts)
        self.done: list[tuple[int, str, str]] = []
        self.skip, self.count = 0, 0
        self.roles: dict[str, list[str]] = {"div": [], "ul": []}  # per open one: p, skip or ""

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.roles:  # a <div class="para"> is a paragraph, a navigation bar is skipped
            cls = dict(attrs).get("class") or ""
            role = ("skip" if NAV_CLASS.search(cls) else
                    "p" if tag == "div" and PARA_DIV.search(cls) else "")
            self.roles[tag].append(role)
            tag = role or tag
        if tag in SKIP or tag == "skip":
            self.skip += 1
        elif tag in BLOCKS and not self.skip:
            if tag == "p" and self.open and self.open[-1][1] == "p":
                self._close("p")  # HTML's implicit </p>
            self.open.append((self.count, tag, []))
            self.count += 1
        elif tag == "br" and self.open:
            self.open[-1][2].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.roles:
            tag = (self.roles[tag].pop() if self.roles[tag] else "") or tag
        if tag in SKIP or tag == "skip":
            self.skip = max(0, self.skip - 1)
        elif tag in BLOCKS and not self.skip:
            self._close(tag)

    def handle_data(self, data: str) -> None:
        if self.open and not self.skip:
            self.open[-1][2].append(data)

    def _close(self, tag: str) -> None:
        if not any(t == tag for _, t, _ in self.open):
            return  # a stray end tag
        while self.open:
            order, t, parts = self.open.pop()
            text = " ".join("".join(parts).split())
            if text:
                self.done.append((order, t, text))
            if t == tag:
                break

    def blocks(self) -> list[tuple[str, str]]:
        while self.open:
            self._close(self.open[-1][1])
        return [(tag, text) for _, tag, text in sorted(self.done)]


def page_blocks(path: Path) -> list[tuple[str, str]]:
    parser = _Blocks()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.blocks()


def paragraph_pairs(en: list[tuple[str, str]], es: list[tuple[str, str]]
                    ) -> tuple[list[tuple[str, str]], int]:
    """(English, Spanish) blocks paired where the sequences of block kinds match, and how many
    blocks of the English page found no partner."""
    matcher = difflib.SequenceMatcher(None, [k for k, _ in en], [k for k, _ in es],
                                      autojunk=False)
    pairs = [(en[a + k][1], es[b + k][1]) for a, b, size in matcher.get_matching_blocks()
             for k in range(size)]
    return pairs, len(en) - len(pairs)


# a word, not a piece of a path, file or package name (/etc/apt/sources.list.d/)
WORD = re.compile(r"(?<![\w/.-])[^\W\d_]+(?![\w/-]|\.\w)")


def mostly_untranslated(source: str, target: str) -> bool:
    """A sentence left in English but for a word or two ("see Sección 5.2.3, ..."): most of
    the target's words (of 6 or more) are the source's."""
    words, english = WORD.findall(target.lower()), set(WORD.findall(source.lower()))
    return len(words) >= 6 and sum(w in english for w in words) > 0.6 * len(words)


def read_docs(manuals: tuple[str, ...] | None = None, counts: Counter | None = None,
              max_words: int = 60) -> list[DocPair]:
    """Aligned (English, Spanish) sentence pairs of every installed manual (or `manuals`)."""
    counts = Counter() if counts is None else counts
    seen, out, found = set(), [], False
    for manual in manuals or tuple(MANUALS):
        for page, en_path, es_path in MANUALS[manual]():
            if not es_path.is_file():
                counts["pages without a Spanish page"] += 1
                continue
            found = True
            paragraphs, unpaired = paragraph_pairs(page_blocks(en_path), page_blocks(es_path))
            counts["blocks without a partner"] += unpaired
            for en, es in paragraphs:
                if en == es:
                    counts["untranslated blocks"] += 1
                    continue
                if NAVIGATION.match(en):
                    counts["navigation"] += 1
                    continue
                for s, t in sentence_pairs(en, es):
                    if not re.search(r"[^\W\d_]{2,}", s) or s == t:
                        counts["no words or untranslated"] += 1
                    elif mostly_untranslated(s, t):
                        counts["mostly untranslated"] += 1
                    elif len(s.split()) > max_words or len(t.split()) > max_words:
                        counts["too long"] += 1
                    elif not plausible(s, t):
                        counts["implausible length ratio"] += 1
                    elif (s, t) in seen:
                        counts["duplicates"] += 1
                    else:
                        seen.add((s, t))
                        out.append(DocPair(f"{manual}/{page}", s, t))
    if not found:
        raise DatasetMissing(f"Debian's documentation in English and Spanish (none under "
                             f"{share()})", INSTALL)
    return out
