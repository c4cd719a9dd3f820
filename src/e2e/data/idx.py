"""IDX files (the MNIST format), plain or gzipped, into uint8/int tensors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from e2e.errors import E2EError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> torch.Tensor:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise E2EError(f"cannot read IDX file {path}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise E2EError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_DTYPES[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) - header != expected:
        raise E2EError(f"{path} is truncated or corrupt: header says {dims} "
                       f"({expected} bytes of data), file has {len(data) - header}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("=")).copy())


def find_idx_pair(directory: Path, split: str) -> tuple[Path, Path]:
    """The images and labels files of `split` ('train' or 't10k') in an MNIST-style folder."""
    def one(kind: str) -> Path:
        found = sorted(directory.glob(f"{split}-{kind}-idx*-ubyte*"))
        if not found:
            raise E2EError(f"{directory} has no {split}-{kind}-idx*-ubyte[.gz] file; an MNIST-"
                           "format folder holds train-images-idx3-ubyte, train-labels-idx1-ubyte,"
                           " t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (optionally .gz)")
        return found[0]
    return one("images"), one("labels")


def load_idx_dataset(directory: str | Path) -> tuple[torch.Tensor, ...]:
    """(train_x, train_y, test_x, test_y) from an MNIST-format folder."""
    directory = Path(directory)
    out = []
    for split in ("train", "t10k"):
        images_path, labels_path = find_idx_pair(directory, split)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dim() != 3 or images.dtype != torch.uint8:
            raise E2EError(f"{images_path}: expected N x H x W uint8 images, got "
                           f"{tuple(images.shape)} {images.dtype}")
        if len(images) != len(labels):
            raise E2EError(f"{images_path} has {len(images)} images but {labels_path} has "
                           f"{len(labels)} labels")
        out += [images, labels.long()]
    return tuple(out)
