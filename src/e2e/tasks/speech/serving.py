"""A trained speech recognizer answering: audio files in, transcripts out (greedy, or beam
search over the training words); its exported graph; the demo page (upload a recording)."""

from __future__ import annotations

import time
import weakref
from typing import Any

import numpy as np
import torch

from e2e.config import Config
from e2e.data.audio import SAMPLE_RATE, VOCAB, read_audio
from e2e.errors import E2EError
from e2e.tasks.base import ExportSpec, Serving
from e2e.tasks.speech.ctc import beam_search, greedy
from e2e.tasks.speech.info import SpeechInfo

# Models that have run once: the first call warms up allocators and kernels, untimed.
_warm: weakref.WeakSet = weakref.WeakSet()


class SpeechServing(Serving):
    demo_input = "audio"  # the demo page: upload a WAV, read the transcript

    def predict(self, model: torch.nn.Module, raw: Any, cfg: Config, info: SpeechInfo,
                beam: bool = True, **_options: Any) -> list[dict[str, Any]]:
        """Audio files (or 16 kHz float32 waveforms in [-1, 1]) -> [{text, seconds, rtf}]."""
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        device = next(model.parameters()).device
        if model not in _warm:
            model(torch.zeros(1, SAMPLE_RATE, device=device), torch.tensor([SAMPLE_RATE]))
            _warm.add(model)
        out = []
        for item in items:
            x = torch.as_tensor(item if torch.is_tensor(item) else read_audio(item))
            if x.dtype != torch.float32 or x.dim() != 1:
                raise E2EError(f"a waveform must be 1-D float32 samples in [-1, 1] at 16 kHz "
                               f"(as e2e.data.audio.read_audio gives), got {x.dtype} of shape "
                               f"{tuple(x.shape)}")
            seconds = len(x) / SAMPLE_RATE
            if len(x) < 400:  # shorter than one 25 ms frame: nothing to hear
                out.append({"text": "", "seconds": seconds, "rtf": 0.0})
                continue
            start = time.perf_counter()
            logits, lengths = model(x[None].to(device), torch.tensor([len(x)], device=device))
            m = cfg.model
            if beam and m.beam_size > 1:
                text = beam_search(logits[0].float().log_softmax(-1), VOCAB, m.beam_size,
                                   info.word_list if m.lexicon else None)
            else:
                text = greedy(logits, lengths, VOCAB)[0]
            rtf = (time.perf_counter() - start) / max(seconds, 1e-9)
            out.append({"text": text, "seconds": seconds, "rtf": rtf})
        return out

    def format_prediction(self, raw: Any, answer: dict[str, Any]) -> str:
        return f"{raw}: {answer['text']}"

    def prediction_json(self, raw: Any, answer: dict[str, Any]) -> Any:
        return {"input": str(raw), **answer}

    def export_specs(self, model: torch.nn.Module, cfg: Config, info: SpeechInfo) -> dict:
        """The network (waveform -> CTC logits); decoding (greedy, beam) stays in Python."""
        def waves(g: torch.Generator | None, lengths: list[int]) -> dict[str, torch.Tensor]:
            x = 0.1 * torch.randn(len(lengths), max(lengths), generator=g)
            return {"waveform": x, "lengths": torch.tensor(lengths)}

        dynamic = {"waveform": {0: "batch", 1: "samples"}, "lengths": {0: "batch"},
                   "logits": {0: "batch", 1: "time"}, "frames": {0: "batch"}}
        return {"encoder": ExportSpec(
            model, waves(None, [16000, 12000]), ["logits", "frames"], dynamic,
            lambda g: waves(g, [24000, 20000, 9000]),
            from_batch=lambda batch: {"waveform": batch["x"], "lengths": batch["lengths"]},
            dynamo=True)}

    def demo_answer(self, model: torch.nn.Module, raw: Any, cfg: Config, info: SpeechInfo
                    ) -> dict:
        """An uploaded audio file (a file object) -> its transcript, for the demo page."""
        import soundfile as sf

        from e2e.data.audio import resample

        try:
            x, rate = sf.read(raw, dtype="float32", always_2d=True)
        except Exception as e:  # noqa: BLE001 - soundfile's errors vary by format
            raise E2EError(f"not a readable audio file ({e})") from None
        wave = torch.from_numpy(np.ascontiguousarray(resample(x.mean(axis=1), rate,
                                                              SAMPLE_RATE)))
        r = self.predict(model, [wave], cfg, info)[0]
        return {"text": r["text"], "note": f"{r['seconds']:.1f} s of audio, real-time factor "
                                           f"{r['rtf']:.2f}"}
