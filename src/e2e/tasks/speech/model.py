"""The end-to-end speech model: 16 kHz waveform -> per-frame character logits.

    waveform ──► learned filterbank ──► conv subsampling ──► encoder ──► linear ──► CTC logits
                 (conv over samples,     (100 -> 50 or 25     (conformer
                  square, smooth, log)    frames per second)   or BiGRU)

In training, bands and spans of the filterbank's output may be masked (SpecAugment).

The front end is a constructor argument: the stepwise counterpart that `e2e compare speech`
measures (task `speech-mfcc`, in e2e.stepwise.mfcc) passes fixed librosa MFCCs at the same
frame rate instead of the learned filterbank.

The front end is a convolution over raw samples whose filters start random and are learned
with everything else; squaring, local averaging and a log give it the dynamic range
compression that a fixed mel filterbank would otherwise provide, without fixing which
frequencies it listens to. Everything is masked by the true lengths, so padding never
leaks into an utterance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from e2e.tasks.speech.config import SpeechModelConfig


def conv_out(lengths: torch.Tensor, conv: nn.Conv1d | nn.AvgPool1d) -> torch.Tensor:
    """Output lengths of a convolution or pooling layer, as PyTorch computes them."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    return torch.div(lengths + 2 * p - k, s, rounding_mode="floor") + 1


def length_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """N x t, True on real frames."""
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


