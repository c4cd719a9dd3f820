"""A pre-norm encoder-decoder Transformer with one embedding table for source, target and output.

Pre-norm (LayerNorm before each sublayer) trains stably without a careful warm-up; sharing
the embedding between encoder input, decoder input and the output layer (the vocabulary
is one joint BPE) cuts a third of the parameters of a small model. Decoding keeps a
key/value cache: the encoder output's keys/values are projected once per layer, and the
decoder's self-attention keys/values grow by one position per step instead of being
recomputed for the whole prefix.

With `copy=True` the decoder is a pointer-generator (See et al., 2017): a copy attention
over the encoder output gives a distribution over source positions, a gate p_gen mixes
the vocabulary distribution with it (each position's weight added to its source token's
id), and the model returns log-probabilities instead of logits. A summary reuses the
description's words and a translation reuses names and numbers; without copying the
decoder must learn each of them as a vocabulary item. Log-probabilities pass through
`log_softmax` unchanged, so the loss and the searches treat both outputs alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from e2e.tasks.text.tokenizer import PAD_ID


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def split(self, x: torch.Tensor) -> torch.Tensor:  # B x T x D -> B x H x T x D/H
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, dim=-1)
        return self.split(k), self.split(v)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        y = F.scaled_dot_product_attention(self.split(self.q(x)), k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=causal)
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, -1))


def feed_forward(d_model: int, ff: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_model, ff), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(ff, d_model))


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = Attention(d_model, heads, dropout)
        self.ff = feed_forward(d_model, ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, *self.attn.keys_values(h), mask))
        return x + self.drop(self.ff(self.norm2(x)))


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = Attention(d_model, heads, dropout)
        self.cross_attn = Attention(d_model, heads, dropout)
        self.ff = feed_forward(d_model, ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, y: torch.Tensor, memory_kv: tuple[torch.Tensor, torch.Tensor],
                src_mask: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        h = self.norm1(y)
        k, v = self.self_attn.keys_values(h)
        if cache is not None:  # incremental: this step's keys/values join the cached prefix
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        # A single new position may attend to the whole cached prefix: no mask needed then.
        # (Not `and length > 1`: causal is the same for one position, and a plain bool keeps
        # the layer exportable to ONNX with a dynamic prefix length.)
        y = y + self.drop(self.self_attn(h, k, v, causal=cache is None))
        y = y + self.drop(self.cross_attn(self.norm2(y), *memory_kv, src_mask))
        return y + self.drop(self.ff(self.norm3(y)))


class CopyHead(nn.Module):
    """Pointer-generator output: p_gen * softmax(logits) + (1 - p_gen) * copy attention."""

    def __init__(self, d_model: int):
        super().__init__()
        self.scale = d_model ** -0.5
        self.q, self.k = nn.Linear(d_model, d_model), nn.Linear(d_model, d_model)
        self.gate = nn.Linear(2 * d_model, 1)

    def forward(self, h: torch.Tensor, logits: torch.Tensor, memory: torch.Tensor,
                keys: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        """h: B x T x D decoder output; keys: B x S x D; src: B x S ids -> B x T x V log-probs."""
        scores = (self.q(h) @ keys.transpose(1, 2)).float() * self.scale
        attn = scores.masked_fill((src == PAD_ID)[:, None, :], float("-inf")).softmax(-1)
        context = attn.to(memory.dtype) @ memory
        p_gen = torch.sigmoid(self.gate(torch.cat([h, context], -1)).float())  # B x T x 1
        probs = p_gen * logits.float().softmax(-1)
        index = src[:, None, :].expand(-1, h.shape[1], -1)
        probs = probs.scatter_add(-1, index, (1 - p_gen) * attn)
        # A floor keeps log() finite (and its gradient bounded) for ids nobody predicts.
        return probs.clamp_min(1e-9).log()


@dataclass
class DecoderState:
    """What incremental decoding keeps between steps, per sequence in the batch."""

    memory: torch.Tensor  # encoder output, B x S x D (kept for uncached decoding)
    src_mask: torch.Tensor  # B x 1 x 1 x S, True where the source is a real token
    memory_kv: list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer
    self_kv: list[dict] = field(default_factory=list)  # per decoder layer: growing k, v
    step: int | torch.Tensor = 0  # target positions already decoded (cached decoding)
    src: torch.Tensor | None = None  # B x S source ids (what the copy head copies)
    copy_keys: torch.Tensor | None = None  # B x S x D, the copy attention's keys

    def select(self, index: torch.Tensor) -> DecoderState:
        """Keep (and reorder, for beam search) the sequences in `index`."""
        return DecoderState(self.memory[index], self.src_mask[index],
                            [(k[index], v[index]) for k, v in self.memory_kv],
                            [{n: t[index] for n, t in c.items()} for c in self.self_kv],
                            self.step, None if self.src is None else self.src[index],
                            None if self.copy_keys is None else self.copy_keys[index])


def sinusoids(length: int, d_model: int) -> torch.Tensor:
    pos = torch.arange(length).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10_000.0) / d_model))
    table = torch.zeros(length, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return table


class Seq2SeqTransformer(nn.Module):
    """Token ids in (B x S source, B x T target prefix), next-token logits out."""

    def __init__(self, vocab: int, d_model: int = 256, heads: int = 4, encoder_layers: int = 3,
                 decoder_layers: int = 3, ff: int = 1024, dropout: float = 0.1,
                 max_len: int = 256, copy: bool = False):
        super().__init__()
        self.max_len, self.scale = max_len, math.sqrt(d_model)
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        self.register_buffer("positions", sinusoids(max_len, d_model), persistent=False)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderLayer(d_model, heads, ff, dropout)
                                     for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(d_model, heads, ff, dropout)
                                     for _ in range(decoder_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.copy = CopyHead(d_model) if copy else None

    def embed_at(self, ids: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
        if isinstance(offset, torch.Tensor):  # an exported cached step: the offset is an input
            steps = torch.arange(ids.shape[1], device=ids.device)
            pos = self.positions.index_select(0, offset.reshape(1) + steps)
        else:
            pos = self.positions[offset:offset + ids.shape[1]]
        return self.drop(self.embed(ids) * self.scale + pos)

    def encode(self, src: torch.Tensor) -> DecoderState:
        mask = (src != PAD_ID)[:, None, None, :]
        x = self.embed_at(src)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.project_memory(DecoderState(self.encoder_norm(x), mask, [], src=src))

    def project_memory(self, state: DecoderState) -> DecoderState:
        """The encoder output's keys/values for every decoder layer (and the copy head)."""
        state.memory_kv = [layer.cross_attn.keys_values(state.memory) for layer in self.decoder]
        if self.copy is not None:
            state.copy_keys = self.copy.k(state.memory)
        return state

    def decode(self, tgt: torch.Tensor, state: DecoderState, cache: bool = False) -> torch.Tensor:
        """Logits (log-probabilities with copying) for every position of `tgt`; with `cache`,
        `tgt` is only the newest token(s)."""
        y = self.embed_at(tgt, state.step if cache else 0)
        if cache and not state.self_kv:
            state.self_kv = [{} for _ in self.decoder]
        for i, layer in enumerate(self.decoder):
            y = layer(y, state.memory_kv[i], state.src_mask,
                      state.self_kv[i] if cache else None)
        if cache:
            state.step = state.step + tgt.shape[1]  # not in place: an exported input
        h = self.decoder_norm(y)
        logits = F.linear(h, self.embed.weight)  # tied output layer
        if self.copy is None:
            return logits
        return self.copy(h, logits, state.memory, state.copy_keys, state.src)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt_in, self.encode(src))
