"""Hand-crafted MFCC features (librosa): the stepwise front end of the speech counterparts.

`mfcc_features` is the textbook recipe - 25 ms windows every 10 ms, a mel filterbank, log,
DCT, 13 coefficients plus their first and second differences (39 per frame) - normalized per
utterance (mean, and by default variance), so loudness and channel are divided out.
`MfccFrontend` puts it in place of the learned filterbank of the end-to-end model: the same
100 frames per second, no parameters, nothing learned (`model.frontend=mfcc`). The
isolated-word recognizer (e2e.stepwise.mfcc_dtw) uses the same function.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from e2e.config import Config
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks.speech.info import SpeechInfo
from e2e.tasks.speech.serving import SpeechServing
from e2e.tasks.speech.task import SpeechTask

COEFFICIENTS = 13
CHANNELS = 3 * COEFFICIENTS  # coefficients, deltas, delta-deltas
HOP = 160  # 10 ms at 16 kHz: the frame rate the encoder expects
WINDOW = 400  # 25 ms


def require_librosa():
    """librosa, imported on first use (the end-to-end model does not need it)."""
    try:
        import librosa
    except ImportError:
        raise DatasetMissing("librosa (the MFCC front end of the stepwise speech systems)",
                             'pip install "e2e[speech]"   (or: pip install librosa)') from None
    return librosa


def mfcc_features(wave: np.ndarray, sample_rate: int = 16_000, fmax: float = 8000.0,
                  variance: bool = True) -> np.ndarray:
    """A float waveform -> frames x 39 MFCCs with deltas, per-utterance mean normalized (and
    variance normalized unless `variance=False`).

    `fmax` bounds the mel filterbank: 4000 Hz keeps only the band an 8 kHz phone line carries.
    """
    librosa = require_librosa()
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) < WINDOW:  # shorter than one window: pad so there is at least one frame
        wave = np.pad(wave, (0, WINDOW - len(wave)))
    m = librosa.feature.mfcc(y=wave, sr=sample_rate, n_mfcc=COEFFICIENTS, n_fft=512,
                             win_length=WINDOW, hop_length=HOP, n_mels=40, fmin=20.0, fmax=fmax)
    # Deltas need at least `width` frames; very short inputs get a narrower window.
    width = min(5, m.shape[1] if m.shape[1] % 2 else m.shape[1] - 1)
    if width >= 3:
        d1 = librosa.feature.delta(m, width=width, order=1)
        d2 = librosa.feature.delta(m, width=width, order=2)
    else:
        d1 = d2 = np.zeros_like(m)
    f = np.concatenate([m, d1, d2]).T
    f = f - f.mean(0)
    return (f / (f.std(0) + 1e-5) if variance else f).astype(np.float32)


class MfccFrontend(nn.Module):
    """(waveform N x T, lengths N) -> (N x 39 x frames MFCCs, frame lengths N); no parameters.

    librosa runs on the CPU in NumPy, outside autograd: nothing before the encoder learns,
    which is the point of this stepwise counterpart (and why it cannot be exported to ONNX).
    """

    channels = CHANNELS

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """librosa's frame count (centred frames), inputs padded to one window."""
        return 1 + torch.div(lengths.clamp_min(WINDOW), HOP, rounding_mode="floor")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        waves = x.detach().cpu().numpy()
        feats = [mfcc_features(w[:n]) for w, n in zip(waves, lengths.tolist())]
        frames = torch.tensor([len(f) for f in feats], device=lengths.device)
        out = torch.zeros(len(feats), CHANNELS, int(frames.max()), device=x.device)
        for i, f in enumerate(feats):
            out[i, :, :len(f)] = torch.from_numpy(f.T).to(x.device)
        return out, frames


class MfccSpeechServing(SpeechServing):
    """The speech serving side, without export."""

    def export_specs(self, model: nn.Module, cfg: Config, info: SpeechInfo) -> dict:
        raise E2EError("a speech-mfcc model cannot be exported: its librosa MFCC front end "
                       "runs in NumPy, outside the graph; export a run of the end-to-end "
                       "`speech` task")


class MfccSpeechTask(SpeechTask):
    """Speech recognition the stepwise way: fixed MFCCs, then the same conformer and CTC.

    Registered as task `speech-mfcc` by this package's entry point (group `e2e.tasks` in
    pyproject.toml): `e2e train speech-mfcc` trains it and a run of it loads like any other.
    Its front end runs in NumPy, outside the graph, so it has no export.
    """

    name = "speech-mfcc"
    Serving = MfccSpeechServing

    def front_end(self) -> tuple[nn.Module | None, int]:
        return MfccFrontend(), CHANNELS
