"""Flight of the Amazon Queen: real human voice acting, ~6,700 English clips, many actors.

Debian's flight-of-the-amazon-queen (freeware, redistributable: see its
/usr/share/doc/flight-of-the-amazon-queen/copyright) ships one archive, `queen.1c`:

    "QTBL", 6 B version, 2 B pad, 1 B codec (1 = MP3), u16BE entry count,
    entries of 12 B name, 1 B bundle, u32BE offset, u32BE size

Speech clips are the `.SB` entries (raw MP3, 11,025 Hz mono). The dialogue files (`.DOG`,
the format of ScummVM's engines/queen/talk.cpp) hold each conversation's lines: after a
20-byte header, a talk header (level count, talk key, Joe's and the other person's line
counts, offsets), the dialogue tree, then tables of (id, length-prefixed string). A line is
spoken in segments split at `*XX` stage directions; segment k of line `id` of a talk is the
clip `%02d%04X%c%X` % (talk key, id, 'P' for the person or 'J' for Joe, k). The speaker of
a 'P' clip is the character the dialogue file is named after (BOB1.DOG -> BOB), of a 'J'
clip Joe, the hero.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y flight-of-the-amazon-queen"
LICENSE = "freeware, redistributable (Debian package flight-of-the-amazon-queen)"
DOG_HEADER = 20


def archive() -> Path:
    return Path(os.environ.get("E2E_QUEEN", "/usr/share/scummvm/flight-of-the-amazon-queen/"
                                            "queen.1c"))


@dataclass(frozen=True)
class Clip:
    name: str  # e.g. 020001P2 (no .SB)
    text: str  # as written in the game (mixed case, punctuation)
    speaker: str  # JOE, or the character of the dialogue file
    scene: str  # the dialogue file, e.g. BOB1


def read_table(data: bytes, where: str) -> dict[str, tuple[int, int]]:
    """Entry name -> (offset, size) from the archive's header."""
    if data[:4] != b"QTBL" or len(data) < 15:
        raise E2EError(f"{where}: not a Flight of the Amazon Queen archive (no QTBL header)")
    (count,) = struct.unpack(">H", data[13:15])
    table, p = {}, 15
    for _ in range(count):
        name = data[p:p + 12].split(b"\0")[0].decode("ascii", "replace")
        off, size = struct.unpack(">II", data[p + 13:p + 21])
        table[name] = (off, size)
        p += 21
    return table


def _string(d: bytes, off: int) -> tuple[str, int]:
    """One length-prefixed string and the offset after it (4-byte aligned, as the engine)."""
    n = d[off]
    off += 1
    if n == 0:
        return "", off
    return d[off:off + n].decode("latin-1"), (off + n + 3) & ~3


def _lines(d: bytes, off: int, count: int) -> dict[int, str]:
    out = {}
    for _ in range(count):
        off += 2
        (line_id,) = struct.unpack(">h", d[off:off + 2])
        off += 2
        text, off = _string(d, off)
        out[line_id] = text
    return out


def segments(line: str) -> list[str]:
    """Text of each voice segment: split at `*XX` stage directions (`*XY00(237,112)` is
    longer), as the engine's Talk::speak does."""
    out, start, i = [], 0, 0
    while i < len(line):
        if line[i] == "*":
            out.append(line[start:i])
            i += 1
            i += 13 if line[i:i + 2] == "XY" else 2
            start = i
        else:
            i += 1
    if start != i:
        out.append(line[start:i])
    return out


def parse_dialogue(dog: bytes, scene: str) -> list[Clip]:
    """Every (clip name, text, speaker) a dialogue file names."""
    d = dog[DOG_HEADER:]
    if len(d) < 32:
        raise E2EError(f"dialogue file {scene}.DOG is {len(dog)} bytes: too short")
    level_max, _unique, key, j_max, p_max = struct.unpack(">hhhhh", d[:10])
    (p_off,) = struct.unpack(">H", d[22:24])
    j_off = 32 + abs(level_max) * 96
    person = re.sub(r"\d+$", "", scene) or scene
    clips = []
    for table, who, tag in ((_lines(d, p_off, p_max), person, "P"),
                            (_lines(d, j_off, j_max), "JOE", "J")):
        for line_id, text in table.items():
            if line_id <= 0:
                continue
            for k, seg in enumerate(segments(text), 1):
                if seg.strip():
                    clips.append(Clip(f"{key:02d}{line_id:04X}{tag}{k:X}", seg.strip(), who,
                                      scene))
    return clips


class Archive:
    """queen.1c opened once: its table, its dialogue, and clips decoded on demand."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else archive()
        if not self.path.exists():
            raise DatasetMissing(f"Flight of the Amazon Queen (looked for {self.path})", INSTALL)
        self.data = self.path.read_bytes()
        self.table = read_table(self.data, str(self.path))

    def entry(self, name: str) -> bytes:
        off, size = self.table[name]
        return self.data[off:off + size]

    def clips(self) -> list[Clip]:
        """Clips with a transcript: those a dialogue file names and the archive holds
        (one per name: the first dialogue file that names it)."""
        seen: dict[str, Clip] = {}
        for name in sorted(n for n in self.table if n.endswith(".DOG")):
            for c in parse_dialogue(self.entry(name), name[:-4]):
                if f"{c.name}.SB" in self.table and c.name not in seen:
                    seen[c.name] = c
        return sorted(seen.values(), key=lambda c: c.name)

    def audio(self, name: str) -> tuple[np.ndarray, int]:
        """(float32 mono samples, rate) of clip `name`; E2EError names the clip if it does
        not decode."""
        import soundfile as sf

        try:
            x, rate = sf.read(io.BytesIO(self.entry(f"{name}.SB")), dtype="float32",
                              always_2d=True)
        except Exception as e:  # noqa: BLE001 - libsndfile's errors vary by codec
            raise E2EError(f"{self.path}:{name}.SB: MP3 clip does not decode ({e})") from None
        return x.mean(axis=1), rate
