"""Waveform augmentation on batched tensors, on the fly, for closing the synthetic-to-real gap.

All functions take a padded batch `x` (N x T float, 16 kHz) with `lengths` (N,) and return
the same. Each example draws its own parameters. What each one imitates:
  gain       microphones and levels differ
  noise      rooms and lines are never silent (white or pink noise at a random SNR)
  speed      people talk faster or slower (tempo and pitch move together)
  pitch      voices sit higher or lower (pitch moves, tempo stays: phase vocoder + resample)
  telephone  8 kHz lines keep nothing above 4 kHz and code 8-bit mu-law (the Asterisk
             prompts are 8 kHz)
  reverb     rooms echo (an exponentially decaying noise impulse response)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from e2e.tasks.speech.config import SpeechAugment


def _uniform(lo: float, hi: float, n: int, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device)


def _mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    return torch.arange(t, device=lengths.device)[None, :] < lengths[:, None]


def fft_size(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n. An FFT of a length with a large prime factor is many
    times slower (measured, 16 clips: 55 ms at 36,001 samples, 23 ms at 36,864), and clip
    lengths are arbitrary, so every FFT here zero-pads to such a size and crops."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def gain(x: torch.Tensor, lengths: torch.Tensor, db: tuple[float, float]) -> torch.Tensor:
    g = 10 ** (_uniform(*db, len(x), x.device) / 20)
    return (x * g[:, None]).clamp(-1, 1)


def noise(x: torch.Tensor, lengths: torch.Tensor, snr_db: tuple[float, float], p: float
          ) -> torch.Tensor:
    n, t = x.shape
    # Only the noisy examples' noise is made: it is most of this function's time.
    rows = torch.nonzero(torch.rand(n, device=x.device) < p).flatten()
    if len(rows) == 0:
        return x
    k = len(rows)
    mask = _mask(lengths[rows], t)
    white = torch.randn(k, t, device=x.device)
    # Pink (1/f) noise: shape white noise's spectrum by 1/sqrt(f).
    size = fft_size(t)
    spec = torch.fft.rfft(torch.randn(k, size, device=x.device))
    f = torch.arange(spec.shape[1], device=x.device).clamp_min(1).float()
    pink = torch.fft.irfft(spec / f.sqrt(), n=size)[:, :t]
    pick = (torch.rand(k, 1, device=x.device) < 0.5).float()
    nz = (pick * white + (1 - pick) * pink) * mask
    length = lengths[rows].clamp_min(1)
    p_sig = (x[rows].pow(2) * mask).sum(1) / length
    p_nz = nz.pow(2).sum(1) / length
    snr = 10 ** (_uniform(*snr_db, k, x.device) / 10)
    scale = (p_sig / (snr * p_nz.clamp_min(1e-12))).sqrt()
    out = x.clone()
    out[rows] += scale[:, None] * nz
    return out


def _stretch(y: torch.Tensor, rate: float) -> torch.Tensor:
    """Resample one waveform by `rate` (linear interpolation): rate > 1 = faster and higher."""
    new = max(1, int(round(len(y) / rate)))
    return F.interpolate(y.view(1, 1, -1), size=new, mode="linear", align_corners=False).view(-1)


def _time_stretch(y: torch.Tensor, rate: float, n_fft: int = 512, hop: int = 128) -> torch.Tensor:
    """Phase vocoder: tempo x `rate`, pitch unchanged."""
    window = torch.hann_window(n_fft, device=y.device)
    spec = torch.stft(y, n_fft, hop, window=window, return_complex=True)
    steps = torch.arange(0, spec.shape[1] - 1, rate, device=y.device)
    i = steps.floor().long()
    frac = (steps - i)[None, :]
    mag = (1 - frac) * spec[:, i].abs() + frac * spec[:, i + 1].abs()
    dphi = spec[:, i + 1].angle() - spec[:, i].angle()
    expected = 2 * torch.pi * hop * torch.arange(spec.shape[0], device=y.device) / n_fft
    dphi = dphi - expected[:, None]
    dphi = dphi - 2 * torch.pi * torch.round(dphi / (2 * torch.pi)) + expected[:, None]
    phase = torch.cumsum(torch.cat([spec[:, :1].angle(), dphi[:, :-1]], 1), 1)
    return torch.istft(torch.polar(mag, phase), n_fft, hop, window=window)


def pitch_shift(y: torch.Tensor, semitones: float) -> torch.Tensor:
    r = 2 ** (semitones / 12)
    return _stretch(_time_stretch(y, 1 / r), r)


def telephone(x: torch.Tensor, mulaw: bool = True) -> torch.Tensor:
    """An 8 kHz phone line: keep only 0-4 kHz (rectangular cut in the spectrum), then G.711
    mu-law coding, 8 bits a sample (the Asterisk prompts went through both)."""
    size = fft_size(x.shape[1])
    spec = torch.fft.rfft(x, n=size)
    spec[:, spec.shape[1] // 2:] = 0
    y = torch.fft.irfft(spec, n=size)[:, :x.shape[1]]
    return mu_law(y) if mulaw else y


def mu_law(x: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """Compress, quantize to 256 levels, expand: the coding noise of a G.711 line."""
    x = x.clamp(-1, 1)
    c = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    c = torch.round((c + 1) * 127.5) / 127.5 - 1
    return torch.sign(c) * ((1 + mu) ** c.abs() - 1) / mu


def reverb(y: torch.Tensor, sample_rate: int = 16_000) -> torch.Tensor:
    rt60 = float(_uniform(0.15, 0.6, 1, y.device))
    t = torch.arange(int(rt60 * sample_rate), device=y.device) / sample_rate
    ir = torch.randn_like(t) * torch.exp(-6.9 * t / rt60)
    ir[0] = 1.0
    ir = ir / ir.norm()
    n = fft_size(len(y) + len(ir) - 1)
    out = torch.fft.irfft(torch.fft.rfft(y, n) * torch.fft.rfft(ir, n), n)[:len(y)]
    return out * (y.abs().max() / out.abs().max().clamp_min(1e-6))


def augment(x: torch.Tensor, lengths: torch.Tensor, cfg: SpeechAugment,
            sample_rate: int = 16_000) -> tuple[torch.Tensor, torch.Tensor]:
    """All augmentations, each example with its own draw; returns (x, lengths) re-padded."""
    x = x.float()
    items = []
    for i in range(len(x)):
        y = x[i, :int(lengths[i])]
        if torch.rand(()) < cfg.p_speed:
            y = _stretch(y, float(_uniform(*cfg.speed, 1, y.device)))
        if torch.rand(()) < cfg.p_pitch and len(y) > 1024:
            y = pitch_shift(y, float(_uniform(*cfg.semitones, 1, y.device)))
        if torch.rand(()) < cfg.p_reverb:
            y = reverb(y, sample_rate)
        items.append(y)
    lengths = torch.tensor([len(y) for y in items], device=x.device)
    x = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    phone = torch.rand(len(x), device=x.device) < cfg.p_telephone
    if phone.any():
        x[phone] = telephone(x[phone])
    x = noise(x, lengths, cfg.snr_db, cfg.p_noise)
    x = gain(x, lengths, cfg.gain_db) * _mask(lengths, x.shape[1])
    return x, lengths
