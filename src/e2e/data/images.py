"""A user's folder of images, one sub-folder per class (PNG, JPEG, BMP, GIF, WebP)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from e2e.errors import E2EError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image(path: str | Path | BinaryIO, size: int, channels: int) -> torch.Tensor:
    """Any image file (or open binary file) -> uint8 tensor C x size x size."""
    path = Path(path) if isinstance(path, str) else path
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise E2EError(f"cannot read image {path}: {e}. Fix or remove the file, or set "
                       "data.skip_bad=true to skip unreadable files and count them.") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())


def check_image(path: Path) -> str | None:
    """None if `path` decodes as an image, else the reason it does not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return str(e)
    return None


def scan_class_folder(root: str | Path, skip_bad: bool) -> tuple[list[Path], list[int],
                                                                  list[str], list[Path]]:
    """(files, labels, class_names, skipped) for a folder of class sub-folders.

    Every file is decoded once here, so a bad file is named before training starts
    rather than crashing a DataLoader worker an hour in.
    """
    root = Path(root)
    if not root.is_dir():
        raise E2EError(f"image folder {root} does not exist")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise E2EError(f"{root} must hold one sub-folder per class (at least two), e.g. "
                       f"{root}/cat/1.png and {root}/dog/2.png; found {classes or 'none'}")
    files, labels, skipped = [], [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            if path.suffix.lower() not in EXTENSIONS:
                problem = f"unsupported extension '{path.suffix}'"
            else:
                problem = check_image(path)
            if problem is not None:
                if not skip_bad:
                    raise E2EError(f"cannot read image {path}: {problem}. Fix or remove it, or "
                                   "set data.skip_bad=true to skip unreadable files and count "
                                   "them.")
                skipped.append(path)
                continue
            files.append(path)
            labels.append(label)
    empty = [c for i, c in enumerate(classes) if i not in set(labels)]
    if empty:
        raise E2EError(f"{root}: class folder(s) with no readable images: {empty}")
    return files, labels, classes, skipped


class ImageFolderDataset(torch.utils.data.Dataset):
    """File-backed: decodes each image when asked (in DataLoader workers)."""

    def __init__(self, files: list[Path], labels: list[int], size: int, channels: int):
        self.files, self.labels, self.size, self.channels = files, labels, size, channels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": load_image(self.files[i], self.size, self.channels),
                "y": torch.tensor(self.labels[i])}
