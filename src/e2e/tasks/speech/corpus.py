"""Speech on disk for streaming: the speech application's side of `e2e data prepare`.

Columns: `audio` (float32 samples in [-1, 1] at 16 kHz, the one form a clip has from reader
to model), `text` (the normalized transcript) and `group` (the test set or speaker it belongs
to), UTF-8. A user's corpus maps `audio` (a file path relative to the corpus, encoded bytes, or
a Hugging Face Audio dict {bytes, path} or {array, sampling_rate}), `text`, and optionally
`speaker`. A Common Voice folder maps itself (path, sentence, client_id).

Training streams the waveforms; the transcripts (small) are read whole, for the lexicon, the
word bigram model and CTC's length guard.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from e2e.data.audio import SAMPLE_RATE, VOCAB, check_text, read_audio, resample
from e2e.data.columns import ColumnSpec, PreparedSplit, require_columns
from e2e.errors import E2EError
from e2e.tasks.speech.ctc import encode

COLUMNS = {"audio": ColumnSpec("float32", (), True), "text": ColumnSpec("uint8", (), True),
           "group": ColumnSpec("uint8", (), True)}
FIELDS = {"audio": "the recording: a file path, encoded bytes, or {bytes|path|array, "
                   "sampling_rate}",
          "text": "what is said", "speaker": "who says it (optional)"}


class StreamedSpeech(Dataset):
    """One split of a prepared speech corpus: waveforms read as needed, transcripts in memory
    (the attributes SpeechSet has, but `waves`)."""

    def __init__(self, folder: Path, split: str, index: list[int] | None = None):
        self.store = PreparedSplit(folder, split)
        self.index = index if index is not None else list(range(len(self.store)))
        texts, groups = list(self.store["text"].texts()), list(self.store["group"].texts())
        self.texts = [texts[i] for i in self.index]
        self.groups = [groups[i] for i in self.index]
        samples = torch.from_numpy(self.store["audio"].lengths())
        self.lengths = samples[torch.tensor(self.index, dtype=torch.long)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        wave = self.store["audio"][self.index[i]]
        return {"x": torch.from_numpy(wave.copy()), "y": torch.tensor(encode(self.texts[i], VOCAB))}

    def wave(self, i: int) -> np.ndarray:
        return self.store["audio"][self.index[i]]

    def seconds(self) -> float:
        return float(self.lengths.sum()) / SAMPLE_RATE

    def subset(self, keep: list[int]) -> StreamedSpeech:
        out = StreamedSpeech.__new__(StreamedSpeech)
        out.store, out.index = self.store, [self.index[i] for i in keep]
        out.texts, out.groups = [self.texts[i] for i in keep], [self.groups[i] for i in keep]
        out.lengths = self.lengths[torch.tensor(keep, dtype=torch.long)]
        return out


def own_rows(splits) -> tuple[dict, dict]:
    """The application's own splits (SpeechSet: waveforms in memory) as rows, and the meta."""
    def rows_of(s):
        def rows() -> Iterator[dict]:
            for wave, text, group in zip(s.waves, s.texts, s.groups):
                yield {"audio": wave, "text": text, "group": group}
        return len(s), rows
    return ({name: rows_of(getattr(splits, name)) for name in ("train", "val", "test")},
            {"test_sets": list(splits.info.test_sets), "origin": splits.info.source,
             "real": splits.info.real})


def decode(audio, base: Path) -> np.ndarray:
    """A record's audio field -> float32 samples at 16 kHz."""
    if isinstance(audio, dict):  # Hugging Face's Audio feature
        if audio.get("array") is not None:
            rate = int(audio.get("sampling_rate") or 0)
            if rate <= 0:
                raise E2EError("an audio array without a sampling_rate")
            x = np.asarray(audio["array"], dtype=np.float32)
            return np.clip(resample(x.mean(axis=1) if x.ndim == 2 else x, rate), -1, 1)
        audio = audio.get("bytes") or audio.get("path")
    if isinstance(audio, bytes | bytearray):
        return read_audio(io.BytesIO(audio))
    if isinstance(audio, str):
        return read_audio(Path(audio) if Path(audio).is_absolute() else base / audio)
    raise E2EError(f"audio of type {type(audio).__name__}: a path, bytes or an Audio dict "
                   "expected")


def example(record: dict, base: Path, split: str) -> dict:
    wave = decode(record["audio"], base)
    if not len(wave):
        raise E2EError("the recording is empty (no samples)")
    text = check_text(str(record["text"]), "the transcript")
    return {"audio": wave, "text": text, "group": split if split != "train" else
            str(record.get("speaker", ""))}


def manifest(folder: Path) -> dict:
    return require_columns(folder, "speech", {"audio": "waveforms", "text": "transcripts",
                                              "group": "test set or speaker"})
