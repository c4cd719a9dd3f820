"""The recognizer users would pick instead: CMU PocketSphinx, a stepwise HMM system (MFCC front
end, phonetically tied HMM acoustic model, pronunciation dictionary, trigram language model),
pretrained on real US English speech, scored on our clips with the speech task's WER and CER.

Debian's pocketsphinx (the `pocketsphinx_batch` program) and pocketsphinx-en-us (the acoustic
model, `en-us.lm.bin` and `cmudict-en-us.dict` under /usr/share/pocketsphinx/model/en-us) are
what setup.sh installs; we run the program on raw 16 kHz int16 files (Debian's Python bindings
belong to the system Python, not to a virtual environment). Nothing is trained here.

    python -m e2e.stepwise.pocketsphinx asterisk_digits asterisk_letters drascula queen_heldout

prints WER, CER and the real-time factor (seconds decoding per second of audio, one thread,
model loading left out) per set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from e2e.data.audio import SAMPLE_RATE, Utterance, load_all, normalize_text
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y pocketsphinx pocketsphinx-en-us"
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


def evaluate(items: list[Utterance]) -> dict[str, float]:
    """WER, CER, real-time factor and clip count of pocketsphinx on a test set."""
    waves, kept, _ = load_all(items)
    r = transcribe(waves)
    return {**score([u.text for u in kept], r.texts), "rtf": r.rtf, "clips": len(kept),
            "audio_seconds": r.audio_seconds}


def test_set(name: str, max_test: int = 300) -> list[Utterance]:
    """The named real test set, as bench/speech.py draws it: asterisk_digits,
    asterisk_letters, or a real corpus (`drascula`, ...) or held-out split (`queen_heldout`)
    of the speech mix, capped at `max_test` clips (a fixed random subset)."""
    from e2e.data import asterisk

    if name.startswith("asterisk_"):
        return asterisk.asterisk_set(name.removeprefix("asterisk_"))
    from e2e.tasks.speech.config import SpeechDataConfig
    from e2e.tasks.speech.mix import real_splits

    d = SpeechDataConfig()
    d.max_test = max_test
    corpus = name.removesuffix("_heldout")
    if name.endswith("_heldout"):
        d.real_train, d.real_unseen = corpus, ""
    else:
        d.real_train, d.real_unseen = "", corpus
    _, _, tests, _ = real_splits(d)
    if name not in tests:
        raise E2EError(f"no test set '{name}'; try asterisk_digits, asterisk_letters, "
                       "drascula, queen_heldout")
    return tests[name]


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description="pocketsphinx's WER/CER on e2e's real test sets")
    p.add_argument("sets", nargs="+", help="asterisk_digits, asterisk_letters, drascula, "
                                           "queen_heldout, ...")
    p.add_argument("--max-test", type=int, default=300, help="clips per real corpus set")
    args = p.parse_args(argv)
    for name in args.sets:
        r = evaluate(test_set(name, args.max_test))
        print(f"{name}: {r['clips']} clips, {r['audio_seconds'] / 60:.1f} min: "
              f"WER {100 * r['wer']:.1f}%  CER {100 * r['cer']:.1f}%  RTF {r['rtf']:.3f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
