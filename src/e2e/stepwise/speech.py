"""End to end vs stepwise for speech recognition: `e2e compare speech`.

Three systems, at nested training-set sizes, scored on the same test sets:

- end to end: learned conv front end + conformer + CTC over characters (the speech task);
- stepwise: fixed librosa MFCCs + the same conformer and CTC (task `speech-mfcc`), trained
  by the same engine on the same utterances - only the front end is hand-made;
- stepwise: MFCC + DTW isolated-word recognizer (e2e.stepwise.mfcc_dtw), its templates
  single words spoken by the corpus's training voices; nothing is learned by gradient;
- stepwise: pocketsphinx (e2e.stepwise.pocketsphinx), the recognizer users would pick instead:
  an HMM acoustic model, dictionary and trigram LM pretrained on real US English speech; nothing
  is trained here, it is scored on the same clips (when installed; transcripts cached).

Training data: the full comparison trains on the default recipe's mix (bench/speech.py's): the
espeak-ng + flite corpus (`e2e data speech-synth`) and real voice acting from the game corpora
(`e2e data speech-real`), speakers held out; --quick trains on a small espeak-ng corpus alone (the
named recipe `synthetic`). Subsets are nested: prefixes of the synthetic plan (`data.n`) and of one
fixed shuffle of the real clips (`data.real_n`), the same fraction of each. The primary quality is
WER on the Asterisk number words and letters (a real human voice at 8 kHz, never trained on), which
all three can be scored on; the neural models decode it with the word-list beam search. The
networks' greedy WER and CER on the other test sets (held-out game speakers, the unseen corpus,
synthetic voices) go into the notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import torch
from tqdm import tqdm

from e2e import api
from e2e.config import Config, with_overrides
from e2e.data import asterisk
from e2e.data.audio import load_all
from e2e.data.sources import data_home
from e2e.errors import E2EError
from e2e.stepwise.report import CompareOptions, Comparison, Metric, Row, nested_sizes
from e2e.tasks import load_config

# The budgets (--set overrides win). --quick: 600 espeak-ng utterances (the recipe `synthetic`)
# and 90 s per network, about 10 minutes on 2 cores in all; otherwise the default recipe's
# real + synthetic mix and 10 minutes per network, about two hours in all. The budget is time:
# the LR schedule follows the clock (train.schedule_by_time) and max_steps is only a ceiling,
# so a slower machine gets fewer steps but the same, completed schedule.
QUICK = ["data.n=600", "data.n_val=60", "data.n_test=60", "train.max_steps=1000",
         "train.time_limit=90", "train.schedule_by_time=true", "train.eval_every=100"]
QUICK_RECIPE = "synthetic"
FULL = ["train.max_steps=20000", "train.time_limit=600", "train.schedule_by_time=true",
        "train.eval_every=500"]
MAX_TEMPLATES_PER_WORD = 20  # DTW cost grows with the templates; 20 per word is plenty
SETS = ("asterisk digits+letters", "asterisk digits", "asterisk letters",
        "synth single words (test voices)")


@dataclass
class Plan:
    cfg: Config
    corpus: Path
    parts: list[tuple[int, int]]  # training utterances of the two networks: (synthetic, real)
    real_clips: int  # real training clips there are (0: no real speech in the mix)
    template_sizes: list[int]  # template utterances of the DTW recognizer
    test_words: int  # synthetic single words from test voices

    @property
    def sizes(self) -> list[int]:  # training utterances of the two networks, in all
        return [synth + real for synth, real in self.parts]


def plan(opts: CompareOptions) -> Plan:
    from e2e.stepwise.mfcc_dtw import WORDS

    overrides = ([f"data.source={opts.data}"] if opts.data else []) + \
        (QUICK if opts.quick else FULL) + ["data.asterisk=false"] + list(opts.overrides)
    cfg = load_config(QUICK_RECIPE if opts.quick else None, "speech", overrides)
    if cfg.data.source != "synth":
        raise E2EError(f"e2e compare speech trains on the espeak-ng corpus (data.source=synth); "
                       f"got '{cfg.data.source}'. The DTW templates need single words from the "
                       "corpus's training voices, which another source does not have")
    d = cfg.data
    corpus = Path(d.corpus).expanduser() if d.corpus else data_home() / "speech-synth"
    synth = nested_sizes(d.n, opts.fractions)
    real_clips = 0
    if d.real:
        from e2e.tasks.speech.mix import real_splits

        real_clips = real_splits(with_overrides(cfg, "data.real_n=0").data)[3][
            "real_train_clips"]
    # the same fraction of the real clips as of the synthetic utterances (so, nested too)
    parts = [(n, max(1, round(real_clips * n / d.n)) if real_clips else 0) for n in synth]
    # DTW gets as many template utterances as the networks get training utterances (capped:
    # its cost grows with them), so the rows meet at the same sizes. Below one template per
    # word, the words without one are simply never recognized.
    cap = MAX_TEMPLATES_PER_WORD * len(WORDS)
    test_words = -(-max(d.n_test, len(WORDS)) // len(WORDS)) * len(WORDS)  # whole rounds
    return Plan(cfg, corpus, parts, real_clips, sorted({min(a + b, cap) for a, b in parts}),
                test_words)


def jobs(opts: CompareOptions) -> int:
    from e2e.stepwise import pocketsphinx

    p = plan(opts)
    return 2 * len(p.sizes) + len(p.template_sizes) + int(pocketsphinx.installed())


POCKETSPHINX = "stepwise: pocketsphinx (pretrained HMM + trigram LM, CMU en-us)"


def score_pocketsphinx(p: Plan, tests: WordSets) -> tuple[Row, dict[str, float], dict]:
    """pocketsphinx on the isolated-word sets and, as `test/<set>_wer|cer`, on the networks'
    real test sets (the same clips): its row, its word-set scores and those results."""
    from e2e.stepwise import pocketsphinx
    from e2e.tasks.speech.mix import real_test_sets

    cache = pocketsphinx.default_cache()

    def transcribe(name: str, waves: list[np.ndarray]) -> tuple[list[str], float]:
        r = pocketsphinx.transcribe_cached(waves, cache)
        return r.texts, r.decode_seconds
    scores, ms = tests.score(transcribe)
    results = {}
    for name, items in (real_test_sets(p.cfg.data).items() if p.real_clips else []):
        r = pocketsphinx.evaluate(items, cache)
        results[f"test/{name}_wer"], results[f"test/{name}_cer"] = r["wer"], r["cer"]
    size = sum(f.stat().st_size for f in pocketsphinx.model_dir().rglob("*") if f.is_file())
    return (Row(POCKETSPHINX, 0, scores[SETS[0]], 0.0, ms,
                f"pretrained en-us models, {size / 2**20:.0f} MB"), scores, results)


def wer(refs: list[str], hyps: list[str]) -> float:
    return float(jiwer.wer(refs, [h if h.strip() else "<nothing>" for h in hyps]))


class WordSets:
    """The isolated-word test sets, loaded once: name -> (waves, words)."""

    def __init__(self, p: Plan):
        from e2e.stepwise.mfcc_dtw import single_words

        synth = single_words(p.corpus, "words_test", p.test_words, "test",
                             seed=p.cfg.data.split_seed)
        self.sets: dict[str, tuple[list[np.ndarray], list[str]]] = {}
        for name, items in zip(SETS[1:], (asterisk.asterisk_set("digits"),
                                          asterisk.asterisk_set("letters"), synth)):
            waves, kept, _ = load_all(items)
            self.sets[name] = (waves, [u.text for u in kept])

    def score(self, transcribe) -> tuple[dict[str, float], float]:
        """WER per set (and on both Asterisk sets together) of `transcribe(name, waves) ->
        (hypotheses, seconds)`, and its milliseconds per word on the Asterisk words."""
        hyps, seconds = {}, 0.0
        for name, (waves, _) in self.sets.items():
            hyps[name], s = transcribe(name, waves)
            seconds += s if name.startswith("asterisk") else 0.0
        real = [n for n in self.sets if n.startswith("asterisk")]
        scores = {SETS[0]: wer([w for n in real for w in self.sets[n][1]],
                               [h for n in real for h in hyps[n]])}
        scores.update({n: wer(self.sets[n][1], hyps[n]) for n in self.sets})
        return scores, 1000 * seconds / sum(len(self.sets[n][1]) for n in real)

    def counts(self) -> str:
        return ", ".join(f"{k} {len(v[1])}" for k, v in self.sets.items())


def score_network(out: Path, tests: WordSets) -> tuple[dict[str, float], float]:
    """A trained run's WERs on the isolated-word sets (word-list beam search)."""
    from e2e.tasks.speech.task import SpeechSet

    pred = api.load(out)

    def transcribe(name: str, waves: list[np.ndarray]) -> tuple[list[str], float]:
        started = time.perf_counter()
        words = tests.sets[name][1]  # for the CTC loss transcribe_set also reports; unused
        with torch.no_grad():
            hyps, _ = pred.task.transcribe_set(
                pred.model, SpeechSet(waves, words, [name] * len(waves)), pred.cfg, pred.info,
                beam=True)
        return hyps, time.perf_counter() - started

    return tests.score(transcribe)