class LearnedFilterbank(nn.Module):
    """Samples -> log energies of learned band filters at 100 frames/s, mean-normalized.

    The filters start as Hann-windowed cosines at log-spaced centre frequencies (a
    starting point that spares the first minutes of training rediscovering band-pass
    filters) and are then trained like every other weight. Their outputs are taken every
    16th sample: sub-sampling a band-pass signal folds it but keeps its power, and power
    is all that the squaring and 25 ms averaging after it measure.
    """

    def __init__(self, filters: int, filter_ms: float, sample_rate: int = 16_000):
        super().__init__()
        k = int(sample_rate * filter_ms / 1000)
        self.conv = nn.Conv1d(1, filters, k, stride=16, padding=k // 2, bias=False)
        self.pool = nn.AvgPool1d(25, stride=10, padding=7)  # 25 ms windows every 10 ms
        with torch.no_grad():
            t = torch.arange(k) / sample_rate
            centre = torch.logspace(math.log10(80), math.log10(7600), filters)
            bank = torch.cos(2 * math.pi * centre[:, None] * t) * torch.hann_window(k)
            self.conv.weight.copy_((bank / bank.norm(dim=1, keepdim=True)).unsqueeze(1))
        self.scale = nn.Parameter(torch.ones(filters, 1))
        self.shift = nn.Parameter(torch.zeros(filters, 1))

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames out for clips of `lengths` samples."""
        return conv_out(conv_out(lengths, self.conv), self.pool)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = length_mask(lengths, x.shape[1])
        x = x * mask
        # Loudness normalization by the utterance's RMS: a gain change is not new speech.
        rms = (x.pow(2).sum(1) / lengths.clamp_min(1)).sqrt().clamp_min(1e-4)
        x = (x / rms[:, None]).unsqueeze(1)
        y = self.conv(x).pow(2)
        # Filter outputs past the clip's end still see its last samples; zero them, so the last
        # frame is the same whether the clip is padded in a batch or alone.
        lengths = conv_out(lengths, self.conv)
        y = self.pool(y * length_mask(lengths, y.shape[2])[:, None, :])
        lengths = conv_out(lengths, self.pool)
        y = torch.log(y.float() + 1e-4)
        m = length_mask(lengths, y.shape[2])[:, None, :]
        mean = (y * m).sum(2, keepdim=True) / lengths.clamp_min(1)[:, None, None]
        return ((y - mean) * self.scale + self.shift) * m, lengths


def mask_bands_and_spans(h: torch.Tensor, lengths: torch.Tensor, m: SpeechModelConfig
                        ) -> torch.Tensor:
    """SpecAugment's masking on the front end's output (N x channels x frames): zero
    `freq_masks` bands of up to `freq_mask_width` adjacent channels and `time_masks` spans of
    up to `time_mask_fraction` of each utterance's frames. Zero is the utterance mean after
    the filterbank's normalization, so a mask reads as "nothing heard here", and the network
    has to recognize a word from what is left around it, as it must in noise."""
    n, c, t = h.shape
    keep = torch.ones(n, c, t, dtype=torch.bool, device=h.device)
    channel = torch.arange(c, device=h.device)[None, :]
    frame = torch.arange(t, device=h.device)[None, :]
    for _ in range(m.freq_masks):
        width = torch.randint(0, min(m.freq_mask_width, c) + 1, (n, 1), device=h.device)
        start = (torch.rand(n, 1, device=h.device) * (c - width + 1)).long()
        keep &= ~((channel >= start) & (channel < start + width))[:, :, None]
    longest = (lengths.float() * m.time_mask_fraction).long()[:, None]
    for _ in range(m.time_masks):
        width = (torch.rand(n, 1, device=h.device) * (longest + 1)).long()
        start = (torch.rand(n, 1, device=h.device) * (lengths[:, None] - width + 1)).long()
        keep &= ~((frame >= start) & (frame < start + width))[:, None, :]
    return h * keep


class ConformerBlock(nn.Module):
    """Half feed-forward, self-attention, depthwise convolution, half feed-forward."""

    def __init__(self, dim: int, heads: int, kernel: int, dropout: float):
        super().__init__()
        def ff() -> nn.Sequential:
            return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.SiLU(),
                                 nn.Dropout(dropout), nn.Linear(4 * dim, dim),
                                 nn.Dropout(dropout))
        self.ff1, self.ff2 = ff(), ff()
        self.norm_att = nn.LayerNorm(dim)
        self.att = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_conv = nn.LayerNorm(dim)
        self.pw1 = nn.Conv1d(dim, 2 * dim, 1)
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm_dw = nn.LayerNorm(dim)
        self.pw2 = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)
        self.norm_out = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.norm_att(x)
        x = x + self.drop(self.att(h, h, h, key_padding_mask=~mask, need_weights=False)[0])
        h = (self.norm_conv(x) * mask[..., None]).transpose(1, 2)
        h = F.glu(self.pw1(h), dim=1)
        h = self.dw(h * mask[:, None, :]).transpose(1, 2)
        h = self.pw2(F.silu(self.norm_dw(h)).transpose(1, 2)).transpose(1, 2)
        x = x + self.drop(h)
        return self.norm_out(x + 0.5 * self.ff2(x)) * mask[..., None]


class SpeechRecognizer(nn.Module):
    """(waveform N x T, lengths N) -> (logits N x T' x vocab, frame lengths N).

    A front end other than the learned filterbank has `forward(x, lengths)` and
    `frame_lengths(lengths)` like it."""

    def __init__(self, vocab: int, m: SpeechModelConfig, front: nn.Module | None = None,
                 channels: int = 0):
        """`front` (waveform, lengths) -> (features N x channels x frames, frame lengths);
        by default the learned filterbank."""
        super().__init__()
        if front is None:
            front, channels = LearnedFilterbank(m.filters, m.filter_ms), m.filters
        self.front = front
        self.masking = m  # freq_masks, time_masks, ...: applied in training only
        # 100 filterbank frames/s -> 100 / subsample encoder frames/s (kernel 5, stride 2 at 2)
        s = m.subsample
        self.subsample = nn.Conv1d(channels, m.dim, 2 * s + 1, stride=s, padding=s)
        self.encoder_kind = m.encoder
        if m.encoder == "conformer":
            self.blocks = nn.ModuleList(ConformerBlock(m.dim, m.heads, m.conv_kernel, m.dropout)
                                        for _ in range(m.layers))
        elif m.encoder == "gru":
            self.rnn = nn.GRU(m.dim, m.dim // 2, m.layers, batch_first=True,
                              bidirectional=True, dropout=m.dropout if m.layers > 1 else 0.0)
        else:
            raise ValueError(f"model.encoder must be conformer or gru, got '{m.encoder}'")
        self.head = nn.Linear(m.dim, vocab)
        # intermediate CTC reads this block's output through the same head (training only)
        self.inter_layer = m.inter_ctc_layer or m.layers // 2

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Output frames (CTC's time steps) for clips of `lengths` samples."""
        return conv_out(self.front.frame_lengths(lengths), self.subsample)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, intermediate: bool = False
                ) -> tuple[torch.Tensor, ...]:
        """x: float32 waveforms in [-1, 1] at 16 kHz, N x T (padded), lengths: N.
        `intermediate`: also the logits of block `inter_layer` (conformer), for intermediate
        CTC: (logits, lengths, intermediate logits)."""
        h, lengths = self.front(x, lengths)
        if self.training and (self.masking.freq_masks or self.masking.time_masks):
            h = mask_bands_and_spans(h, lengths, self.masking)
        h = F.gelu(self.subsample(h)).transpose(1, 2)
        lengths = conv_out(lengths, self.subsample)
        mask = length_mask(lengths, h.shape[1])
        inter = None
        if self.encoder_kind == "conformer":
            for i, block in enumerate(self.blocks, 1):
                h = block(h, mask)
                if intermediate and i == self.inter_layer:
                    inter = self.head(h)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(h, lengths.cpu().clamp_min(1),
                                                       batch_first=True, enforce_sorted=False)
            h = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True,
                                                 total_length=mask.shape[1])[0]
        if intermediate:
            if inter is None:
                raise ValueError(f"no intermediate output: block {self.inter_layer} of a "
                                 f"{self.encoder_kind} encoder")
            return self.head(h), lengths, inter
        return self.head(h), lengths
