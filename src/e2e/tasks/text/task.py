"""Translation and summarization, text in and text out, with one encoder-decoder Transformer.

Raw text is all the model is given: a byte-level BPE vocabulary is learned from the
training split itself (no per-language rules) and saved in every checkpoint, so a run
translates from its directory alone. Placeholders (%s, {0}, ...) travel through it as
single reserved tokens and come back as the source wrote them (data.protect_placeholders).
One label-smoothed cross-entropy trains the embeddings, encoder and decoder together; with
`model.copy` the decoder can also copy source tokens (a pointer-generator). Decoding is
batched greedy or beam search with a key/value cache; scores are sacrebleu BLEU and chrF
on detokenized text, ROUGE-L, and for software messages the share of outputs whose
placeholders (%s, {0}, ...) are intact. `e2e export` writes the encoder and the decoder
steps, cached and cache-free (e2e.tasks.text.export), which `e2e predict --backend onnx`
decodes with through the same search code.

Sources (`data.source`): bible-en-es (KJV -> Reina-Valera 1909, split by book),
debian-descriptions (long package description -> one-line summary), messages-en-es
(gettext catalogs of Debian packages + Debian's Spanish descriptions, split by package),
several of these joined by "+", or a TSV file of source<TAB>target lines; and `broad`, the
general translator's corpus (e2e.data.text_corpus: Wesnoth, Beneath a Steel Sky, Debian's
documentation, the Bible, the messages and descriptions, sampled so no domain drowns the
others, tuxpaint's sentences held out whole), or some of its corpora joined by "+".
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from e2e.config import Config, TrainConfig
from e2e.data.columns import is_prepared
from e2e.data.gettext_catalogs import placeholder_kept
from e2e.errors import E2EError
from e2e.tasks.base import Split, Splits, Task
from e2e.tasks.text import corpus, metrics
from e2e.tasks.text.config import TextDataConfig, TextModelConfig, TextTrain
from e2e.tasks.text.info import TextInfo
from e2e.tasks.text.model import Seq2SeqTransformer
from e2e.tasks.text.serving import TextServing, pad, summarizes, translate_ids
from e2e.tasks.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, encode, train_bpe

SOURCES = ("bible-en-es", "debian-descriptions", "messages-en-es")


class TextPairs(Dataset):
    """Token ids of (source, target) pairs plus the raw texts that scores compare against."""

    def __init__(self, sources: list[str], targets: list[str], tok, d: TextDataConfig,
                 role: str):
        self.sources, self.targets, self.role = sources, targets, role
        # A mix of corpora: name -> (start, end) of each one's pairs, scored apart in `evaluate`.
        self.parts: dict[str, tuple[int, int]] = {}
        # The broad corpus: what each corpus holds and its share of the training mix
        # (e2e.data.text_corpus.mix_summary), written into the run's report.
        self.mix: dict = {}
        self.src = [ids[:d.max_source_tokens - 1] + [EOS_ID] for ids in encode(tok, sources)]
        self.tgt = [[BOS_ID] + ids[:d.max_target_tokens - 2] + [EOS_ID]
                    for ids in encode(tok, targets, sources)]  # placeholders as the source's
        # Read by the engine's length bucketing: batches of similar length pad little.
        self.lengths = torch.tensor([len(s) + len(t) for s, t in zip(self.src, self.tgt)])

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> dict:
        return {"src": self.src[i], "tgt": self.tgt[i]}


class TextTask(Task):
    name = "text"
    DataConfig = TextDataConfig
    ModelConfig = TextModelConfig
    metrics = ("bleu", "chrf", "rougeL", "loss")
    channels_last = False
    Info = TextInfo
    Serving = TextServing

    def default_train(self) -> TrainConfig:
        return TextTrain()

    # ---- data ----
    def build_data(self, cfg: Config, info: TextInfo | None = None) -> Splits:
        d: TextDataConfig = cfg.data
        if is_prepared(d.source):
            return self._prepared_splits(cfg, Path(d.source).expanduser(), info)
        mix: dict = {}
        corpora = read_corpora(d, mix)
        train = [pair for _, part, _, _ in corpora for pair in part][:d.limit or None]
        val = [pair for _, _, part, _ in corpora for pair in part]
        tests = [(name, part[:d.test_limit or None]) for name, _, _, part in corpora]
        test = [pair for _, part in tests for pair in part]
        origin = d.source if len(corpora) > 1 else corpora[0][0]
        if info is None:  # a fresh run learns its vocabulary; a trained model keeps its own
            tok = train_bpe((s for pair in train for s in pair), d.vocab_size,
                            sentinels=d.protect_placeholders)
            same_on_every_rank(tok.to_str())
            info = TextInfo(tokenizer=tok.to_str(), source=origin, vocab=tok.get_vocab_size(),
                            max_source_tokens=d.max_source_tokens)
        else:
            info = dataclasses.replace(info, source=origin)
        splits = [TextPairs([s for s, _ in part], [t for _, t in part], info.bpe, d, role)
                  for part, role in ((train, "train"), (val, "val"), (test, "test"))]
        if len(tests) > 1:  # several corpora: the test split is scored on each one too
            ends = torch.tensor([len(part) for _, part in tests]).cumsum(0).tolist()
            splits[2].parts = {name: (end - len(part), end)
                               for (name, part), end in zip(tests, ends)}
        for split in splits:
            split.mix = mix
        cut = sum(len(s) >= d.max_source_tokens for s in splits[0].src)
        if cut:
            print(f"text: {cut} of {len(train)} training sources were longer than "
                  f"data.max_source_tokens={d.max_source_tokens} and were truncated")
        return Splits(*splits, info)

    def _prepared_splits(self, cfg: Config, folder: Path, info: TextInfo | None) -> Splits:
        """A prepared corpus (e2e data prepare): the training pairs stream from disk and are
        encoded as they are read; validation and test are read whole."""
        d: TextDataConfig = cfg.data
        manifest = corpus.manifest(folder)
        meta, rows = manifest["meta"], manifest["splits"]["train"]
        train = corpus.StreamedPairs(folder, "train", None, d,
                                     list(range(min(d.limit, rows))) if d.limit else None)
        if info is None:  # a fresh run learns its vocabulary from the text streamed once
            tok = train_bpe(train.texts(), d.vocab_size, sentinels=d.protect_placeholders)
            same_on_every_rank(tok.to_str())
            info = TextInfo(tokenizer=tok.to_str(), source=str(folder),
                            vocab=tok.get_vocab_size(), max_source_tokens=d.max_source_tokens)
        else:
            info = dataclasses.replace(info, source=str(folder))
        train.tok = info.bpe
        test, parts = corpus.pairs(folder, "test"), dict(meta.get("parts", {}))
        if d.test_limit:  # the first test_limit pairs of each corpus, as from memory
            kept, ends = [], {}
            for name, (a, b) in (parts or {"": (0, len(test))}).items():
                ends[name] = (len(kept), len(kept) + min(b - a, d.test_limit))
                kept += test[a:a + d.test_limit]
            test, parts = kept, (ends if parts else {})
        val = corpus.pairs(folder, "val")
        splits = [TextPairs([s for s, _ in part], [t for _, t in part], info.bpe, d, role)
                  for part, role in ((val, "val"), (test, "test"))]
        splits[1].parts = {name: tuple(v) for name, v in parts.items()}
        for split in (train, *splits):
            split.mix = meta.get("mix", {})
        return Splits(train, *splits, info)

    # ---- a corpus on disk (e2e data prepare) ----
    def corpus_columns(self, cfg: Config, meta: dict) -> dict:
        return corpus.COLUMNS

    def corpus_rows(self, cfg: Config) -> tuple[dict, dict]:
        mix: dict = {}
        corpora = read_corpora(cfg.data, mix)
        rows, meta = corpus.own_rows(corpora, cfg.data.limit)
        return rows, {**meta, "mix": mix}

    def corpus_fields(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return corpus.FIELDS, ("source", "target")

    def corpus_example(self, record: dict, cfg: Config, base: Path, meta: dict,
                       split: str) -> dict:
        return corpus.example(record)

    def collate(self, items: list[dict]) -> dict[str, torch.Tensor]:
        return {"src": pad([x["src"] for x in items]), "tgt": pad([x["tgt"] for x in items])}

    # ---- model and loss ----
    def build_model(self, cfg: Config, info: TextInfo) -> nn.Module:
        m: TextModelConfig = cfg.model
        if m.d_model % m.heads:
            raise E2EError(f"model.d_model={m.d_model} must be divisible by model.heads={m.heads}")
        longest = max(cfg.data.max_source_tokens, cfg.data.max_target_tokens)
        if m.max_len < longest:
            raise E2EError(f"model.max_len={m.max_len} is shorter than data.max_*_tokens={longest}")
        return Seq2SeqTransformer(info.vocab, m.d_model, m.heads, m.encoder_layers,
                                  m.decoder_layers, m.ff, m.dropout, m.max_len, m.copy)

    def loss(self, model: nn.Module, batch: dict, cfg: Config, info: TextInfo) -> torch.Tensor:
        return token_loss(model, batch, cfg.model.label_smoothing)

    # ---- evaluation ----
    def signature(self, cfg: Config) -> str:
        return metrics.score(["-"], ["-"])["signature"]  # sacrebleu's: the same for any text

    def evaluate(self, model: nn.Module, split: Split, cfg: Config, info: TextInfo
                 ) -> dict[str, float]:
        device = next(model.parameters()).device
        loss_sum, tokens = 0.0, 0
        for i in range(0, len(split), cfg.model.eval_batch):
            batch = self.collate([split[j] for j in range(i, min(i + cfg.model.eval_batch,
                                                                 len(split)))])
            n = int((batch["tgt"][:, 1:] != PAD_ID).sum())
            batch = {k: v.to(device) for k, v in batch.items()}
            loss_sum += float(token_loss(model, batch, 0.0)) * n
            tokens += n
        # Validation decodes a fixed sample, spread over the split (every corpus of a mix),
        # greedily; the test split is decoded in full.
        n = min(len(split), cfg.data.val_decode) if split.role == "val" else len(split)
        picks = [i * len(split) // n for i in range(n)]
        beam = 1 if split.role == "val" else cfg.model.beam
        refs, srcs = [split.targets[i] for i in picks], [split.sources[i] for i in picks]
        hyps = translate_ids(model, [split.src[i] for i in picks], srcs, beam, cfg, info)
        scores = metrics.score(hyps, refs)
        scores.pop("signature")  # the same for every split: the `signature` hook
        # Translations (software messages above all) must keep every %s, {0}, ... intact; a
        # summary leaves most of its source out, placeholders included.
        translates = not summarizes(cfg)
        for name, (a, b) in split.parts.items():  # only on the test split: picks == all
            part = metrics.score(hyps[a:b], refs[a:b])
            scores.update({f"bleu:{name}": part["bleu"], f"chrf:{name}": part["chrf"]})
            kept, total = placeholder_kept(srcs[a:b], hyps[a:b])
            if total and translates:
                scores[f"placeholders:{name}"] = 100 * kept / total
        kept, total = placeholder_kept(srcs, hyps)
        if total and translates:
            scores["placeholders"] = 100 * kept / total
        return {**scores, "loss": loss_sum / max(tokens, 1)}

    def report(self, model: nn.Module, split: Split, cfg: Config, info: TextInfo, run_dir: Path,
               metrics: dict[str, float]) -> str:
        (run_dir / "tokenizer.json").write_text(info.tokenizer)
        picks = random.Random(0).sample(range(len(split)), min(8, len(split)))
        hyps = translate_ids(model, [split.src[i] for i in picks],
                             [split.sources[i] for i in picks], cfg.model.beam, cfg, info)
        rows = ["## Test examples", "", f"BLEU signature: `{self.signature(cfg)}`", "",
                "| source | reference | output |", "| --- | --- | --- |"]
        for i, hyp in zip(picks, hyps):
            cells = [split.sources[i][:200], split.targets[i], hyp]
            rows.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ")
                                          for c in cells) + " |")
        if split.mix:
            from e2e.data.text_corpus import mix_table

            rows += ["", f"## Training mix (shares by n^{split.mix['alpha']:g}; "
                     f"{split.mix['mix_pairs']:,} pairs drawn; "
                     + (f"{split.mix['unseen']} held out whole: the unseen domain)"
                        if split.mix["unseen"] else "no corpus held out whole)"), "",
                     *mix_table(split.mix)]
        return "\n".join(rows)


def token_loss(model: nn.Module, batch: dict, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy of each next target token (teacher forcing)."""
    tgt = batch["tgt"]
    logits = model(batch["src"], tgt[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1).float(), tgt[:, 1:].flatten(),
                           ignore_index=PAD_ID, label_smoothing=smoothing)


