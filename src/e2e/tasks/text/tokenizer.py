"""Byte-level BPE learned from the raw training text, with Hugging Face `tokenizers`.

Byte-level means every string round-trips exactly (no unknown tokens, no per-language
rules); source and target share one vocabulary, so the embeddings can be shared too.
The tokenizer is serialized to a JSON string that travels inside the run's checkpoints.

Placeholder protection (`data.protect_placeholders`), as production MT systems do it: BPE
cuts `%2$s` or `%(count)d` into pieces the model would have to learn to spell back, and it
often does not. So before tokenizing, each placeholder becomes a sentinel, one reserved token
(`<ph0>`..`<ph9>`, numbered by first appearance in the source; a target's placeholder takes
the sentinel of the same one in its source); after decoding, each sentinel becomes its
source's placeholder again. `encode` and `decode` do both whenever the vocabulary has the
sentinels, so training, evaluation, `e2e translate`, the API and the exported graphs all
share it; a tokenizer saved before sentinels existed has none and protects nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from e2e.data.gettext_catalogs import SCAN, find_placeholders

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SENTINELS = tuple(f"<ph{i}>" for i in range(10))  # ids 3..12; further placeholders stay text
SENTINEL = re.compile(r"<ph\d>")
SENTINEL_IDS = tuple(range(3, 3 + len(SENTINELS)))  # right after the three above


def protect(text: str, source: str | None = None) -> str:
    """`text` with each placeholder of `source` (default: `text` itself) as its sentinel.

    A target's placeholder that its source lacks stays text (it cannot be restored from the
    source); `%%` is a literal percent sign and stays as it is.
    """
    names = dict(zip(dict.fromkeys(find_placeholders(text if source is None else source)),
                     SENTINELS))
    return SCAN.sub(lambda m: names.get(m[0], m[0]), text)


def restore(text: str, source: str) -> str:
    """`text` with each sentinel replaced by the placeholder of `source` that it stands for.

    A sentinel the source has no placeholder for is dropped, with the space before it: it is
    the model's mistake, and any placeholder put in its place would be an invented one.
    """
    names = dict(zip(SENTINELS, dict.fromkeys(find_placeholders(source))))
    return re.sub(r"( ?)(<ph\d>)", lambda m: m[1] + names[m[2]] if m[2] in names else "", text)


def protects(tok: Tokenizer) -> bool:
    """Whether `tok` has the sentinels: tokenizers saved before them (or trained with
    data.protect_placeholders=false) have none, and their texts pass unchanged."""
    return tok.token_to_id(SENTINELS[0]) is not None


def prefixed(text: str) -> str:
    # One leading space for the whole text, so its first word is tokenized like any other.
    # ByteLevel(add_prefix_space=True) would add one to every piece between sentinels
    # ("'<ph0>':" would come back as "'<ph0> ':"); on old tokenizers that have it, a text that
    # already starts with a space (or is empty) gets none, so their ids are unchanged.
    return text if not text or text.startswith(" ") else " " + text


def train_bpe(texts: Iterable[str], vocab_size: int, sentinels: bool = True) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size,
                                  special_tokens=[PAD, BOS, EOS, *(SENTINELS if sentinels else ())],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)

    def pieces() -> Iterator[str]:
        # What encoding will see: the text between sentinels (the trainer would otherwise
        # spend merges on "<ph" from the sentinels' own spelling).
        for text in texts:
            yield from SENTINEL.split(prefixed(protect(text) if sentinels else text))

    tok.train_from_iterator(pieces(), trainer=trainer)
    return tok


def load_bpe(serialized: str) -> Tokenizer:
    return Tokenizer.from_str(serialized)


def encode(tok: Tokenizer, texts: list[str], sources: list[str] | None = None
           ) -> list[list[int]]:
    """Ids of `texts`, placeholders protected; a target passes its `sources` (numbering)."""
    if protects(tok):
        texts = [protect(t, s) for t, s in zip(texts, sources or texts)]
    return [e.ids for e in tok.encode_batch([prefixed(t) for t in texts])]


def decode(tok: Tokenizer, ids: list[list[int]], sources: list[str] | None = None
           ) -> list[str]:
    """Texts of `ids`, sentinels restored from `sources` (without them: dropped)."""
    # <pad>, <s>, </s> are left out here rather than by skip_special_tokens, which would
    # drop the sentinels (special tokens too, so that BPE never merges them) as well.
    rows = [[i for i in row if i not in (PAD_ID, BOS_ID, EOS_ID)] for row in ids]
    texts = tok.decode_batch(rows, skip_special_tokens=False)
    if protects(tok):
        texts = [restore(t, s) for t, s in zip(texts, sources or [""] * len(texts))]
    # ByteLevel decodes the leading space too; strip() undoes exactly that.
    return [t.strip() for t in texts]
