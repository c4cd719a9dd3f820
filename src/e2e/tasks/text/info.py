"""What a text model knows about its data: the BPE vocabulary it learned from it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from e2e.tasks.base import Info
from e2e.tasks.text.tokenizer import load_bpe


@dataclass(kw_only=True)
class TextInfo(Info):
    tokenizer: str  # the learned BPE tokenizer, as its JSON text
    vocab: int  # its size
    max_source_tokens: int  # longer inputs are truncated

    # Built from the JSON on first use (not saved: to_dict holds fields only).
    @cached_property
    def bpe(self) -> Any:
        return load_bpe(self.tokenizer)