def same_on_every_rank(tokenizer: str) -> None:
    """Under several processes each one learns the vocabulary from the same data; a rank
    whose vocabulary differed would train other token ids under the same weights, so
    compare checksums and stop on a difference."""
    import zlib

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
        return
    sums = [None] * dist.get_world_size()
    dist.all_gather_object(sums, zlib.crc32(tokenizer.encode()))
    if len(set(sums)) > 1:
        raise E2EError(f"the processes learned different vocabularies (checksums {sums}): "
                       "their training data differ; check that every process reads the same "
                       "files (data.source) and the same tokenizers version")


def read_corpora(d: TextDataConfig, mix: dict | None = None
                 ) -> list[tuple[str, list, list, list]]:
    """(name, train, val, test) of each corpus in `data.source` (several joined by "+");
    for the broad corpus, `mix` (if given) receives its mix summary."""
    from e2e.data.text_corpus import corpus_mix, is_corpus_source

    if is_corpus_source(d.source):  # broad, wesnoth, docs, ... (e2e.data.text_corpus)
        parts, summary = corpus_mix(d)
        if mix is not None:
            mix.update(summary)
        return parts
    names = d.source.split("+")
    if len(names) > 1 and all(s in SOURCES for s in names):
        return [(s, *read_pairs(dataclasses.replace(d, source=s))[:3]) for s in names]
    train, val, test, origin = read_pairs(d)
    return [(origin, train, val, test)]


