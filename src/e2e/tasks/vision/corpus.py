"""Images on disk for streaming: the vision application's side of `e2e data prepare`.

Columns: `x` (uint8 C x H x W pixels, one size for the corpus), `y` (int64 class index).
A user's corpus maps two fields: `image` (encoded bytes, a Hugging Face Image dict
{"bytes", "path"}, a file path relative to the corpus, or an array of pixels) and `label`
(a class index or a class name).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from e2e.data.columns import ColumnSpec, PreparedSplit, require_columns
from e2e.data.images import load_image
from e2e.engine.batching import TensorData
from e2e.errors import E2EError

FIELDS = {"image": "the picture: encoded bytes, {bytes, path}, a file path or pixels",
          "label": "its class: an index or a name"}


class PreparedImages(Dataset):
    """One split of a prepared image corpus, read image by image (optionally a subset)."""

    def __init__(self, folder: str | Path, split: str, index: list[int] | None = None):
        self.store = PreparedSplit(folder, split)
        self.index = index

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else len(self.store)

    def __getitem__(self, i: int) -> dict:
        row = self.index[i] if self.index is not None else i
        return {"x": torch.from_numpy(self.store["x"][row].copy()),
                "y": torch.tensor(int(self.store["y"][row][()]))}


def columns(shape: list[int]) -> dict[str, ColumnSpec]:
    return {"x": ColumnSpec("uint8", tuple(shape)), "y": ColumnSpec("int64")}


def own_rows(split) -> tuple[int, Callable[[], Iterator[dict]]]:
    """A built split (in-memory tensors or a folder of files) as (count, rows)."""
    def rows() -> Iterator[dict]:
        if isinstance(split, TensorData):
            x, y = split.tensors["x"], split.tensors["y"]
            for i in range(len(split)):
                yield {"x": x[i].cpu().numpy(), "y": int(y[i])}
        else:
            for i in range(len(split)):
                item = split[i]
                yield {"x": item["x"].numpy(), "y": int(item["y"])}
    return len(split), rows


def scan_classes(splits: dict[str, Iterator[tuple[int, dict]]]) -> list[str]:
    """The class names of a user's corpus: indices 0..max as names, or the sorted names."""
    labels = {record["label"] for records in splits.values() for _, record in records}
    if all(isinstance(v, int) or (isinstance(v, str) and v.isdigit()) for v in labels):
        return [str(i) for i in range(max(int(v) for v in labels) + 1)] if labels else []
    return sorted(str(v) for v in labels)


def example(record: dict, base: Path, size: int, channels: int, classes: list[str]) -> dict:
    """One user record -> {x, y}."""
    image = record["image"]
    if isinstance(image, dict):  # Hugging Face's Image feature
        image = image.get("bytes") or image.get("path")
    if isinstance(image, bytes | bytearray):
        x = load_image(io.BytesIO(image), size, channels)
    elif isinstance(image, str):
        path = Path(image) if Path(image).is_absolute() else base / image
        x = load_image(path, size, channels)
    else:
        from PIL import Image

        pixels = np.asarray(image, dtype=np.uint8)
        if pixels.ndim not in (2, 3):
            raise E2EError(f"image pixels of shape {pixels.shape}: H x W or H x W x C expected")
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        x = load_image(io.BytesIO(buffer.getvalue()), size, channels)
    label = str(record["label"])
    if label not in classes:
        raise E2EError(f"label '{label}' is not one of the corpus's classes")
    return {"x": x.numpy(), "y": classes.index(label)}


def prepared_splits(folder: Path, val_fraction: float, seed: int
                    ) -> tuple[Dataset, Dataset, Dataset, dict]:
    """train, val, test of a prepared corpus (val held out of train when it has none)."""
    from e2e.data.splits import split_indices

    manifest = require_columns(folder, "vision", {"x": "pixels", "y": "class indices"})
    have = manifest["splits"]
    if "test" not in have:
        raise E2EError(f"{folder} has no test split; prepare it with a test fraction")
    if "val" in have:
        train, val = PreparedImages(folder, "train"), PreparedImages(folder, "val")
    else:
        keep, held, _ = split_indices(have["train"], val_fraction, 0, seed, "images",
                                      str(folder))
        train, val = PreparedImages(folder, "train", keep), PreparedImages(folder, "train", held)
    return train, val, PreparedImages(folder, "test"), manifest["meta"]
