"""Drascula: The Vampire Strikes Back: real human voice acting, 783 English clips, ~12 characters.

Debian's drascula (freeware: see /usr/share/doc/drascula/copyright) ships the clips as raw
unsigned 8-bit mono 11,025 Hz files, `/usr/share/scummvm/drascula/en/<prefix><n>.ALS`.
Their lines sit in ScummVM's `drascula.dat` (package scummvm-data, a dependency; the format
of ScummVM's devtools/create_drascula): after the engine's tables come the text arrays,
one per character, each `u16BE count`, then per language (English first) `u16BE size`,
2 pad bytes and `count` entries of `u16BE entry size` + NUL-terminated upper-case text.
Clip `<prefix><n>.ALS` says entry n of its character's array.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from e2e.data.audio import Utterance
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y drascula scummvm-data"
LICENSE = "freeware (Debian package drascula; text from scummvm-data, GPL-2+)"
RATE = 11_025
# The text arrays in file order: clip-name prefix and who speaks (the engine's talk_* calls).
ARRAYS = [("", "hacker"), ("D", "drascula"), ("B", "drunk"), ("BJ", "bj"), ("E", "e"),
          ("I", "igor"), ("L", "l"), ("P", "pianist"), ("T", "bartender"), ("VB", "vonbraun")]
# Sizes of the engine tables before the text, in file order (bytes per entry).
_TABLES = [4, 4, 4, 2, 4, 2, 4, 2, 2, 20, 20, 10, 8]


def clips_dir() -> Path:
    return Path(os.environ.get("E2E_DRASCULA", "/usr/share/scummvm/drascula/en"))


def dat_file() -> Path:
    return Path(os.environ.get("E2E_DRASCULA_DAT", "/usr/share/scummvm/drascula.dat"))



def read_texts(path: Path) -> dict[str, list[str]]:
    """Clip prefix -> the English lines of that character, from drascula.dat."""
    d = path.read_bytes()
    if d[:8] != b"DRASCULA":
        raise E2EError(f"{path}: not ScummVM's drascula.dat (no DRASCULA header)")
    p = 9

    def u16() -> int:
        nonlocal p
        (v,) = struct.unpack(">H", d[p:p + 2])
        p += 2
        return v
    try:
        for size in _TABLES:
            count = u16()  # (read first: `p += u16() * size` would use p before the read)
            p += count * size
        langs = u16()
        out = {}
        for prefix, _ in ARRAYS:
            count = u16()
            for lang in range(langs):
                p += 4  # section size (u16) + alignment padding
                lines = []
                for _ in range(count):
                    n = u16()
                    lines.append(d[p:p + n - 2].split(b"\0")[0].decode("latin-1"))
                    p += n - 2
                if lang == 0:
                    out[prefix] = lines
    except struct.error:
        raise E2EError(f"{path}: truncated at byte {p}; reinstall scummvm-data") from None
    return out


def clips() -> list[Utterance]:
    """Every clip whose character and line number has an English line."""
    folder, dat = clips_dir(), dat_file()
    if not folder.is_dir() or not dat.exists():
        raise DatasetMissing(f"Drascula (looked in {folder} and {dat})", INSTALL)
    texts = read_texts(dat)
    who = dict(ARRAYS)
    out = []
    for f in sorted(folder.glob("*.ALS")):
        stem = f.stem.upper()
        prefix = stem.rstrip("0123456789")
        num = stem[len(prefix):]
        if prefix not in texts or not num:
            continue  # sound effects (S, F) have no line
        lines = texts[prefix]
        if int(num) < len(lines) and lines[int(num)].strip():
            out.append(Utterance(f, lines[int(num)].strip(), who[prefix]))
    return out


def read_als(path: Path) -> tuple[np.ndarray, int]:
    """(float32 samples, rate) of a raw unsigned 8-bit clip."""
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
    if len(raw) == 0:
        raise E2EError(f"{path} is empty (no samples)")
    return (raw.astype(np.float32) - 128.0) / 128.0, RATE
