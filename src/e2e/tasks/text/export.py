"""The text model as exportable graphs, and the exported graphs assembled for decoding.

    encoder       src (B x S ids, <pad>-padded)                     -> memory (B x S x D)
    decoder_step  tokens (B x T prefix), memory, src (B x S ids)    -> logits (B x V)
    memory_kv     memory                 -> cross_k, cross_v (L x B x H x S x D/H)[, copy_keys]
    decoder_cached  token (B x 1), position (1,), self_k, self_v (L x B x H x T x D/H),
                  cross_k, cross_v, src[, memory, copy_keys (with model.copy)]
                                         -> logits (B x V), self_k, self_v (T + 1 positions)

`decoder_cached` is the key/value cache of PyTorch's own decoding, exported: each call reads
one new token and the prefix's keys/values, and returns them grown by one position, so
greedy and beam search on the exported graphs are linear in the output length, as in
PyTorch. The first step passes T = 0 (empty keys/values). `decoder_step`, the cache-free
step, stays as a check and for callers that want a single stateless graph.

`decoder_step` re-reads the whole target prefix and re-projects the encoder output at each
call, exactly `e2e.tasks.text.decode.prefix_logits` (PyTorch's own uncached step). Both
steps take the source ids rather than a mask: the padding mask is computed from them, and
a model with a copy head (model.copy) copies from them. Batch, source and prefix lengths
are all dynamic. The search loops stay in Python (`e2e.tasks.text.decode`), shared by
every backend.
"""

from __future__ import annotations

import torch
from torch import nn

from e2e.tasks.base import ExportSpec
from e2e.tasks.text.decode import prefix_logits
from e2e.tasks.text.info import TextInfo
from e2e.tasks.text.model import DecoderState, Seq2SeqTransformer
from e2e.tasks.text.tokenizer import EOS_ID, PAD_ID

FIRST_ID = EOS_ID + 1  # random inputs draw ordinary tokens, after <pad>, <s>, </s>


class EncoderGraph(nn.Module):
    def __init__(self, model: Seq2SeqTransformer):
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor) -> torch.Tensor:
        return self.model.encode(src).memory


