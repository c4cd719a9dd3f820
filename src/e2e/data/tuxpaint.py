"""Tux Paint's stamps: English letters and digits spoken by people, and spoken descriptions.

Debian's tuxpaint-stamps-default (GPL-2+: see /usr/share/doc/tuxpaint-stamps-default/copyright)
ships, beside each stamp picture, its text `<stamp>.txt` (first line: the English description,
e.g. "An owl.") and sounds: `<stamp>_desc.ogg` says that description in English
(`_desc_<lang>.ogg` in other languages), `<stamp>.ogg` / `<stamp>_<lang>.ogg` is the stamp's own
sound. For the letters (symbols/alphabets/english) and digits (symbols/math) that sound is the
letter or number said aloud: `a_filled_en_GB.ogg` says "a", `7.ogg` and `7_en_GB.ogg` say
"seven" (the first line of 7.txt, "Seven."). Other stamps' own sounds are noises (animals,
tools): left out. The filled and outlined letters share recordings: each recording is read
once (by its bytes).

Speakers: the package credits no voice per file; a recording set stands for a voice: `en_gb`
(the letters and digits of `*_en_GB.ogg`), `en` (the digits of `<n>.ogg`) and `desc` (the
descriptions).

Clip form: `audio()` returns (float32 mono samples in [-1, 1], rate), as the other readers.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from e2e.data.audio import Utterance
from e2e.errors import DatasetMissing

INSTALL = "sudo apt-get update && sudo apt-get install -y tuxpaint-stamps-default"
LICENSE = "GPL-2+ (Debian package tuxpaint-stamps-default)"


def stamps_dir() -> Path:
    return Path(os.environ.get("E2E_TUXPAINT_STAMPS", "/usr/share/tuxpaint/stamps"))



def first_line(txt: Path) -> str:
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    return lines[0].strip() if lines else ""


def clips(folder: str | Path | None = None) -> list[Utterance]:
    """Every English letter, digit and description clip (one per distinct recording)."""
    root = Path(folder) if folder else stamps_dir()
    if not root.is_dir():
        raise DatasetMissing(f"Tux Paint stamps (looked in {root})", INSTALL)
    found: list[Utterance] = []
    letters = root / "symbols" / "alphabets" / "english"
    for f in sorted(letters.rglob("*_en_GB.ogg")):
        if "_desc" not in f.name:
            found.append(Utterance(f, f.name[0].lower(), "en_gb"))
    for f in sorted((root / "symbols" / "math").glob("*.ogg")):
        m = re.fullmatch(r"(\d+)(_en_GB)?\.ogg", f.name)
        txt = f.with_name(f"{m.group(1)}.txt") if m else None
        if txt and txt.exists():
            found.append(Utterance(f, first_line(txt), "en_gb" if m.group(2) else "en"))
    for f in sorted(root.rglob("*_desc.ogg")):
        txt = f.with_name(f.name[:-len("_desc.ogg")] + ".txt")
        if txt.exists() and first_line(txt):
            found.append(Utterance(f, first_line(txt), "desc"))
    seen: set[str] = set()
    out = []
    for c in found:
        digest = hashlib.sha1(c.path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            out.append(c)
    return out


