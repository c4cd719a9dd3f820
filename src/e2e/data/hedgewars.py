"""Hedgewars: short English phrases shouted by the hedgehogs of 10 voice packs (actors).

Debian's hedgewars-data (GPL-2 / GFDL-1.3: see /usr/share/doc/hedgewars-data/copyright) ships
voice packs as folders of ogg clips, `Data/Sounds/voices/<pack>/<Event>.ogg`. The file name is
the phrase with its spaces taken out (`Illgetyou.ogg` says "I'll get you"); PHRASES splits the
names back into words. Grunts, coughs, laughs and numbered shouts (Ow1, Jump2, Firepunch3, Hmm)
carry no words: left out, as is any clip whose name is not in PHRASES. The packs in other
languages (Default_es, _pl, _ru, _uk, Russian_pl) are left out; `Russian` is English with an
accent. A pack may word an event its own way ("Hello" said as "Ahoy"): the name is the best
text the package gives.

Speaker: the pack (one actor each).

Clip form: `audio()` returns (float32 mono samples in [-1, 1], rate), as the other readers.
"""

from __future__ import annotations

import os
from pathlib import Path

from e2e.data.audio import Utterance
from e2e.errors import DatasetMissing

INSTALL = "sudo apt-get update && sudo apt-get install -y hedgewars-data"
LICENSE = "GPL-2 and GFDL-1.3 (Debian package hedgewars-data)"
ENGLISH_PACKS = ("British", "Classic", "Default", "HillBilly", "Mobster", "Pirate", "Robot",
                 "Russian", "Singer", "Surfer")
# File name -> the words it runs together (names that are one word map to themselves).
PHRASES = {
    "Amazing": "amazing", "Boring": "boring", "Brilliant": "brilliant", "Bugger": "bugger",
    "Byebye": "bye bye", "Comeonthen": "come on then", "Coward": "coward",
    "Cutitout": "cut it out", "Drat": "drat", "Enemydown": "enemy down",
    "Excellent": "excellent", "Fire": "fire", "Firstblood": "first blood",
    "Flawless": "flawless", "Flyaway": "fly away", "Gonnagetyou": "gonna get you",
    "Grenade": "grenade", "Hello": "hello", "Hurry": "hurry", "Illgetyou": "I'll get you",
    "Incoming": "incoming", "Justyouwait": "just you wait", "Kamikaze": "kamikaze",
    "Leavemealone": "leave me alone", "Melon": "melon", "Missed": "missed", "Nutter": "nutter",
    "Ohdear": "oh dear", "Oops": "oops", "Ouch": "ouch", "Reinforcements": "reinforcements",
    "Revenge": "revenge", "Runaway": "run away", "Sameteam": "same team", "Solong": "so long",
    "Stupid": "stupid", "Takecover": "take cover", "Thisoneismine": "this one is mine",
    "Traitor": "traitor", "Uh-oh": "uh oh", "Victory": "victory", "Watchit": "watch it",
    "Watchthis": "watch this", "Whatthe": "what the", "Yessir": "yes sir",
    "Youllregretthat": "you'll regret that",
}


def voices_dir() -> Path:
    return Path(os.environ.get("E2E_HEDGEWARS", "/usr/share/games/hedgewars/Data/Sounds/voices"))



def clips(folder: str | Path | None = None) -> list[Utterance]:
    """Every English pack's clip whose name PHRASES splits into words."""
    root = Path(folder) if folder else voices_dir()
    if not root.is_dir():
        raise DatasetMissing(f"Hedgewars voice packs (looked in {root})", INSTALL)
    out = []
    for pack in ENGLISH_PACKS:
        for f in sorted((root / pack).glob("*.ogg")):
            if f.stem in PHRASES:
                out.append(Utterance(f, PHRASES[f.stem], pack.lower()))
    return out
