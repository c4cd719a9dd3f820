"""Real human speech for testing: the Asterisk PBX English prompts (one speaker, 8 kHz).

Debian's asterisk-core-sounds-en-wav holds the recordings, asterisk-core-sounds-en the
transcripts (`digits/7: seven` lines in core-sounds-en.txt.gz). `asterisk_set("digits")`
gives the number words 0-20, 30, ..., 90; `asterisk_set("letters")` the letters a-z.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

from e2e.data.audio import Utterance, check_text
from e2e.errors import DatasetMissing, E2EError

INSTALL = ("sudo apt-get update && sudo apt-get install -y asterisk-core-sounds-en-wav "
           "asterisk-core-sounds-en")
# Which prompts form each test set: file-name patterns inside the sounds folder.
SETS = {"digits": r"digits/\d+", "letters": r"letters/[a-z]"}


def sounds_dir() -> Path:
    return Path(os.environ.get("E2E_ASTERISK_SOUNDS",
                               "/usr/share/asterisk/sounds/en_US_f_Allison"))


def transcripts_file() -> Path:
    return Path(os.environ.get("E2E_ASTERISK_TEXT",
                               "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"))


def installed() -> bool:
    return sounds_dir().is_dir() and transcripts_file().exists()


def asterisk_set(name: str) -> list[Utterance]:
    if name not in SETS:
        raise E2EError(f"unknown Asterisk set '{name}'; choose from {', '.join(SETS)}")
    if not installed():
        raise DatasetMissing(f"the Asterisk English prompts (looked in {sounds_dir()} and "
                             f"{transcripts_file()})", INSTALL)
    pattern = re.compile(SETS[name])
    items = []
    with gzip.open(transcripts_file(), "rt", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            key, sep, text = line.partition(":")
            if not sep or not pattern.fullmatch(key.strip()):
                continue
            wav = sounds_dir() / f"{key.strip()}.wav"
            if wav.exists():
                items.append(Utterance(wav, check_text(text, f"{transcripts_file()}:{n}")))
    return sorted(items, key=lambda u: str(u.path))
