"""Audio in: read WAV/FLAC at any rate and channel count as 16 kHz mono, and read corpora.

A corpus is a list of `Utterance(path, text)`. It comes from a manifest TSV
(`path<TAB>transcript`, paths relative to the manifest), from LibriSpeech-style
`*.trans.txt` files (`ID TRANSCRIPT` per line, audio `ID.flac` beside them), or from a
folder holding either. Transcripts are normalized to the character vocabulary the speech
models spell with; a character outside it is an error that names the manifest line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np

from e2e.errors import E2EError

SAMPLE_RATE = 16_000
# What a CTC model spells with (index 0 is the CTC blank): lowercase letters, space, apostrophe.
VOCAB = " abcdefghijklmnopqrstuvwxyz'"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


@dataclass(frozen=True)
class Utterance:
    path: Path
    text: str
    speaker: str = ""  # who speaks (or the scene, where speakers are unknown): splits by it


def normalize_text(text: str) -> str:
    """Lowercase, hyphens as spaces, drop sentence punctuation, squeeze whitespace."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[.,;:!?\"()]", " ", text)
    return " ".join(text.split())


def check_text(text: str, where: str) -> str:
    """Normalized `text`, or an E2EError naming `where` and the characters the vocabulary lacks."""
    norm = normalize_text(text)
    bad = sorted(set(norm) - set(VOCAB))
    if bad:
        raise E2EError(f"{where}: transcript {text!r} has character(s) {bad} outside the "
                       f"vocabulary {VOCAB!r}; spell them out (e.g. digits as words) or drop "
                       "the line")
    return norm


def resample(x: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (scipy), exact for any pair of integer rates."""
    if rate == target:
        return x
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    up, down = target // g, rate // g
    return resample_poly(x, up, down, window=_lowpass(up, down)).astype(np.float32)


@lru_cache(maxsize=8)
def _lowpass(up: int, down: int) -> np.ndarray:
    """resample_poly's own anti-aliasing filter, designed once per rate pair (not per call)."""
    from scipy.signal import firwin

    m = max(up, down)
    return firwin(20 * m + 1, 1.0 / m, window=("kaiser", 5.0))


def read_samples(path: str | Path | BinaryIO) -> tuple[np.ndarray, int]:
    """(float32 mono samples, their rate) of a WAV, FLAC or OGG file (or an open binary file:
    encoded bytes from a corpus); stereo is averaged."""
    import soundfile as sf

    if isinstance(path, str | Path):
        path = Path(path)
        if not path.exists():
            raise E2EError(f"audio file {path} does not exist")
    try:
        x, rate = sf.read(path if not isinstance(path, Path) else str(path), dtype="float32",
                          always_2d=True)
    except Exception as e:  # soundfile raises its own LibsndfileError, RuntimeError, ...
        raise E2EError(f"{path} is not a readable audio file ({e}); WAV, FLAC or OGG "
                       "expected") from None
    return x.mean(axis=1), rate


def read_audio(path: str | Path | BinaryIO, target: int = SAMPLE_RATE) -> np.ndarray:
    """float32 mono samples in [-1, 1] at `target` Hz; any rate resampled."""
    x, rate = read_samples(path)
    return np.clip(resample(x, rate, target), -1, 1)  # resampling overshoots


def write_wav(path: Path, x: np.ndarray, rate: int = SAMPLE_RATE) -> None:
    import soundfile as sf

    sf.write(str(path), np.clip(x, -1, 1), rate, subtype="PCM_16")


def read_manifest(path: str | Path) -> list[Utterance]:
    """`path<TAB>transcript[<TAB>speaker]` lines (blank lines and `#` comments skipped)."""
    path = Path(path)
    if not path.exists():
        raise E2EError(f"manifest {path} does not exist")
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if "\t" not in line:
            raise E2EError(f"{path}:{n}: expected 'path<TAB>transcript', got {line!r}")
        audio, text, *rest = line.split("\t")
        items.append(Utterance(path.parent / audio.strip(), check_text(text, f"{path}:{n}"),
                               rest[0].strip() if rest else ""))
    return items


def write_manifest(path: Path, items: list[Utterance]) -> None:
    """Atomically: a process reading the manifest meanwhile sees the old or the new file."""
    lines = [f"{u.path.relative_to(path.parent)}\t{u.text}" + (f"\t{u.speaker}" if u.speaker
                                                                else "") + "\n" for u in items]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)


def read_librispeech(folder: str | Path) -> list[Utterance]:
    """Every `*.trans.txt` under `folder`: `UTTERANCE-ID TRANSCRIPT`, audio `ID.flac` (or .wav)."""
    items = []
    for trans in sorted(Path(folder).rglob("*.trans.txt")):
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.partition(" ")
            audio = next((trans.parent / (uid + e) for e in AUDIO_EXTENSIONS
                          if (trans.parent / (uid + e)).exists()), None)
            if audio is None:
                raise E2EError(f"{trans}:{n}: no audio file {uid}.flac or {uid}.wav beside it")
            items.append(Utterance(audio, check_text(text, f"{trans}:{n}")))
    return items


def read_corpus(source: str | Path) -> list[Utterance]:
    """A manifest file, or a folder with a manifest (*.tsv) or LibriSpeech-style transcripts."""
    source = Path(source).expanduser()
    if source.is_file():
        return read_manifest(source)
    if not source.is_dir():
        raise E2EError(f"speech data {source} is neither a manifest file nor a folder")
    if any(source.rglob("*.trans.txt")):
        return read_librispeech(source)
    manifests = sorted(source.glob("*.tsv"))
    if not manifests:
        raise E2EError(f"{source} has no manifest (*.tsv with path<TAB>transcript lines) and no "
                       "LibriSpeech-style *.trans.txt files")
    return [u for m in manifests for u in read_manifest(m)]


def load_all(items: list[Utterance], skip_bad: bool = False
             ) -> tuple[list[np.ndarray], list[Utterance], list[str]]:
    """Read every utterance as `read_audio` does (float32 in [-1, 1] at 16 kHz: the one form a
    clip has from here to the model); returns the waveforms, the utterances kept, and
    'path: why' for each skipped one (with skip_bad)."""
    waves, kept, skipped = [], [], []
    for u in items:
        try:
            x = read_audio(u.path)
            if len(x) == 0:
                raise E2EError(f"{u.path} is empty (no samples)")
        except E2EError as e:
            if not skip_bad:
                raise E2EError(f"{e}. Fix or remove it, or set data.skip_bad=true to skip "
                               "unreadable files") from None
            skipped.append(str(e))
            continue
        waves.append(x)
        kept.append(u)
    return waves, kept, skipped
