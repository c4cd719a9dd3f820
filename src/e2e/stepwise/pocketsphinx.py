"""The recognizer users would pick instead: CMU PocketSphinx, a stepwise HMM system (MFCC front
end, phonetically tied HMM acoustic model, pronunciation dictionary, trigram language model),
pretrained on real US English speech, scored on our clips with the speech task's WER and CER.

Debian's pocketsphinx (the `pocketsphinx_batch` program) and pocketsphinx-en-us (the acoustic
model, `en-us.lm.bin` and `cmudict-en-us.dict` under /usr/share/pocketsphinx/model/en-us) are
what setup.sh installs; we run the program on raw 16 kHz int16 files (Debian's Python bindings
belong to the system Python, not to a virtual environment). Nothing is trained here.

    python -m e2e.stepwise.pocketsphinx [--config broad] [asterisk_digits drascula ...]

prints WER, CER and the real-time factor (seconds decoding per second of audio, one thread,
model loading left out) per real test set of the recipe: the very clips its network is tested
on (e2e.tasks.speech.mix.real_test_sets). Transcripts are cached by clip samples and model
files (`--cache`, default $E2E_DATA/pocketsphinx/transcripts.jsonl): a set decoded once is not
decoded again by the benchmark or `e2e compare speech`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.data.audio import SAMPLE_RATE, Utterance, load_all, normalize_text
from e2e.data.sources import data_home
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y pocketsphinx pocketsphinx-en-us"
_APPEND = threading.Lock()  # test sets decoded in threads append to one cache file
PROGRAM = "pocketsphinx_batch"


def model_dir() -> Path:
    return Path(os.environ.get("E2E_POCKETSPHINX_MODEL", "/usr/share/pocketsphinx/model/en-us"))


def installed() -> bool:
    m = model_dir()
    return shutil.which(PROGRAM) is not None and (m / "en-us").is_dir() and \
        (m / "en-us.lm.bin").exists() and (m / "cmudict-en-us.dict").exists()


@dataclass
class Result:
    texts: list[str]  # one normalized transcript per clip, in order
    seconds: float  # wall time of the whole run (model loading included)
    decode_seconds: float  # wall time decoding alone, as pocketsphinx_batch logs it
    audio_seconds: float
    reused: int = 0  # clips whose transcript came from the cache

    @property
    def rtf(self) -> float:
        """Seconds of decoding (one thread: pocketsphinx has no more) per second of audio."""
        return self.decode_seconds / max(self.audio_seconds, 1e-9)


def transcribe(clips: list[np.ndarray]) -> Result:
    """Transcribe 16 kHz mono clips (float32 in [-1, 1], the speech task's form, or int16)."""
    if not installed():
        raise DatasetMissing(f"pocketsphinx with its US English model (looked for {PROGRAM} and "
                             f"{model_dir()})", INSTALL)
    m = model_dir()
    with tempfile.TemporaryDirectory(prefix="e2e-pocketsphinx-") as tmp:
        d = Path(tmp)
        for i, x in enumerate(clips):
            if x.dtype != np.int16:
                x = (np.clip(x, -1, 1) * 32767).astype(np.int16)
            x.astype("<i2").tofile(d / f"u{i:06d}.raw")
        (d / "ctl").write_text("".join(f"u{i:06d}\n" for i in range(len(clips))))
        cmd = [PROGRAM, "-adcin", "yes", "-cepdir", str(d), "-cepext", ".raw",
               "-ctl", str(d / "ctl"), "-samprate", str(SAMPLE_RATE),
               "-hmm", str(m / "en-us"), "-lm", str(m / "en-us.lm.bin"),
               "-dict", str(m / "cmudict-en-us.dict"), "-hyp", str(d / "hyp"),
               "-logfn", str(d / "log")]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0 or not (d / "hyp").exists():
            log = (d / "log").read_text(errors="replace") if (d / "log").exists() else ""
            raise E2EError(f"{PROGRAM} failed (exit {done.returncode}): "
                           f"{(log or done.stderr).strip().splitlines()[-1:]}")
        texts = read_hypotheses((d / "hyp").read_text(errors="replace"), len(clips))
        total = re.search(r"TOTAL [\d.]+ seconds speech, [\d.]+ seconds CPU, ([\d.]+) seconds wall",
                          (d / "log").read_text(errors="replace"))
    return Result(texts, seconds, float(total.group(1)) if total else seconds,
                  sum(len(x) for x in clips) / SAMPLE_RATE)


def read_hypotheses(text: str, n: int) -> list[str]:
    """`words (uttid score)` lines -> transcripts by utterance number; fillers such as <sil>
    or [noise] and alternative-pronunciation marks (word(2)) are dropped."""
    out = [""] * n
    for line in text.splitlines():
        m = re.fullmatch(r"(.*?)\s*\(u(\d+)(?:\s+-?\d+)*\)\s*", line)
        if m and int(m.group(2)) < n:
            words = [re.sub(r"\(\d+\)$", "", w) for w in m.group(1).split()]
            out[int(m.group(2))] = normalize_text(" ".join(
                w for w in words if not re.fullmatch(r"<.*>|\[.*\]", w)))
    return out


def score(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """WER and CER as the speech task computes them (jiwer); an empty answer counts as deleting
    every word."""
    import jiwer

    hyps = [h if h.strip() else "" for h in hyps]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def fingerprint() -> str:
    """What a transcript depends on besides the samples: the program and model files (names,
    sizes, times), so a cached transcript is reused only by the same recognizer."""
    parts = [str(shutil.which(PROGRAM))]
    for f in sorted(p for p in model_dir().rglob("*") if p.is_file()):
        st = f.stat()
        parts.append(f"{f.relative_to(model_dir())}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]


def clip_key(x: np.ndarray, model: str) -> str:
    """A clip's cache key: the int16 samples pocketsphinx reads, and the recognizer."""
    if x.dtype != np.int16:
        x = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    return hashlib.sha1(x.astype("<i2").tobytes()).hexdigest() + "-" + model


def read_cache(path: Path) -> dict[str, dict]:
    """key -> {"text", "seconds"} from a JSON-lines cache; a torn last line (a killed run) is
    decoded again, not an error."""
    out = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                out[row["key"]] = row
            except (ValueError, KeyError, TypeError):
                continue
    return out


def transcribe_cached(clips: list[np.ndarray], cache: Path | None) -> Result:
    """transcribe(), decoding only the clips not in the cache (a JSON-lines file keyed by the
    clip's samples and the recognizer's files); new transcripts are appended to it. Each
    clip's decoding time is its share (by length) of its batch's, so a real-time factor
    comes back for cached clips too."""
    if cache is None:
        return transcribe(clips)
    if not installed():
        raise DatasetMissing(f"pocketsphinx with its US English model (looked for {PROGRAM} and "
                             f"{model_dir()})", INSTALL)
    start = time.perf_counter()
    model = fingerprint()
    keys = [clip_key(x, model) for x in clips]
    known = read_cache(cache)
    todo = [i for i, k in enumerate(keys) if k not in known]
    if todo:
        r = transcribe([clips[i] for i in todo])
        rows = [{"key": keys[i], "text": text, "seconds": len(clips[i]) / SAMPLE_RATE * r.rtf}
                for i, text in zip(todo, r.texts)]
        known.update((row["key"], row) for row in rows)
        cache.parent.mkdir(parents=True, exist_ok=True)
        with _APPEND, open(cache, "a", encoding="utf-8") as f:  # whole lines, one writer
            f.write("".join(json.dumps(row) + "\n" for row in rows))
    return Result([known[k]["text"] for k in keys], time.perf_counter() - start,
                  sum(known[k]["seconds"] for k in keys),
                  sum(len(x) for x in clips) / SAMPLE_RATE, reused=len(clips) - len(todo))


def evaluate(items: list[Utterance], cache: Path | None = None) -> dict[str, float]:
    """WER, CER, real-time factor and clip count of pocketsphinx on a test set."""
    waves, kept, _ = load_all(items)
    r = transcribe_cached(waves, cache)
    return {**score([u.text for u in kept], r.texts), "rtf": r.rtf, "clips": len(kept),
            "audio_seconds": r.audio_seconds, "reused": r.reused}


def default_cache() -> Path:
    return data_home() / "pocketsphinx" / "transcripts.jsonl"


def test_sets(config: str | None = None, overrides: list[str] | tuple = ()
              ) -> dict[str, list[Utterance]]:
    """The real test sets of a speech recipe (default: the default recipe), the clips its
    network is tested on: held-out speakers and sources, unseen corpora, Asterisk prompts."""
    from e2e.tasks import load_config
    from e2e.tasks.speech.mix import real_test_sets

    return real_test_sets(load_config(config, "speech", list(overrides)).data)


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="pocketsphinx's WER/CER on a speech recipe's real "
                                            "test sets (the clips its network is tested on)")
    p.add_argument("sets", nargs="*", help="test set names (default: all of the recipe's), "
                                           "e.g. asterisk_digits drascula queen_heldout")
    p.add_argument("--config", help="a speech recipe (default: the default recipe)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. data.max_test=300")
    p.add_argument("--cache", type=Path, default=default_cache(),
                   help="transcripts cache (JSON lines; default: %(default)s)")
    args = p.parse_args(argv)
    sets = test_sets(args.config, args.set)
    unknown = [s for s in args.sets if s not in sets]
    if unknown:
        raise E2EError(f"no test set {unknown} in this recipe; its sets: {', '.join(sets)}")
    for name in args.sets or list(sets):
        r = evaluate(sets[name], args.cache)
        print(f"{name}: {r['clips']} clips, {r['audio_seconds'] / 60:.1f} min: "
              f"WER {100 * r['wer']:.1f}%  CER {100 * r['cer']:.1f}%  RTF {r['rtf']:.3f} "
              f"({r['reused']} from the cache)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
