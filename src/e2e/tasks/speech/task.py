"""Speech recognition end to end: raw 16 kHz waveform in, text out, one CTC loss.

The model (e2e.tasks.speech.model) learns its own front end from samples; nothing outside the
network turns audio into features (the stepwise counterpart, task `speech-mfcc` in
e2e.stepwise.mfcc, feeds fixed librosa MFCCs to the same encoder). Data (`data.source`):
  synth   the espeak-ng corpus (e2e.tasks.speech.synth), rendered on first use; training,
          validation and test voices are disjoint
  PATH    a manifest TSV (path<TAB>transcript), a folder of them, or LibriSpeech-style
          *.trans.txt files; split at random into train / val / test
  + data.real  real human voice acting from Debian game packages (e2e.tasks.speech.mix):
          training corpora split by speaker, one whole corpus kept for test only
Test sets are reported one by one (`test/<set>_wer`, `test/<set>_cer`): for synth, held-out
voices' digits, letters and sentences (and single words); with data.real, held-out game
speakers (`<corpus>_heldout`), whole voices held out (`<corpus>_<speaker>`, data.real_holdout)
and the unseen corpus (`drascula`); plus, when installed, the Asterisk
prompts, a real human voice at 8 kHz (`data.asterisk`). Greedy decoding is the network's own
answer; `_beam_` (training word list) and `_lm_` (+ word bigram LM of the training text) are
the stepwise variants beside it. Augmentation (e2e.tasks.speech.augment) runs on the
training batch, on the fly.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from e2e.config import Config, TrainConfig
from e2e.data.audio import SAMPLE_RATE, VOCAB, Utterance, load_all, read_corpus, read_manifest
from e2e.data.columns import is_prepared
from e2e.data.sources import data_home
from e2e.engine.progress import track
from e2e.errors import E2EError
from e2e.tasks.base import Splits, Task
from e2e.tasks.speech import corpus
from e2e.tasks.speech.augment import augment
from e2e.tasks.speech.config import SpeechDataConfig, SpeechModelConfig, SpeechTrain
from e2e.tasks.speech.ctc import BigramLM, beam_search, ctc_loss, encode, frames_needed, greedy
from e2e.tasks.speech.info import SpeechInfo
from e2e.tasks.speech.model import SpeechRecognizer
from e2e.tasks.speech.serving import SpeechServing


class SpeechSet(Dataset):
    """Waveforms (float32 in [-1, 1], 16 kHz) with transcripts, each tagged with the test set
    it is in."""

    def __init__(self, waves: list[np.ndarray], texts: list[str], groups: list[str]):
        self.waves, self.texts, self.groups = waves, texts, groups
        # Samples per example: the engine batches examples of similar length (less padding).
        self.lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.waves)

    def __getitem__(self, i: int) -> dict:
        return {"x": torch.from_numpy(self.waves[i]),
                "y": torch.tensor(encode(self.texts[i], VOCAB))}

    def seconds(self) -> float:
        return sum(len(w) for w in self.waves) / SAMPLE_RATE

    def subset(self, keep: list[int]) -> SpeechSet:
        return SpeechSet([self.waves[i] for i in keep], [self.texts[i] for i in keep],
                         [self.groups[i] for i in keep])


def collate(items: list[dict]) -> dict:
    pad = torch.nn.utils.rnn.pad_sequence
    return {"x": pad([it["x"] for it in items], batch_first=True),
            "lengths": torch.tensor([len(it["x"]) for it in items]),
            "y": pad([it["y"] for it in items], batch_first=True),
            "y_lengths": torch.tensor([len(it["y"]) for it in items])}


class SpeechTask(Task):
    name = "speech"
    DataConfig = SpeechDataConfig
    ModelConfig = SpeechModelConfig
    metrics = ("wer", "cer", "loss")
    channels_last = False
    Info = SpeechInfo
    Serving = SpeechServing

    def default_train(self) -> TrainConfig:
        return SpeechTrain()

    collate = staticmethod(collate)

    # ---- data ----
    def build_data(self, cfg: Config, info: SpeechInfo | None = None) -> Splits:
        d: SpeechDataConfig = cfg.data
        if is_prepared(d.source):
            return self._prepared_splits(cfg, Path(d.source).expanduser())
        if d.source == "synth":
            from e2e.tasks.speech.synth import build_corpus, parse_kinds

            folder = Path(d.corpus).expanduser() if d.corpus else data_home() / "speech-synth"
            kinds = parse_kinds(d.kinds)
            build_corpus(folder, d.n, d.n_val, d.n_test, seed=d.split_seed, kinds=kinds,
                         flite=d.flite, piper=d.piper)
            train_items = read_manifest(folder / "train.tsv")
            val_items = read_manifest(folder / "val.tsv")
            tests = {f"synth_{k}": read_manifest(folder / f"test_{k}.tsv") for k in kinds}
            origin = f"espeak-ng corpus {folder}"
        else:
            from e2e.data.splits import split_indices

            items = read_corpus(d.source)
            parts = split_indices(len(items), d.val_fraction, d.test_fraction, d.split_seed,
                                  "utterances", str(d.source))
            train_items, val_items, test_items = ([items[i] for i in p] for p in parts)
            tests = {"test": test_items}
            origin = str(d.source)
        from e2e.tasks.speech.mix import asterisk_tests, real_splits

        real_facts: dict[str, Any] = {}
        real_train: list[Utterance] = []
        if d.real:
            real_train, real_val, real_tests, real_facts = real_splits(d)
            val_items = val_items + real_val
            tests.update(real_tests)
            origin += f" + real speech {real_facts['real_folder']}"
        tests.update(asterisk_tests(d))
        skipped: list[str] = []
        # each real clip read once, however often data.real_repeat repeats it
        waves, kept, bad = load_all(list(dict.fromkeys(real_train)), d.skip_bad)
        skipped += bad
        by_clip = dict(zip(kept, waves))
        real = SpeechSet([by_clip[u] for u in real_train if u in by_clip],
                         [u.text for u in real_train if u in by_clip],
                         ["train"] * sum(u in by_clip for u in real_train))
        train = self._concat([self._load(train_items, "train", d, skipped), real])
        val = self._load(val_items, "val", d, skipped)
        if real_facts:  # distinct real hours that train (the data curve's axis), long ones out
            real_facts["real_train_hours"] = round(sum(
                len(w) for w in waves if len(w) <= d.max_seconds * SAMPLE_RATE)
                / SAMPLE_RATE / 3600, 4)
        test = self._concat([self._load(v, k, d, skipped) for k, v in tests.items()])
        if skipped:
            print(f"skipped {len(skipped)} unreadable audio file(s), e.g. {skipped[0]}")
        return self._splits(cfg, train, val, test, list(tests), origin, len(skipped), real_facts)

    def _splits(self, cfg: Config, train, val, test, test_sets: list[str], origin: str,
                skipped: int, real_facts: dict) -> Splits:
        """The splits with what the model learns of the training text (in memory or on disk)."""
        d: SpeechDataConfig = cfg.data
        # Overlong clips: slow, memory-hungry batches and the likeliest CTC failures.
        long = (train.lengths > d.max_seconds * SAMPLE_RATE).nonzero().flatten().tolist()
        if long:
            drop = set(long)
            train = train.subset([i for i in range(len(train)) if i not in drop])
        lexicon = sorted({w for t in train.texts for w in t.split()})
        info = SpeechInfo(lexicon=lexicon, lm=BigramLM.count(train.texts), source=origin,
                          test_sets=test_sets, skipped_files=skipped,
                          dropped_long=len(long), max_seconds=d.max_seconds,
                          train_utterances=len(train), real=real_facts,
                          train_hours=round(train.seconds() / 3600, 3))
        info.ctc_too_long = self._too_long(train, cfg, info)
        return Splits(train, val, test, info)

    def _prepared_splits(self, cfg: Config, folder: Path) -> Splits:
        """A prepared corpus (e2e data prepare): training streams, val and test too."""
        manifest = corpus.manifest(folder)
        meta, have = manifest["meta"], manifest["splits"]
        missing = [s for s in ("train", "val", "test") if s not in have]
        if missing:
            raise E2EError(f"{folder} has no {missing[0]} split; prepare it with val and test "
                           "fractions above 0, or give the corpus its own val and test files")
        train, val, test = (corpus.StreamedSpeech(folder, s) for s in ("train", "val", "test"))
        test_sets = meta.get("test_sets") or sorted(set(test.groups))
        return self._splits(cfg, train, val, test, test_sets, str(folder), 0,
                            meta.get("real", {}))

    def _too_long(self, train: SpeechSet, cfg: Config, info: SpeechInfo) -> int:
        """Training clips whose transcript needs more output frames than the network
        makes of them at their own speed (CTC's length guard leaves them out)."""
        if not len(train):
            return 0
        encoded = [torch.tensor(encode(t, VOCAB), dtype=torch.long) for t in train.texts]
        targets = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True)
        target_lengths = torch.tensor([len(t) for t in encoded])
        frames = self.build_model(cfg, info).frame_lengths(train.lengths)
        return int((frames < frames_needed(targets, target_lengths)).sum())

    @staticmethod
    def _load(items: list[Utterance], group: str, d: SpeechDataConfig,
              skipped: list[str]) -> SpeechSet:
        waves, kept, bad = load_all(items, d.skip_bad)
        skipped += bad
        return SpeechSet(waves, [u.text for u in kept], [group] * len(kept))

    @staticmethod
    def _concat(sets: list[SpeechSet]) -> SpeechSet:
        return SpeechSet([w for s in sets for w in s.waves], [t for s in sets for t in s.texts],
                         [g for s in sets for g in s.groups])

    # ---- model and loss ----
    def build_model(self, cfg: Config, info: SpeechInfo) -> torch.nn.Module:
        m: SpeechModelConfig = cfg.model
        if m.encoder not in ("conformer", "gru"):
            raise E2EError(f"model.encoder must be conformer or gru, got '{m.encoder}'")
        if m.encoder == "conformer" and m.dim % m.heads:
            raise E2EError(f"model.dim ({m.dim}) must be divisible by model.heads ({m.heads})")
        if m.inter_ctc > 0 and (m.encoder != "conformer" or m.layers < 2 or
                                m.inter_ctc_layer >= m.layers):
            raise E2EError(f"model.inter_ctc needs a conformer of 2 or more layers and "
                           f"model.inter_ctc_layer below model.layers ({m.layers}); got encoder "
                           f"{m.encoder}, inter_ctc_layer {m.inter_ctc_layer}")
        return SpeechRecognizer(len(info.vocab) + 1, m, *self.front_end())

    def front_end(self) -> tuple[torch.nn.Module | None, int]:
        """The module that turns waveforms into features, and its channels; None = the
        learned filterbank (the stepwise `speech-mfcc` task puts fixed MFCCs here)."""
        return None, 0

    def prepare_batch(self, batch: dict, train: bool, cfg: Config, info: SpeechInfo) -> dict:
        d: SpeechDataConfig = cfg.data
        if train and d.augment.enabled:
            x, lengths = augment(batch["x"], batch["lengths"], d.augment)
            return {**batch, "x": x, "lengths": lengths}
        return batch

    def loss(self, model: torch.nn.Module, batch: dict, cfg: Config, info: SpeechInfo
             ) -> torch.Tensor:
        w = cfg.model.inter_ctc
        if not w:
            logits, lengths = model(batch["x"], batch["lengths"])
            return ctc_loss(logits, lengths, batch["y"], batch["y_lengths"])[0]
        # intermediate CTC: the middle of the encoder is asked to spell the text too
        logits, lengths, inter = model(batch["x"], batch["lengths"], intermediate=True)
        final = ctc_loss(logits, lengths, batch["y"], batch["y_lengths"])[0]
        return (1 - w) * final + w * ctc_loss(inter, lengths, batch["y"], batch["y_lengths"])[0]

    # ---- a corpus on disk (e2e data prepare) ----
    def corpus_columns(self, cfg: Config, meta: dict) -> dict:
        return corpus.COLUMNS

    def corpus_rows(self, cfg: Config) -> tuple[dict, dict]:
        return corpus.own_rows(self.build_data(cfg))

    def corpus_fields(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return corpus.FIELDS, ("audio", "text")

    def corpus_example(self, record: dict, cfg: Config, base: Path, meta: dict,
                       split: str) -> dict:
        return corpus.example(record, base, split)

    # ---- evaluation and prediction ----
    def transcribe_set(self, model: torch.nn.Module, split: SpeechSet, cfg: Config,
                       info: SpeechInfo, beam: bool, lm: bool = False
                       ) -> tuple[list[str], float]:
        """Hypotheses in the split's order (batched by length), and the mean CTC loss; `lm`:
        beam search with the word bigram model of the training text (a stepwise variant)."""
        device = next(model.parameters()).device
        order = sorted(range(len(split)), key=lambda i: int(split.lengths[i]))
        hyps: list[str] = [""] * len(split)
        loss_sum, batches = 0.0, 0
        # a long decode (beam search on a big test set) reports progress after 10 s
        for start in track(range(0, len(order), 32), desc="transcribing", unit="batches",
                           delay=10):
            idx = order[start:start + 32]
            batch = {k: v.to(device) for k, v in collate([split[i] for i in idx]).items()}
            logits, lengths = model(batch["x"], batch["lengths"])
            loss, _ = ctc_loss(logits, lengths, batch["y"], batch["y_lengths"])
            loss_sum, batches = loss_sum + float(loss.detach()), batches + 1
            if beam:
                logp = logits.float().log_softmax(-1)
                m = cfg.model
                texts = [beam_search(logp[j, :n], VOCAB, m.beam_size,
                                     info.word_list if m.lexicon else None,
                                     lm=info.bigram_lm if lm else None, lm_weight=m.lm_weight,
                                     word_bonus=m.word_bonus)
                         for j, n in enumerate(lengths.tolist())]
            else:
                texts = greedy(logits, lengths, VOCAB)
            for i, text in zip(idx, texts):
                hyps[i] = text
        return hyps, loss_sum / max(batches, 1)

    def evaluate(self, model: torch.nn.Module, split: SpeechSet, cfg: Config, info: SpeechInfo
                 ) -> dict[str, float]:
        import jiwer

        hyps, loss = self.transcribe_set(model, split, cfg, info, beam=False)
        metrics = {"wer": jiwer.wer(split.texts, hyps), "cer": jiwer.cer(split.texts, hyps),
                   "loss": loss}
        groups = sorted(set(split.groups))
        beam = cfg.model.beam_size > 1 and groups != ["val"]  # validation stays cheap: greedy
        # Stepwise variants beside the network's own (greedy) answer: the training word list,
        # and a word bigram model of the training text on top of it.
        variants = {}
        if beam:
            variants["beam"] = self.transcribe_set(model, split, cfg, info, beam=True)[0]
            if info.bigram_lm is not None and cfg.model.lm_weight > 0:
                variants["lm"] = self.transcribe_set(model, split, cfg, info, beam=True,
                                                     lm=True)[0]
        for g in groups if len(groups) > 1 or beam else []:
            idx = [i for i, x in enumerate(split.groups) if x == g]
            refs = [split.texts[i] for i in idx]
            metrics[f"{g}_wer"] = jiwer.wer(refs, [hyps[i] for i in idx])
            metrics[f"{g}_cer"] = jiwer.cer(refs, [hyps[i] for i in idx])
            for name, h in variants.items():
                metrics[f"{g}_{name}_wer"] = jiwer.wer(refs, [h[i] for i in idx])
                metrics[f"{g}_{name}_cer"] = jiwer.cer(refs, [h[i] for i in idx])
        return metrics

    def report(self, model: torch.nn.Module, split: SpeechSet, cfg: Config, info: SpeechInfo,
               run_dir: Path, metrics: dict[str, float]) -> str:
        hyps, _ = self.transcribe_set(model, split, cfg, info, beam=False)
        rows = ["## Test transcripts (greedy), first of each test set", "",
                "| set | reference | hypothesis |", "| --- | --- | --- |"]
        shown: dict[str, int] = {}
        for g, ref, hyp in zip(split.groups, split.texts, hyps):
            if shown.get(g, 0) < 5:
                shown[g] = shown.get(g, 0) + 1
                rows.append(f"| {g} | {ref} | {hyp} |")
        rows += ["", "## Left out of training", "",
                 f"- Clips longer than {info.max_seconds:g} s, dropped before "
                 f"training: {info.dropped_long}",
                 f"- Unreadable audio files skipped (data.skip_bad): {info.skipped_files}",
                 f"- Training clips whose transcript needs more output frames than the network "
                 f"makes of them at their own speed (CTC's length guard leaves them out of the "
                 f"loss; a sped-up copy may fit or not): {info.ctc_too_long}"]
        real = info.real
        if real:
            skipped = Path(real["real_folder"]) / "skipped.txt"
            if skipped.exists():
                kinds = Counter(line.split("\t")[1] for line in
                                skipped.read_text(encoding="utf-8").splitlines() if "\t" in line)
                rows.append(f"- Real clips left out at extraction ({skipped}): "
                            f"{kinds.get('text', 0)} with characters outside the vocabulary "
                            f"(digits, symbols), {kinds.get('short', 0)} shorter than 0.2 s, "
                            f"{kinds.get('bad', 0)} that did not decode")
            rows += ["", "## Real speakers (split by speaker: no test voice in training)", ""]
            rows += [f"- {name} {part}: {', '.join(spk)}"
                     for name, parts in real["speakers"].items() for part, spk in parts.items()]
        return "\n".join(rows)