def description_pairs(d: TextDataConfig) -> list[tuple[str, str]]:
    """Debian's Spanish package descriptions, for training only (none of the held-out
    packages); skipped with a note where apt's Spanish lists were never fetched."""
    from e2e.data.debian_descriptions import translated_pairs
    from e2e.errors import DatasetMissing

    try:
        pairs = translated_pairs("es")
    except DatasetMissing as e:
        print(f"text: training without Debian's Spanish descriptions: {e}")
        return []
    held = {*d.val_packages, *d.test_packages}
    return [(en, es) for package, en, es in pairs if package not in held]


def read_pairs(d: TextDataConfig) -> tuple[list, list, list, str]:
    """(train, val, test) lists of (source, target) strings, and where they came from."""
    from e2e.data.text_corpus import CORPORA, is_corpus_source

    if is_corpus_source(d.source) or ("+" in d.source
                                      and all(s in SOURCES for s in d.source.split("+"))):
        parts = read_corpora(d)
        return (*([pair for part in parts for pair in part[i]] for i in (1, 2, 3)), d.source)
    if d.source == "messages-en-es":
        from e2e.data.gettext_catalogs import read_messages, split_by_package

        dropped = Counter()
        messages = read_messages(counts=dropped)
        print(f"text: {len(messages):,} message pairs from the gettext catalogs; dropped: "
              + ", ".join(f"{n:,} {why}" for why, n in sorted(dropped.items())))
        train, val, test = split_by_package(messages, list(d.val_packages),
                                            list(d.test_packages))
        return ([(m.source, m.target) for m in train] + description_pairs(d),
                [(m.source, m.target) for m in val], [(m.source, m.target) for m in test],
                "messages-en-es")
    if d.source == "bible-en-es":
        from e2e.data.bible import read_bible, split_by_book

        parts = split_by_book(read_bible(), list(d.val_books), list(d.test_books))
        return (*([(v.source, v.target) for v in part] for part in parts), "bible-en-es")
    if d.source == "debian-descriptions":
        from e2e.data.debian_descriptions import read_descriptions, split_by_stem

        parts = split_by_stem(read_descriptions(), d.val_fraction, d.test_fraction)
        return (*([(x.long, x.summary) for x in part] for part in parts), "debian-descriptions")
    path = Path(d.source).expanduser()
    if not path.exists():
        raise E2EError(f"data.source '{d.source}' is neither a known corpus "
                       f"({', '.join(SOURCES)}, broad, {', '.join(CORPORA)}) nor an "
                       "existing TSV file")
    from e2e.data.splits import split_indices
    from e2e.data.tsv import read_pairs_tsv

    pairs = read_pairs_tsv(path)
    parts = split_indices(len(pairs), d.val_fraction, d.test_fraction, d.split_seed, "pairs",
                          str(path))
    train, val, test = ([pairs[i] for i in p] for p in parts)
    return train, val, test, str(path)
