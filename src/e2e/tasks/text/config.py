"""The text application's settings: the `data` and `model` sections of its config and its
training recipe. These defaults ARE the measured recipe (bench/text.py's translator: English ->
Spanish, the Bible and software messages in one model); named variants (the Bible alone, the
summarizer, compare's presets) are overlays in e2e/recipes/text/. Nothing here imports torch,
so `e2e config` answers at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from e2e.config import Config, TrainConfig
from e2e.data.text_corpus import CORPORA


@dataclass
class TextDataConfig:
    # bible-en-es | debian-descriptions | messages-en-es | PATH to a TSV file; corpora joined
    # by "+" (bible-en-es+messages-en-es) train on all of them and test on each's test split.
    # broad: every corpus of e2e.data.text_corpus (wesnoth, steel-sky, docs, bible, messages,
    # descriptions; the recipe `broad`), or some of them joined by "+" (wesnoth+docs).
    source: str = "bible-en-es+messages-en-es"
    # broad: corpus c gets the share n_c^mix_alpha / sum_k n_k^mix_alpha of the training mix
    # (1: as many as it has, 0: equal shares; 0.5 keeps the largest from drowning the others)
    mix_alpha: float = 0.5
    # broad: the corpus held out of training whole, tested as a domain never seen ("": none)
    unseen: str = "tuxpaint"
    # Bible: whole books held out (OSIS names), so no test verse is ever seen in training.
    val_books: tuple[str, ...] = ("Obad", "Hag", "Col", "Titus", "Phlm", "Jude")
    test_books: tuple[str, ...] = ("Ruth", "Jonah", "Mark", "Phil", "Jas")
    # messages-en-es (gettext catalogs): whole Debian packages held out.
    val_packages: tuple[str, ...] = ("make", "man-db")
    test_packages: tuple[str, ...] = ("wget", "tar", "sed", "grep", "findutils", "diffutils",
                                      "xz-utils", "psmisc", "adduser")
    val_fraction: float = 0.02  # debian-descriptions and TSV: held-out shares
    test_fraction: float = 0.03
    split_seed: int = 0  # TSV only: which lines are held out
    vocab_size: int = 8000  # joint source+target byte-level BPE
    # Placeholders (%s, %2$s, {0}, %(name)d) become reserved tokens <ph0>..<ph9> before BPE
    # and the source's own text again after decoding: cut into BPE pieces, they must be
    # spelled back by the model, which loses ~1 in 5. Takes effect when a vocabulary is
    # learned; a run keeps what its saved tokenizer has (old ones: no protection).
    protect_placeholders: bool = True
    # longer inputs are truncated (with a warning at predict): a few long verses are cut,
    # every message fits
    max_source_tokens: int = 96
    max_target_tokens: int = 96
    val_decode: int = 200  # validation decodes only this many pairs (greedy), to stay cheap
    limit: int = 0  # use only this many training pairs; 0 = all
    test_limit: int = 0  # evaluate on only the first N test pairs (quick checks); 0 = all

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "val_fraction": "(0, 1)", "test_fraction": "(0, 1)", "split_seed": "[0, inf)",
        "vocab_size": "[1, inf)", "max_source_tokens": "[1, inf)",
        "max_target_tokens": "[1, inf)", "val_decode": "[0, inf)", "limit": "[0, inf)",
        "test_limit": "[0, inf)", "mix_alpha": "[0, inf)"}
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"unseen": ("", *CORPORA)}


@dataclass
class TextModelConfig:
    d_model: int = 192
    heads: int = 4
    encoder_layers: int = 3
    decoder_layers: int = 3
    ff: int = 768
    dropout: float = 0.1
    # Pointer-generator copy head (e2e.tasks.text.model.CopyHead): the decoder can copy
    # source tokens (names, numbers, placeholders, a description's own words) instead of
    # generating them.
    copy: bool = True
    label_smoothing: float = 0.1
    max_len: int = 256  # positions; bounds the decoded length too
    beam: int = 4  # test-time beam width; 1 = greedy
    length_penalty: float = 0.6  # GNMT alpha; 0 = none
    eval_batch: int = 64

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "d_model": "[1, inf)", "heads": "[1, inf)", "encoder_layers": "[1, inf)",
        "decoder_layers": "[1, inf)", "ff": "[1, inf)", "dropout": "[0, 1)",
        "label_smoothing": "[0, 1)", "max_len": "[1, inf)", "beam": "[1, inf)",
        "length_penalty": "[0, inf)", "eval_batch": "[1, inf)"}


@dataclass
class TextTrain(TrainConfig):
    """The training recipe: AdamW on a cosine schedule, sized for one CPU core (bench/text.py
    gives it a time budget)."""

    epochs: int = 20
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    schedule: str = "cosine"
    warmup: float = 0.05
    clip_grad: float = 1.0
    monitor: str = "val/bleu"
    log_every: int = 100


def default_config(task: str = "text") -> Config:
    """The whole default config (a stepwise variant of the application passes its own name)."""
    return Config(task=task, train=TextTrain(), data=TextDataConfig(), model=TextModelConfig())
