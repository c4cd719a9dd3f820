"""KTuberling: 72 English words (body parts, clothes, things) said by one speaker.

Debian's ktuberling-data (GPL-2+: see /usr/share/doc/ktuberling-data/copyright) names each
English clip in `sounds/en.soundtheme` (`<sound name="egypt_palmtree" file="en/..."/>`); the
name, without its playground's prefix (egypt_, moon_, pizzeria_, tv_), is the word. WORDS
splits or corrects the few names that are not spelt as said; "ufo" (a word or three letters?)
is left out.

Speaker: one voice for the whole English set ("en").

Clip form: `audio()` returns (float32 mono samples in [-1, 1], rate), as the other readers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from e2e.data.audio import Utterance
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y ktuberling-data"
LICENSE = "GPL-2+ (Debian package ktuberling-data)"
PLAYGROUNDS = ("egypt_", "moon_", "pizzeria_", "tv_")
WORDS = {"palmtree": "palm tree", "fallingstar": "falling star", "brocolli": "broccoli",
         "sphynx": "sphinx", "moonwalker": "moon walker"}
UNSURE = {"ufo"}
_SOUND = re.compile(r'<sound\s+name="([^"]+)"\s+file="([^"]+)"')


def sounds_dir() -> Path:
    return Path(os.environ.get("E2E_KTUBERLING", "/usr/share/ktuberling/sounds"))



def word(name: str) -> str | None:
    for p in PLAYGROUNDS:
        name = name.removeprefix(p)
    return None if name in UNSURE else WORDS.get(name, name.replace("_", " "))


def clips(folder: str | Path | None = None) -> list[Utterance]:
    root = Path(folder) if folder else sounds_dir()
    theme = root / "en.soundtheme"
    if not theme.exists():
        raise DatasetMissing(f"KTuberling's English sounds (looked for {theme})", INSTALL)
    pairs = _SOUND.findall(theme.read_text(encoding="utf-8"))
    if not pairs:
        raise E2EError(f"{theme}: no <sound name=... file=...> entries; reinstall ktuberling-data")
    out, seen = [], set()
    for name, file in pairs:
        text = word(name)
        if text and file not in seen and (root / file).exists():
            seen.add(file)
            out.append(Utterance(root / file, text, "en"))
    return out
