"""Sentence pairs on disk for streaming: the text application's side of `e2e data prepare`.

Columns: `source` and `target`, UTF-8 text. A user's corpus maps two fields, `source` and
`target` (e.g. `--column source=en --column target=es`).

Training streams the training pairs and encodes each one when it is read (in the DataLoader's
workers); the validation and test pairs, bounded in size, are read whole, as `TextPairs`.
A fresh run learns its vocabulary from the training text streamed once from disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import torch
from torch.utils.data import Dataset

from e2e.data.columns import ColumnSpec, PreparedSplit, require_columns
from e2e.errors import E2EError
from e2e.tasks.text.tokenizer import BOS_ID, EOS_ID, encode

COLUMNS = {"source": ColumnSpec("uint8", (), True), "target": ColumnSpec("uint8", (), True)}
FIELDS = {"source": "the text to translate or summarize", "target": "what it should become"}


class StreamedPairs(Dataset):
    """The training pairs of a prepared corpus, encoded as they are read."""

    def __init__(self, folder: Path, split: str, tok, d, index: list[int] | None = None):
        self.store, self.tok, self.d = PreparedSplit(folder, split), tok, d
        self.index = index if index is not None else list(range(len(self.store)))
        # UTF-8 bytes per pair: the engine's length bucketing needs only an order, not tokens
        sizes = torch.from_numpy(self.store["source"].lengths() + self.store["target"].lengths())
        self.lengths = sizes[torch.tensor(self.index, dtype=torch.long)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        row = self.index[i]
        source, target = self.store["source"].text(row), self.store["target"].text(row)
        src = encode(self.tok, [source])[0][:self.d.max_source_tokens - 1] + [EOS_ID]
        tgt = [BOS_ID] + encode(self.tok, [target], [source])[0][:self.d.max_target_tokens - 2] \
            + [EOS_ID]
        return {"src": src, "tgt": tgt}

    def texts(self) -> Iterator[str]:
        """Every source and target, streamed (to learn a vocabulary)."""
        for row in self.index:
            yield self.store["source"].text(row)
            yield self.store["target"].text(row)


def pairs(folder: Path, split: str) -> list[tuple[str, str]]:
    """A (bounded) split read whole."""
    store = PreparedSplit(folder, split)
    return list(zip(store["source"].texts(), store["target"].texts()))


def manifest(folder: Path) -> dict:
    m = require_columns(folder, "text", FIELDS)
    for split in ("train", "val", "test"):
        if split not in m["splits"]:
            raise E2EError(f"{folder} has no {split} split; prepare it with val and test "
                           "fractions above 0, or give the corpus its own val and test files")
    return m


def own_rows(corpora, limit: int = 0) -> tuple[dict, dict]:
    """The application's own corpora (read_corpora) as rows per split (the first `limit`
    training pairs, as from memory), and the meta: where each test corpus's pairs start and
    end (scored apart)."""
    def rows_of(parts, limit: int = 0):
        count = sum(len(p) for p in parts)
        count = min(count, limit) if limit else count

        def rows() -> Iterator[dict]:
            pairs = (pair for part in parts for pair in part)
            for source, target in islice(pairs, count):
                yield {"source": source, "target": target}
        return count, rows
    ends, start = {}, 0
    for name, _, _, test in corpora:
        ends[name] = [start, start + len(test)]
        start += len(test)
    return ({"train": rows_of([c[1] for c in corpora], limit),
             "val": rows_of([c[2] for c in corpora]), "test": rows_of([c[3] for c in corpora])},
            {"parts": ends if len(corpora) > 1 else {}, "names": [c[0] for c in corpora]})


def example(record: dict) -> dict:
    out = {}
    for column in ("source", "target"):
        value = record[column]
        if not isinstance(value, str) or not value.strip():
            raise E2EError(f"'{column}' is {value!r}: a non-empty string expected")
        out[column] = value.strip()
    return out