def compare_speech(opts: CompareOptions, bar: tqdm) -> Comparison:
    from e2e.stepwise.mfcc import mfcc_features
    from e2e.stepwise.mfcc_dtw import DtwRecognizer, single_words
    from e2e.tasks.speech.synth import build_corpus, parse_kinds

    p = plan(opts)
    d = p.cfg.data
    bar.set_description("speech: rendering the corpus and the test words")
    # The largest corpus first: every smaller run reuses its files (a prefix of its plan).
    build_corpus(p.corpus, d.n, d.n_val, d.n_test, seed=d.split_seed,
                 kinds=parse_kinds(d.kinds), quiet=True, flite=d.flite,
                 piper=d.piper)
    tests = WordSets(p)
    mfcc_features(np.zeros(1600, np.float32))  # librosa's one-time set-up, kept out of timings
    rows: list[Row] = []
    details: list[tuple[str, int, dict[str, float], dict]] = []
    for n, (n_synth, n_real) in zip(p.sizes, p.parts):
        for side, task, frontend in (
                ("end to end (learned front end + conformer)", "speech", "learned"),
                ("stepwise: MFCC + same conformer", "speech-mfcc", "mfcc")):
            bar.set_description(f"speech: {frontend} front end on {n} utterances")
            out = opts.out / "speech" / f"{frontend}-{n}"
            cfg = with_overrides(p.cfg, f"data.n={n_synth}",
                                 *([f"data.real_n={n_real}"] if p.real_clips else []))
            cfg.task = task
            r = api.train(config=cfg, out=out, quiet=True)
            scores, ms = score_network(out, tests)
            rows.append(Row(side, n, scores[SETS[0]], r["train_seconds"], ms,
                            f"{r['parameters']:,} parameters"))
            details.append((side, n, scores, r))
            bar.update()
    templates = single_words(p.corpus, "words_train", p.template_sizes[-1], "train",
                             seed=d.split_seed)
    waves, kept, _ = load_all(templates)
    for k in p.template_sizes:
        bar.set_description(f"speech: MFCC + DTW with {k} templates")
        started = time.perf_counter()
        recognizer = DtwRecognizer.fit(waves[:k], [u.text for u in kept[:k]])
        seconds = time.perf_counter() - started
        scores, ms = tests.score(lambda name, w, r=recognizer: r.transcribe(w))
        side = "stepwise: MFCC + DTW templates"
        rows.append(Row(side, k, scores[SETS[0]], seconds, ms,
                        f"{k} templates, {recognizer.frames:,} frames x 39"))
        details.append((side, k, scores, {}))
        bar.update()
    from e2e.stepwise import pocketsphinx

    if pocketsphinx.installed():
        bar.set_description("speech: pocketsphinx on the same clips")
        row, scores, results = score_pocketsphinx(p, tests)
        rows.append(row)
        details.append((POCKETSPHINX, 0, scores, results))
        bar.update()
    return Comparison(rows, notes(p, tests, details, opts), Metric(f"WER, {SETS[0]}", False))