class MemoryGraph(nn.Module):
    """The encoder output projected for every decoder layer's cross-attention (and copying)."""

    def __init__(self, model: Seq2SeqTransformer):
        super().__init__()
        self.model = model

    def forward(self, memory: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = self.model.project_memory(DecoderState(memory, memory[:, None, None, :, 0], []))
        k = torch.stack([k for k, _ in state.memory_kv])
        v = torch.stack([v for _, v in state.memory_kv])
        return (k, v) if state.copy_keys is None else (k, v, state.copy_keys)


class CachedStepGraph(nn.Module):
    """One new token, given the prefix's self-attention keys/values; returns them grown."""

    def __init__(self, model: Seq2SeqTransformer):
        super().__init__()
        self.model = model

    def forward(self, token: torch.Tensor, position: torch.Tensor, self_k: torch.Tensor,
                self_v: torch.Tensor, cross_k: torch.Tensor, cross_v: torch.Tensor,
                src: torch.Tensor, memory: torch.Tensor | None = None,
                copy_keys: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        layers = range(len(self.model.decoder))
        # Only the copy head reads the memory itself; without it the graph has no such input.
        state = DecoderState(memory, (src != PAD_ID)[:, None, None, :],
                             [(cross_k[i], cross_v[i]) for i in layers],
                             [{"k": self_k[i], "v": self_v[i]} for i in layers],
                             position, src, copy_keys)
        logits = self.model.decode(token, state, cache=True)[:, -1]
        return (logits, torch.stack([c["k"] for c in state.self_kv]),
                torch.stack([c["v"] for c in state.self_kv]))


def cached_state(model: Seq2SeqTransformer, src: torch.Tensor, prefix: torch.Tensor
                 ) -> DecoderState:
    """PyTorch's own cached state after decoding `prefix` (B x T, T >= 0) for `src`."""
    with torch.no_grad():
        state = model.encode(src)
        state.self_kv = [{} for _ in model.decoder]
        for t in range(prefix.shape[1]):
            model.decode(prefix[:, t:t + 1], state, cache=True)
    return state


def cached_inputs(model: Seq2SeqTransformer, src: torch.Tensor, prefix: torch.Tensor,
                  token: torch.Tensor) -> dict[str, torch.Tensor]:
    """The decoder_cached graph's inputs for the step after `prefix` (what decoding feeds)."""
    state = cached_state(model, src, prefix)
    layer = model.decoder[0].self_attn
    b, heads, width = len(src), layer.heads, state.memory.shape[-1] // layer.heads
    empty = state.memory.new_zeros(len(model.decoder), b, heads, 0, width)
    self_k = torch.stack([c["k"] for c in state.self_kv]) if prefix.shape[1] else empty
    self_v = torch.stack([c["v"] for c in state.self_kv]) if prefix.shape[1] else empty
    inputs = {"token": token, "position": torch.tensor([prefix.shape[1]]),
              "self_k": self_k, "self_v": self_v,
              "cross_k": torch.stack([k for k, _ in state.memory_kv]),
              "cross_v": torch.stack([v for _, v in state.memory_kv]),
              "src": src}
    if state.copy_keys is not None:
        inputs.update(memory=state.memory, copy_keys=state.copy_keys)
    return inputs


class DecoderStepGraph(nn.Module):
    def __init__(self, model: Seq2SeqTransformer):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor,
                src: torch.Tensor) -> torch.Tensor:
        state = DecoderState(memory, (src != PAD_ID)[:, None, None, :], [], src=src)
        return prefix_logits(self.model, tokens, state)


def random_ids(g: torch.Generator, vocab: int, lengths: list[int], first: int = FIRST_ID
               ) -> torch.Tensor:
    """Rows of random ids, <pad>-padded to the longest (every row keeps >= 1 real token)."""
    ids = torch.randint(first, vocab, (len(lengths), max(lengths)), generator=g)
    for row, n in zip(ids, lengths):
        row[n:] = PAD_ID
    return ids


def export_specs(model: Seq2SeqTransformer, info: TextInfo) -> dict:

    vocab = info.vocab
    encoder, step = EncoderGraph(model).eval(), DecoderStepGraph(model).eval()

    def step_inputs(src: torch.Tensor, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():  # the memory PyTorch's encoder gives: what decoding feeds in
            memory = encoder(src)
        return {"tokens": tokens, "memory": memory, "src": src}

    def random_step(g: torch.Generator) -> dict[str, torch.Tensor]:
        src = random_ids(g, vocab, [9, 4, 7])
        return step_inputs(src, random_ids(g, vocab, [5, 2, 4]))  # <pad> after a finished row

    def real_step(batch: dict) -> dict[str, torch.Tensor]:
        return step_inputs(batch["src"], batch["tgt"][:, :-1])  # teacher-forced prefixes

    example_src = random_ids(torch.Generator().manual_seed(0), vocab, [6, 3])
    example = step_inputs(example_src, torch.full((2, 3), FIRST_ID))
    return {
        "encoder": ExportSpec(
            encoder, {"src": example_src}, ["memory"],
            {"src": {0: "batch", 1: "source"}, "memory": {0: "batch", 1: "source"}},
            random=lambda g: {"src": random_ids(g, vocab, [11, 2, 6])},
            from_batch=lambda batch: {"src": batch["src"]}),
        "decoder_step": ExportSpec(
            step, example, ["logits"],
            {"tokens": {0: "batch", 1: "prefix"}, "memory": {0: "batch", 1: "source"},
             "src": {0: "batch", 1: "source"}, "logits": {0: "batch"}},
            random=random_step, from_batch=real_step),
        **cached_specs(model, vocab),
    }


def cached_specs(model: Seq2SeqTransformer, vocab: int) -> dict:
    """The graphs of cached decoding: memory_kv once per input, decoder_cached per token."""
    memory_graph, cached = MemoryGraph(model).eval(), CachedStepGraph(model).eval()
    copy = model.copy is not None

    def memory_inputs(src: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return {"memory": model.encode(src).memory}

    def random_cached(g: torch.Generator) -> dict[str, torch.Tensor]:
        src, length = random_ids(g, vocab, [9, 4, 7]), int(torch.randint(0, 4, (1,), generator=g))
        prefix = torch.randint(FIRST_ID, vocab, (3, length), generator=g)
        return cached_inputs(model, src, prefix, random_ids(g, vocab, [1, 1, 1]))

    def real_cached(batch: dict) -> dict[str, torch.Tensor]:  # the step after a true prefix
        tgt = batch["tgt"]
        return cached_inputs(model, batch["src"], tgt[:, :-2], tgt[:, -2:-1])

    example_src = random_ids(torch.Generator().manual_seed(0), vocab, [6, 3])
    example = cached_inputs(model, example_src, torch.full((2, 2), FIRST_ID),
                            torch.full((2, 1), FIRST_ID))
    layers = {1: "batch", 3: "source"}
    rows = {0: "batch", 1: "source"}
    return {
        "memory_kv": ExportSpec(
            memory_graph, memory_inputs(example_src),
            ["cross_k", "cross_v", *(["copy_keys"] if copy else [])],
            {"memory": rows, "cross_k": layers, "cross_v": layers,
             **({"copy_keys": rows} if copy else {})},
            random=lambda g: memory_inputs(random_ids(g, vocab, [8, 3])),
            from_batch=lambda batch: memory_inputs(batch["src"])),
        "decoder_cached": ExportSpec(
            cached, example, ["logits", "next_k", "next_v"],
            {"token": {0: "batch"}, "self_k": {1: "batch", 3: "prefix"},
             "self_v": {1: "batch", 3: "prefix"}, "cross_k": layers, "cross_v": layers,
             "src": rows, **({"memory": rows, "copy_keys": rows} if copy else {}),
             "logits": {0: "batch"}, "next_k": {1: "batch", 3: "next"},
             "next_v": {1: "batch", 3: "next"}},
            random=random_cached, from_batch=real_cached),
    }


class ExportedSeq2Seq(nn.Module):
    """The exported graphs behind what `e2e.tasks.text.decode` needs from a model.

    With `memory_kv` and `decoder_cached` (exports since the cache was added) decoding keeps
    a key/value cache, as in PyTorch; without them every step re-reads the prefix.
    """

    def __init__(self, encoder: nn.Module, decoder_step: nn.Module, max_len: int,
                 memory_kv: nn.Module | None = None, decoder_cached: nn.Module | None = None):
        super().__init__()
        self.encoder, self.decoder_step, self.max_len = encoder, decoder_step, max_len
        self.memory_kv, self.decoder_cached = memory_kv, decoder_cached
        self.cached = memory_kv is not None and decoder_cached is not None

    def encode(self, src: torch.Tensor) -> DecoderState:
        state = DecoderState(self.encoder(src), (src != PAD_ID)[:, None, None, :], [], src=src)
        if self.cached:
            out = self.memory_kv(state.memory)
            state.memory_kv = list(zip(out[0], out[1]))  # per layer: B x H x S x D/H
            state.copy_keys = out[2] if len(out) > 2 else None
        return state

    def prefix_logits(self, tokens: torch.Tensor, state: DecoderState) -> torch.Tensor:
        return self.decoder_step(tokens, state.memory, state.src)

    def cached_logits(self, token: torch.Tensor, state: DecoderState) -> torch.Tensor:
        """Logits of the token after `token` (B x 1); grows the state's keys/values."""
        if state.self_kv:
            self_k = torch.stack([c["k"] for c in state.self_kv])
            self_v = torch.stack([c["v"] for c in state.self_kv])
        else:  # the first step: no prefix yet
            k = state.memory_kv[0][0]
            self_k = self_v = k.new_zeros(len(state.memory_kv), *k.shape[:2], 0, k.shape[3])
        inputs = [token, torch.tensor([state.step]), self_k, self_v,
                  torch.stack([k for k, _ in state.memory_kv]),
                  torch.stack([v for _, v in state.memory_kv]), state.src]
        if state.copy_keys is not None:
            inputs += [state.memory, state.copy_keys]
        logits, self_k, self_v = self.decoder_cached(*inputs)
        state.self_kv = [{"k": k, "v": v} for k, v in zip(self_k, self_v)]
        state.step += 1
        return logits
