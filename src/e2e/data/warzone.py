"""Warzone 2100: ~15 minutes of English speech, several speakers, with their text.

Debian's warzone2100-data (GPL-2+) ships `base.wz`, a zip. Spoken clips (ogg) get their
text from two places: the comments of `audio/audio.cfg`
(`audio "pcv335.ogg" oneshot 100 1800 /*Construction Started*/`) and the
`{"audio": "tut1.ogg", ..., "message": _("...")}` entries of `script/tutorial.js`.
Sound effects (audio/sfx, beeps) are left out: their comments describe, not transcribe.
The speaker is the clip's folder (memressp = the mission-control voice, tutorial, nexus,
...): the game credits no actor per clip, so a folder stands for a voice.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y warzone2100-data"
LICENSE = "GPL-2+ (Debian package warzone2100-data)"
_CFG = re.compile(r'audio\s+"([^"]+\.ogg)"[^\n]*?/\*\s*(.*?)\s*\*/')
_TUT = re.compile(r'"audio":\s*"([^"]+\.ogg)"[^{}]*?"message":\s*_\("((?:[^"\\]|\\.)*)"\)')


def archive() -> Path:
    return Path(os.environ.get("E2E_WARZONE", "/usr/share/games/warzone2100/base.wz"))


@dataclass(frozen=True)
class Clip:
    member: str  # path inside base.wz
    text: str
    speaker: str


def _speaker(member: str) -> str:
    parts = member.split("/")
    return parts[2] if parts[1] == "memressp" and len(parts) > 3 else parts[-2]


class Archive:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else archive()
        if not self.path.exists():
            raise DatasetMissing(f"Warzone 2100 data (looked for {self.path})", INSTALL)
        try:
            self.zip = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as e:
            raise E2EError(f"{self.path}: not a zip archive ({e})") from None
        by_name: dict[str, str] = {}
        for m in self.zip.namelist():
            if m.endswith(".ogg") and m.startswith("audio/") and "/sfx/" not in m:
                by_name.setdefault(m.rsplit("/", 1)[-1].lower(), m)
        self.by_name = by_name

    def clips(self) -> list[Clip]:
        texts: dict[str, str] = {}
        cfg = self.zip.read("audio/audio.cfg").decode("latin-1")
        for name, text in _CFG.findall(cfg):
            if not name.lower().startswith("beep"):
                texts.setdefault(name.lower(), text)
        tut = self.zip.read("script/tutorial.js").decode("utf-8", "replace")
        for name, text in _TUT.findall(tut):
            texts[name.lower()] = text.replace('\\"', '"')
        return [Clip(self.by_name[n], t, _speaker(self.by_name[n]))
                for n, t in sorted(texts.items()) if n in self.by_name and t]

    def audio(self, member: str) -> tuple[np.ndarray, int]:
        import soundfile as sf

        try:
            x, rate = sf.read(io.BytesIO(self.zip.read(member)), dtype="float32",
                              always_2d=True)
        except Exception as e:  # noqa: BLE001 - libsndfile's errors vary by codec
            raise E2EError(f"{self.path}:{member}: OGG clip does not decode ({e})") from None
        return x.mean(axis=1), rate
