"""Wesnoth's campaigns, English -> Spanish: dialogue and narration, ~11k pairs.

Every official campaign of The Battle for Wesnoth 1.16 is a Debian package
(`wesnoth-1.16-httt`, `-trow`, `-utbs`, ...; GPL-2+, see /usr/share/doc/wesnoth-1.16-*/copyright)
that ships its text as one gettext catalog per language:
`/usr/share/games/wesnoth/1.16/locale/es/LC_MESSAGES/wesnoth-CAMPAIGN.mo`. The strings are
the campaign's dialogue ("Die, villain, die!"), its story narration and its objectives, each
translated by people. The game's own catalogs (`wesnoth`, `wesnoth-lib`, `-editor`, `-help`:
menus and help pages) are software messages and are left out; the unit descriptions and the
multiplayer scenarios' stories are prose and are kept.

Cleaning, with a count of each thing dropped:
- a `context^` prefix (`teamname^Enemies`), Pango markup (`<i>`, `<span color=...>`) and
  help markup (`<ref>text='Elves' dst='..race_elf'</ref>`: its text) are stripped;
- a multi-line string gives one pair per line where both sides have as many lines, else one
  pair of the whole text joined;
- strings whose `$variables` differ between the sides are dropped ("variables differ");
- strings left identical (names: "Dwar-Ni") or with no word are dropped;
- a malformed `.mo` file is skipped, with its name.

The document of a pair is its textdomain (the campaign): a split by document holds out whole
campaigns.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from e2e.data.gettext_catalogs import read_catalog
from e2e.errors import DatasetMissing, E2EError

CAMPAIGNS = ("did", "dm", "dw", "ei", "httt", "l", "low", "nr", "sof", "sota", "sotbe", "thot",
             "trow", "tsg", "ttb", "utbs")
INSTALL = ("sudo apt-get update && sudo apt-get install -y --no-install-recommends "
           + " ".join(f"wesnoth-1.16-{c}" for c in CAMPAIGNS))
LICENSE = "GPL-2+ (The Battle for Wesnoth, Debian packages wesnoth-1.16-*)"
# menus, editor, help: software messages, not narrative
INTERFACE = ("wesnoth", "wesnoth-lib", "wesnoth-editor", "wesnoth-help")

CONTEXT = re.compile(r"^[\w +]+\^")  # teamname^, race+female^
HELP_MARKUP = re.compile(r"<(\w+)>text='([^']*)'[^<]*</\1>")  # <ref>text='Elves' dst='..'</ref>
MARKUP = re.compile(r"</?(?:span|b|i|u|big|small|tt|s|sub|sup)\b[^>]*>", re.I)
VARIABLE = re.compile(r"\$[\w.|\[\]]+")


def locale_folder() -> Path:
    root = os.environ.get("E2E_WESNOTH", "/usr/share/games/wesnoth/1.16")
    return Path(root) / "locale" / "es" / "LC_MESSAGES"


@dataclass(frozen=True)
class Line:
    document: str  # the textdomain without "wesnoth-": httt, trow, units, ...
    source: str
    target: str


def clean(text: str) -> str:
    """One string as plain text: no context prefix, no markup, single spaces."""
    text = MARKUP.sub("", HELP_MARKUP.sub(r"\2", CONTEXT.sub("", text)))
    return " ".join(text.split())


def line_pairs(source: str, target: str, counts: Counter) -> list[tuple[str, str]]:
    """The usable (English, Spanish) pairs of one catalog entry, counting what is dropped."""
    src, tgt = CONTEXT.sub("", source).split("\n"), CONTEXT.sub("", target).split("\n")
    src, tgt = [x for x in src if x.strip()], [x for x in tgt if x.strip()]
    if len(src) != len(tgt):
        src, tgt = [" ".join(src)], [" ".join(tgt)]
    out = []
    for s, t in zip(src, tgt):
        s, t = clean(s), clean(t)
        if not re.search(r"[^\W\d_]{2,}", s) or not t:
            counts["no words"] += 1
        elif s == t:
            counts["same on both sides"] += 1
        elif sorted(VARIABLE.findall(s)) != sorted(VARIABLE.findall(t)):
            counts["variables differ"] += 1
        else:
            out.append((s, t))
    return out


def read_wesnoth(folder: Path | None = None, counts: Counter | None = None) -> list[Line]:
    """Unique (English, Spanish) pairs of the narrative catalogs, tagged with their textdomain.

    `counts` (if given) receives how many strings each cleaning rule dropped.
    """
    folder = folder or locale_folder()
    files = [p for p in sorted(folder.glob("wesnoth-*.mo")) if p.stem not in INTERFACE]
    if not any(p.stem.removeprefix("wesnoth-") in CAMPAIGNS + ("tb",) for p in files):
        raise DatasetMissing(f"Wesnoth's campaigns in Spanish (no campaign catalogs in {folder})",
                             INSTALL)
    counts = Counter() if counts is None else counts
    seen, out = set(), []
    for path in files:
        try:
            catalog = read_catalog(path)
        except E2EError as e:
            print(f"wesnoth: skipped {e}")
            counts["malformed files"] += 1
            continue
        for source, target in catalog.items():
            for s, t in line_pairs(source, target, counts):
                if (s, t) in seen:
                    counts["duplicates"] += 1
                    continue
                seen.add((s, t))
                out.append(Line(path.stem.removeprefix("wesnoth-"), s, t))
    if not out:
        raise E2EError(f"no usable pairs in Wesnoth's catalogs in {folder} "
                       f"(dropped: {dict(counts)})")
    return out
