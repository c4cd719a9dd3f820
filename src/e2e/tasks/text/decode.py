"""Batched greedy and beam-search decoding, with or without the key/value cache.

Both decode a whole batch at once and stop when every sequence has produced </s>.
Without the cache every step re-runs the decoder over the full prefix (and re-projects
the encoder's keys/values): the same numbers, quadratic work. That uncached step is
`prefix_logits`, one of the graphs that `e2e export` writes; an exported model (see
`e2e.tasks.text.export.ExportedSeq2Seq`) decodes through these same functions, one
onnxruntime call per step, with its exported key/value cache. Beam search keeps the
raw log-probability to rank live hypotheses and picks the final one with the GNMT
length penalty ((5 + length) / 6) ** alpha, so beam 1 is exactly greedy.

With `sentinels` (a tokenizer that protects placeholders, see e2e.tasks.text.tokenizer) both
decoders are constrained: each placeholder sentinel of the source comes out exactly as
often as the source has it, and no other. The network still chooses where it goes; the
decoder only forbids the two mistakes a translation of a format string cannot survive,
an invented placeholder and a lost one (</s> waits until every sentinel is out).
"""

from __future__ import annotations

import torch

from e2e.tasks.text.model import DecoderState, Seq2SeqTransformer
from e2e.tasks.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, SENTINEL_IDS


def decode_limit(model: Seq2SeqTransformer, src: torch.Tensor, max_len: int | None) -> int:
    """Target tokens to allow: about 1.5x the longest source, within the model's positions."""
    longest = int((src != PAD_ID).sum(1).max())
    limit = max_len or int(1.5 * longest) + 10
    return min(limit, model.max_len - 1)


def prefix_logits(model: Seq2SeqTransformer, tokens: torch.Tensor,
                  state: DecoderState) -> torch.Tensor:
    """Next-token logits, B x V, recomputed from the whole prefix and the encoder output."""
    return model.decode(tokens, model.project_memory(state))[:, -1]


def exported(model) -> bool:
    """An exported model (e2e.tasks.text.export.ExportedSeq2Seq): one step graph, no cache."""
    return hasattr(model, "prefix_logits")


def _step(model: Seq2SeqTransformer, tokens: torch.Tensor, state: DecoderState,
          cache: bool) -> torch.Tensor:
    """Log-probabilities of the next token, B x V (<pad> and <s> excluded)."""
    if exported(model):
        logits = model.cached_logits(tokens[:, -1:], state) if cache else \
            model.prefix_logits(tokens, state)
    elif cache:
        logits = model.decode(tokens[:, -1:], state, cache=True)[:, -1]
    else:
        logits = prefix_logits(model, tokens, state)
    logp = logits.float().log_softmax(-1)
    # Never a target token: a padded or restarted hypothesis would be scored as a real one.
    logp[:, [PAD_ID, BOS_ID]] = float("-inf")
    return logp


class SentinelConstraint:
    """Per hypothesis: how often each sentinel is still owed; masks the next token's scores."""

    def __init__(self, src: torch.Tensor):
        self.ids = torch.tensor(SENTINEL_IDS, device=src.device)
        self.owed = (src[:, :, None] == self.ids).sum(1)  # rows x sentinels

    def apply(self, logp: torch.Tensor) -> torch.Tensor:
        """`logp` with sentinels no longer owed, and </s> while any is, set to -inf."""
        logp[:, self.ids] = logp[:, self.ids].masked_fill(self.owed <= 0, float("-inf"))
        logp[:, EOS_ID] = logp[:, EOS_ID].masked_fill((self.owed > 0).any(1), float("-inf"))
        return logp

    def advance(self, nxt: torch.Tensor, origin: torch.Tensor | None = None) -> None:
        """Record the tokens chosen (`origin`: the beam rows they extend)."""
        if origin is not None:
            self.owed = self.owed[origin]
        self.owed = self.owed - (nxt[:, None] == self.ids).long()


def strip(tokens: torch.Tensor) -> list[list[int]]:
    """Rows of ids after <s>, up to (not including) </s>."""
    out = []
    for row in tokens[:, 1:].tolist():
        out.append(row[:row.index(EOS_ID)] if EOS_ID in row else row)
    return [[t for t in row if t != PAD_ID] for row in out]


@torch.no_grad()
def greedy(model: Seq2SeqTransformer, src: torch.Tensor, max_len: int | None = None,
           cache: bool = True, sentinels: bool = False) -> list[list[int]]:
    state = model.encode(src)
    constraint = SentinelConstraint(src) if sentinels else None
    tokens = torch.full((len(src), 1), BOS_ID, dtype=torch.long, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    for _ in range(decode_limit(model, src, max_len)):
        logp = _step(model, tokens, state, cache)
        nxt = (constraint.apply(logp) if constraint else logp).argmax(-1)
        nxt = torch.where(done, PAD_ID, nxt)
        if constraint:
            constraint.advance(nxt)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        done |= nxt == EOS_ID
        if done.all():
            break
    return strip(tokens)


@torch.no_grad()
def beam_search(model: Seq2SeqTransformer, src: torch.Tensor, beam: int = 4,
                length_penalty: float = 0.6, max_len: int | None = None,
                cache: bool = True, sentinels: bool = False) -> list[list[int]]:
    b, k, device = len(src), beam, src.device
    state = model.encode(src).select(torch.arange(b, device=device).repeat_interleave(k))
    constraint = SentinelConstraint(src.repeat_interleave(k, 0)) if sentinels else None
    tokens = torch.full((b * k, 1), BOS_ID, dtype=torch.long, device=device)
    # Only the first of the k identical start beams is live, so the first step's k picks differ.
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(b * k, device=device)
    for _ in range(decode_limit(model, src, max_len)):
        logp = _step(model, tokens, state, cache)
        if constraint:
            logp = constraint.apply(logp)
        # A finished hypothesis can only be extended by <pad>, at no cost.
        logp[done] = float("-inf")
        logp[done, PAD_ID] = 0.0
        vocab = logp.shape[-1]
        top = (scores.view(-1, 1) + logp).view(b, k * vocab).topk(k, dim=-1)
        origin = (top.indices // vocab + torch.arange(b, device=device)[:, None] * k).view(-1)
        nxt = (top.indices % vocab).view(-1)
        scores = top.values
        tokens = torch.cat([tokens[origin], nxt[:, None]], 1)
        lengths = lengths[origin] + (~done[origin]).float()
        done = done[origin] | (nxt == EOS_ID)
        if constraint:
            constraint.advance(nxt, origin)
        if cache:
            state = state.select(origin)
        if done.all():
            break
    penalty = ((5 + lengths) / 6) ** length_penalty
    best = (scores.view(-1) / penalty).view(b, k).argmax(-1)
    return strip(tokens[best + torch.arange(b, device=device) * k])


def generate(model: Seq2SeqTransformer, src: torch.Tensor, beam: int = 1,
             length_penalty: float = 0.6, max_len: int | None = None,
             cache: bool = True, sentinels: bool = False) -> list[list[int]]:
    """Token ids after <s> per source row; `sentinels`: constrain the placeholder sentinels
    (only for a tokenizer that has them: elsewhere ids 3-12 are ordinary tokens)."""
    # Exports made before the cached step existed re-read the whole prefix at every step.
    cache = cache and (not exported(model) or model.cached)
    if beam <= 1:
        return greedy(model, src, max_len, cache, sentinels)
    return beam_search(model, src, beam, length_penalty, max_len, cache, sentinels)
