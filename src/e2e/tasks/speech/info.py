"""What a speech model knows about its data: the alphabet it spells with, the training
transcripts' words and word bigrams (for the stepwise decoding variants), and counts for the
report."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from e2e.data.audio import SAMPLE_RATE, VOCAB
from e2e.tasks.base import Info
from e2e.tasks.speech.ctc import BigramLM, Lexicon


@dataclass(kw_only=True)
class SpeechInfo(Info):
    vocab: str = VOCAB
    sample_rate: int = SAMPLE_RATE
    lexicon: list[str] = field(default_factory=list)  # the training transcripts' words
    lm: dict[str, Any] = field(default_factory=dict)  # their word bigram counts (BigramLM)
    test_sets: list[str] = field(default_factory=list)
    skipped_files: int = 0  # unreadable audio files left out (data.skip_bad)
    dropped_long: int = 0  # training clips longer than max_seconds, left out
    max_seconds: float = 0.0
    # training clips whose transcript needs more output frames than the network gives them
    # (at their own speed): CTC's length guard leaves them out of the loss
    ctc_too_long: int = 0
    train_utterances: int = 0
    train_hours: float = 0.0
    real: dict[str, Any] = field(default_factory=dict)  # the real corpora's speakers by split

    # Built from the fields above on first use (not saved: to_dict holds fields only).
    @cached_property
    def word_list(self) -> Lexicon | None:
        return Lexicon(self.lexicon) if self.lexicon else None

    @cached_property
    def bigram_lm(self) -> BigramLM | None:
        return BigramLM(self.lm) if self.lm else None