def notes(p: Plan, tests: WordSets, details: list, opts: CompareOptions) -> str:
    from e2e.stepwise.mfcc_dtw import WORDS
    from e2e.tasks.speech.mix import real_test_sets

    d, t = p.cfg.data, p.cfg.train
    real = list(real_test_sets(d)) if p.real_clips else []  # held-out voices, unseen corpora
    others = real + [f"synth_{k}" for k in d.kinds.split(",")]  # the task's own test sets
    head = "| system | training utterances | " + " | ".join(SETS[1:]) + " | " + \
        " | ".join(f"{s} (greedy WER / CER)" for s in others) + " |"
    lines = [head, "|" + " --- |" * (2 + len(SETS) - 1 + len(others))]
    for side, n, scores, r in details:
        extra = [f"{r[f'test/{s}_wer']:.3f} / {r[f'test/{s}_cer']:.3f}"
                 if f"test/{s}_wer" in r else "-" for s in others]
        lines.append(f"| {side} | {f'{n:,}' if n else 'none'} | "
                     + " | ".join(f"{scores[s]:.4f}" for s in SETS[1:])
                     + " | " + " | ".join(extra) + " |")
    steps = f"{t.max_steps} steps" if t.max_steps else f"{t.epochs} epochs"
    limit = f" or {t.time_limit:.0f} s, whichever comes first" if t.time_limit else ""
    if t.schedule_by_time and t.time_limit:
        limit += " (the LR schedule follows the clock, so it completes in the time)"
    budget = (f"each network trains for at most {steps}{limit} (budget of the whole comparison: "
              + ("about 10 minutes on 2 cores with --quick)" if opts.quick else
                 f"{2 * len(p.sizes) * t.time_limit / 60:.0f} minutes of training, plus "
                 "evaluation)"))
    mix = (f" plus real voice acting ({d.real_train}: {p.real_clips:,} training clips, other "
           f"speakers held out for validation and test; {d.real_unseen}: never trained on, "
           "test only), the same fraction of each in every subset (the real ones the first k "
           "of one fixed shuffle)" if p.real_clips else "")
    return "\n".join([
        f"Data: espeak-ng corpus {p.corpus} (training voices only), {d.n:,} training "
        f"utterances of {d.kinds}{mix}; the data curve trains on "
        + ", ".join(f"{a:,}" + (f" + {b:,}" if p.real_clips else "") for a, b in p.parts)
        + f" (nested; synthetic validation {d.n_val} utterances and test sets from their own "
        f"voices). Quality = word error rate (lower is better) on the Asterisk number words "
        f"and letters, one real human voice at 8 kHz that no system trained on. The two "
        f"networks decode with the word-list beam search (beam {p.cfg.model.beam_size}, words "
        f"of their training transcripts); {budget}, batch {t.batch_size}.",
        "",
        "- **end to end**: learned conv filterbank + conformer + CTC over characters, one loss.",
        "- **stepwise: MFCC + same conformer**: fixed librosa MFCCs (13 + deltas + "
        "delta-deltas, 100 frames/s) replace the learned front end; the rest is the same "
        "network, trained the same way.",
        "- **stepwise: MFCC + DTW templates**: isolated-word recognizer over the "
        f"{len(WORDS)}-word closed vocabulary (number words and "
        "letters): nearest template by dynamic time warping of MFCCs (up to 4 kHz, mean "
        "normalized); its training examples are template utterances, single words spoken by "
        "training voices, as many as the networks' training utterances but at most "
        f"{MAX_TEMPLATES_PER_WORD} per word (words go round-robin, so below {len(WORDS)} "
        "templates some words have none). No gradient learning; training time = feature "
        "extraction.",
        "- **stepwise: pocketsphinx** (when installed): Debian's pocketsphinx_batch with the "
        "pocketsphinx-en-us acoustic model, trigram LM and dictionary, defaults; pretrained "
        "elsewhere on real US English speech, nothing trained here (so no training examples); "
        "its inference time is its own decoding, one thread.",
        "",
        f"Isolated-word test sets: {tests.counts()}. Other WERs (the corpus's own test sets "
        "are multi-word; the networks decode greedily, pocketsphinx on the same clips):",
        "", *lines])
