"""Byte-level BPE learned from the raw training text, with Hugging Face `tokenizers`.

Byte-level means every string round-trips exactly (no unknown tokens, no per-language
rules); source and target share one vocabulary, so the embeddings can be shared too.
The tokenizer is serialized to a JSON string that travels inside the run's checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, BOS, EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def load_bpe(serialized: str) -> Tokenizer:
    return Tokenizer.from_str(serialized)


def encode(tok: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(texts)]


def decode(tok: Tokenizer, ids: list[list[int]]) -> list[str]:
    # ByteLevel adds a leading space to the first word; strip() undoes exactly that.
    return [s.strip() for s in tok.decode_batch(ids, skip_special_tokens=True)]
