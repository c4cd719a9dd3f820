"""Real human speech from Debian game packages, extracted once into 16 kHz WAVs + manifests.

    e2e data speech-real --out DIR [--skip-bad]

writes, per corpus (queen = Flight of the Amazon Queen, drascula, warzone = Warzone 2100,
steelsky = Beneath a Steel Sky, tuxpaint = Tux Paint's spoken letters, digits and descriptions,
hedgewars = Hedgewars' English voice packs, ktuberling = KTuberling's spoken words):

    DIR/<corpus>/<speaker>/<clip>.wav   16 kHz mono PCM
    DIR/<corpus>.tsv                    path<TAB>transcript<TAB>speaker (paths relative to DIR)
    DIR/LICENSES.md                     where each corpus comes from and its license
    DIR/skipped.txt                     every clip left out, with why

A clip whose transcript has characters the models cannot spell (digits, symbols) is left out
and counted (it is not bad input: the transcript is right, our alphabet is small); a clip that
does not decode or is empty is an error naming it, or with skip_bad left out and counted.
Extraction is skipped for a corpus whose manifest already exists; an interrupted extraction
resumes: WAVs already written (each one atomically) are kept, not decoded again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from e2e.data.audio import (
    Utterance,
    check_text,
    read_manifest,
    read_samples,
    resample,
    write_manifest,
    write_wav,
)
from e2e.errors import DatasetMissing, E2EError

CORPORA = ("queen", "drascula", "warzone", "steelsky", "tuxpaint", "hedgewars", "ktuberling")
# Corpora whose speaker field is not a known voice: a part of the game (steelsky: the hero
# speaks in every part) or a recording set (tuxpaint: no voice credited per file, 10-65 clips a
# set). No held-out set of theirs would be surely free of training voices: they train whole.
NOT_BY_VOICE = ("steelsky", "tuxpaint")
MIN_SECONDS = 0.2  # shorter clips are clicks or breaths, not words


def _queen() -> Iterator[tuple[str, str, str, Callable[[], tuple[np.ndarray, int]]]]:
    from e2e.data.amazon_queen import Archive

    a = Archive()
    for c in a.clips():
        yield f"{a.path}:{c.name}.SB", c.text, c.speaker.lower(), lambda c=c: a.audio(c.name)


def _drascula() -> Iterator[tuple[str, str, str, Callable[[], tuple[np.ndarray, int]]]]:
    from e2e.data import drascula

    for c in drascula.clips():
        yield str(c.path), c.text, c.speaker, lambda c=c: drascula.read_als(c.path)


def _warzone() -> Iterator[tuple[str, str, str, Callable[[], tuple[np.ndarray, int]]]]:
    from e2e.data.warzone import Archive

    a = Archive()
    for c in a.clips():
        yield f"{a.path}:{c.member}", c.text, c.speaker, lambda c=c: a.audio(c.member)


def _steelsky() -> Iterator[tuple[str, str, str, Callable[[], tuple[np.ndarray, int]]]]:
    from e2e.data.steel_sky import Disk, spoken_text

    d = Disk()
    for c in d.clips():
        yield (f"{d.folder}/sky.dsk:{c.file_no}", spoken_text(c.text), c.speaker,
               lambda c=c: d.audio(c.text_no))


def _files(module: str) -> Callable[[], Iterator[tuple[str, str, str, Callable[[], tuple[
        np.ndarray, int]]]]]:
    """A reader over a module whose clips() are files on disk (tuxpaint, hedgewars, ...)."""
    def read() -> Iterator[tuple[str, str, str, Callable[[], tuple[np.ndarray, int]]]]:
        import importlib

        m = importlib.import_module(f"e2e.data.{module}")
        for c in m.clips():
            yield str(c.path), c.text, c.speaker, lambda c=c: read_samples(c.path)
    return read


READERS = {"queen": _queen, "drascula": _drascula, "warzone": _warzone, "steelsky": _steelsky,
           "tuxpaint": _files("tuxpaint"), "hedgewars": _files("hedgewars"),
           "ktuberling": _files("ktuberling")}


def licenses() -> str:
    from e2e.data import amazon_queen, drascula, hedgewars, ktuberling, steel_sky, tuxpaint, warzone

    return "\n".join(["# Real speech corpora (extracted by `e2e data speech-real`)", "",
                      f"- queen: Flight of the Amazon Queen, {amazon_queen.LICENSE}",
                      f"- drascula: Drascula: The Vampire Strikes Back, {drascula.LICENSE}",
                      f"- warzone: Warzone 2100, {warzone.LICENSE}",
                      f"- steelsky: Beneath a Steel Sky, {steel_sky.LICENSE}",
                      f"- tuxpaint: Tux Paint stamps, {tuxpaint.LICENSE}",
                      f"- hedgewars: Hedgewars voice packs, {hedgewars.LICENSE}",
                      f"- ktuberling: KTuberling, {ktuberling.LICENSE}", ""])


def extract_corpus(name: str, out: Path, skip_bad: bool = False) -> dict[str, int]:
    """One corpus into `out` (see the module doc); counts of kept and skipped clips."""
    if name not in READERS:
        raise E2EError(f"unknown real speech corpus '{name}'; choose from {', '.join(CORPORA)}")
    manifest = out / f"{name}.tsv"
    if manifest.exists():
        return {"kept": len(read_manifest(manifest)), "reused": 1}
    kept: list[Utterance] = []
    skipped: list[str] = []
    counts = {"kept": 0, "text": 0, "bad": 0, "short": 0}
    for where, text, speaker, load in READERS[name]():
        try:
            norm = check_text(text, where)
        except E2EError as e:
            counts["text"] += 1
            skipped.append(f"text\t{e}")
            continue
        if not norm:
            counts["text"] += 1
            skipped.append(f"text\t{where}: transcript {text!r} has no words")
            continue
        stem = where.rsplit("/", 1)[-1].rsplit(":", 1)[-1].rsplit(".", 1)[0]
        done = out / name / speaker / f"{stem}.wav"
        if done.exists():  # written by an interrupted earlier run
            kept.append(Utterance(done, norm, speaker))
            counts["kept"] += 1
            continue
        try:
            x, rate = load()
            if len(x) == 0:
                raise E2EError(f"{where} is empty (no samples)")
        except E2EError as e:
            if not skip_bad:
                raise E2EError(f"{e}; rerun with --skip-bad to leave such clips out") from None
            counts["bad"] += 1
            skipped.append(f"bad\t{e}")
            continue
        if len(x) < MIN_SECONDS * rate:
            counts["short"] += 1
            skipped.append(f"short\t{where}: {len(x) / rate:.2f} s")
            continue
        done.parent.mkdir(parents=True, exist_ok=True)
        tmp = done.with_name(f".{done.stem}.{os.getpid()}.part.wav")
        write_wav(tmp, resample(x, rate))
        os.replace(tmp, done)  # a killed run leaves no half-written WAV behind
        kept.append(Utterance(done, norm, speaker))
        counts["kept"] += 1
    with open(out / "skipped.txt", "a", encoding="utf-8") as f:
        f.writelines(f"{name}\t{s}\n" for s in skipped)
    write_manifest(manifest, kept)  # last: its presence means the corpus is complete
    return counts


def extract(out: str | Path, corpora: tuple[str, ...] = CORPORA, skip_bad: bool = False,
            quiet: bool = False) -> dict[str, dict[str, int]]:
    """Every installed corpus in `corpora`; a missing one is a note, not an error."""
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    (out / "LICENSES.md").write_text(licenses(), encoding="utf-8")
    result = {}
    for name in corpora:
        try:
            result[name] = extract_corpus(name, out, skip_bad)
        except DatasetMissing as e:
            if not quiet:
                print(f"note: {name} not installed: {e}")
            continue
        if not quiet:
            print(f"speech-real: {name}: {result[name]}")
    return result


def read_real(folder: str | Path, name: str) -> list[Utterance]:
    """The extracted manifest of corpus `name` (with speakers)."""
    path = Path(folder).expanduser() / f"{name}.tsv"
    if not path.exists():
        raise E2EError(f"{path} does not exist: run `e2e data speech-real --out {folder}` first")
    return read_manifest(path)
