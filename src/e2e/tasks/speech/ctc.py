"""CTC over characters: the loss (fp32, with a length guard), greedy and beam-search decoding.

Index 0 is the blank; index i > 0 is `vocab[i - 1]`.

The length guard: CTC needs at least one output frame per target character, plus one
blank between repeated characters ("ll" in "hello"). An utterance whose transcript cannot
fit its frames has infinite loss; it is counted and left out of the batch instead of
reaching the optimizer as NaN weights.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F


def encode(text: str, vocab: str) -> list[int]:
    return [vocab.index(c) + 1 for c in text]


def frames_needed(targets: torch.Tensor, target_lengths: torch.Tensor) -> torch.Tensor:
    """Per utterance: characters + repeated neighbours (padded N x L targets)."""
    same = (targets[:, 1:] == targets[:, :-1]) & (targets[:, 1:] > 0)
    return target_lengths + same.sum(1)


def ctc_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             target_lengths: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean per-character CTC loss in fp32 over the utterances that fit; (loss, number skipped)."""
    fits = lengths >= frames_needed(targets, target_lengths)
    skipped = int((~fits).sum())
    if not fits.any():  # keep the graph so backward works; the step changes nothing
        return logits.float().sum() * 0.0, skipped
    with torch.autocast(logits.device.type, enabled=False):
        logp = logits[fits].float().log_softmax(-1).transpose(0, 1)
        loss = F.ctc_loss(logp, targets[fits], lengths[fits], target_lengths[fits], blank=0,
                          reduction="mean", zero_infinity=True)
    return loss, skipped


def greedy(logits: torch.Tensor, lengths: torch.Tensor, vocab: str) -> list[str]:
    """Best class per frame, repeats merged, blanks dropped."""
    best = logits.argmax(-1).cpu()
    out = []
    for row, n in zip(best, lengths.tolist()):
        ids = torch.unique_consecutive(row[:n])
        out.append(" ".join("".join(vocab[i - 1] for i in ids.tolist() if i > 0).split()))
    return out


class Lexicon:
    """A word list: which strings are words, and which are prefixes of words."""

    def __init__(self, words: list[str]):
        self.words = set(words)
        self.prefixes = {w[:i] for w in self.words for i in range(len(w) + 1)}


class BigramLM:
    """A word bigram language model learned from training transcripts only: interpolated
    (bigram with 0.7 weight, add-one unigram with 0.3), sentence start `<s>`, end `</s>`.

    A stepwise component: the end-to-end claim is judged on the network's own decoding;
    this is the separate language-model stage it is compared with."""

    def __init__(self, counts: dict[str, dict[str, int]]):
        self.uni = counts["unigrams"]
        self.bi = counts["bigrams"]
        self.total = sum(self.uni.values())
        self.after: dict[str, int] = defaultdict(int)
        for pair, c in self.bi.items():
            self.after[pair.split(" ", 1)[0]] += c

    @staticmethod
    def count(texts: list[str]) -> dict[str, dict[str, int]]:
        """The counts `BigramLM` is built from (a plain dict: it is saved in checkpoints)."""
        uni: dict[str, int] = defaultdict(int)
        bi: dict[str, int] = defaultdict(int)
        for t in texts:
            words = ["<s>", *t.split(), "</s>"]
            for a, b in zip(words, words[1:]):
                uni[b] += 1
                bi[f"{a} {b}"] += 1
        return {"unigrams": dict(uni), "bigrams": dict(bi)}

    def logp(self, prev: str, word: str) -> float:
        p_uni = (self.uni.get(word, 0) + 1) / (self.total + len(self.uni) + 1)
        n = self.after.get(prev, 0)
        p_bi = self.bi.get(f"{prev} {word}", 0) / n if n else 0.0
        return math.log(0.7 * p_bi + 0.3 * p_uni)

    def score(self, text: str, final: bool) -> float:
        """Log-probability of the completed words of `text` (and of its end when final)."""
        words = text.split()
        if not final and not text.endswith(" "):
            words = words[:-1]  # the last word is still being spelled
        words = ["<s>", *words] + (["</s>"] if final else [])
        return sum(self.logp(a, b) for a, b in zip(words, words[1:]))


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search(logp: torch.Tensor, vocab: str, beam: int = 8,
                lexicon: Lexicon | None = None, prune: float = -8.0,
                lm: BigramLM | None = None, lm_weight: float = 0.5,
                word_bonus: float = 1.0) -> str:
    """CTC prefix beam search over one utterance's T x V log-probabilities.

    With a lexicon, a prefix may only grow into words of the list: a letter must continue
    some word, a space must close one, and the final word must be complete. With a language
    model, beams are ranked by acoustic + lm_weight x LM log-probability of their completed
    words + word_bonus per word (shallow fusion).
    """
    lm_cache: dict[str, float] = {}

    def rank(prefix: str, p: tuple[float, float], final: bool = False) -> float:
        score = _logsumexp(*p)
        if lm is None:
            return score
        key = prefix + ("\n" if final else "")
        if key not in lm_cache:
            lm_cache[key] = lm_weight * lm.score(prefix, final) + word_bonus * len(
                prefix.split() if final or prefix.endswith(" ") else prefix.split()[:-1])
        return score + lm_cache[key]

    space = vocab.index(" ") + 1
    lp = logp.float().cpu().numpy()
    # prefix -> (log P ending in blank, log P ending in a character)
    beams: dict[str, tuple[float, float]] = {"": (0.0, -math.inf)}
    for t in range(lp.shape[0]):
        frame = lp[t]
        candidates = [c for c in range(1, lp.shape[1]) if frame[c] > prune]
        nxt: dict[str, list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pc) in beams.items():
            total = _logsumexp(pb, pc)
            entry = nxt[prefix]  # stay: blank, or repeat the last character
            entry[0] = _logsumexp(entry[0], total + frame[0])
            last = prefix[-1] if prefix else None
            for c in candidates:
                ch = vocab[c - 1]
                if ch == last:
                    entry[1] = _logsumexp(entry[1], pc + frame[c])  # repeat merges
                if c == space and (not prefix or last == " "):
                    continue  # no leading or double spaces
                if lexicon is not None and not _allowed(prefix, ch, lexicon):
                    continue
                new = nxt[prefix + ch]
                # A repeated character needs a blank in between: only the blank-ending path.
                new[1] = _logsumexp(new[1], (pb if ch == last else total) + frame[c])
        beams = dict(sorted(((p, (v[0], v[1])) for p, v in nxt.items()),
                            key=lambda kv: -rank(*kv))[:beam])
    ranked = sorted(beams.items(), key=lambda kv: -rank(kv[0].strip(), kv[1], final=True))
    if lexicon is not None:
        complete = [p for p, _ in ranked if p.strip().split(" ")[-1] in lexicon.words or
                    not p.strip()]
        if complete:
            return complete[0].strip()
    return ranked[0][0].strip()


def _allowed(prefix: str, ch: str, lexicon: Lexicon) -> bool:
    word = prefix.rsplit(" ", 1)[-1]
    if ch == " ":
        return word in lexicon.words
    return word + ch in lexicon.prefixes
