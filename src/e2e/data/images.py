"""A user's folder of images, one sub-folder per class (PNG, JPEG, BMP, GIF, WebP).

Two layouts: ROOT/<class>/... (validation and test are held out at random), or torchvision's
ROOT/train/<class>/..., with ROOT/val/<class>/... (or valid/, validation/) and
ROOT/test/<class>/... used as given; a split that is not there is held out from train.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from e2e.data.splits import split_indices
from e2e.errors import E2EError

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val",
              "test": "test"}


# Decoded pixels per image, for every reader of a user's images (training folders, `e2e
# predict`, the demo server's default): 16 MP is a 4000 x 4000 photo; a few hundred bytes of
# PNG can claim 400 MP, which Pillow would decode after a mere warning below 179 MP.
MAX_PIXELS = 16_000_000


class TooManyPixels(E2EError):
    pass


def open_image(path: str | Path | BinaryIO, size: int | None = None,
               max_pixels: int | None = None) -> Image.Image:
    """Image.open, refusing (TooManyPixels) an image over `max_pixels` (default MAX_PIXELS) by
    its header, before decoding anything. A JPEG over the limit is decoded at a reduced scale
    when one fits (its DCT makes 1/2 to 1/8 scale free) and still covers `size`."""
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    what = f"image {path}" if isinstance(path, (str, Path)) else "the image"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's bomb warning: the check below decides
        try:
            img = Image.open(path)
        except Image.DecompressionBombError as e:  # over twice Image.MAX_IMAGE_PIXELS
            raise TooManyPixels(f"{what}: {str(e).rstrip('.')}; the limit is "
                                f"{limit / 1e6:g} megapixels") from None
    width, height = img.size
    if width * height > limit and img.format == "JPEG" and size:
        img.draft(img.mode, (size, size))
        width, height = img.size
    if width * height > limit:
        img.close()
        raise TooManyPixels(f"{what} is {width} x {height} pixels "
                            f"({width * height / 1e6:.1f} megapixels); the limit is "
                            f"{limit / 1e6:g} megapixels")
    return img


def load_image(path: str | Path | BinaryIO, size: int, channels: int) -> torch.Tensor:
    """Any image file (or open binary file) -> uint8 tensor C x size x size."""
    path = Path(path) if isinstance(path, str) else path
    try:
        with open_image(path, size) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError,
            ValueError) as e:
        # no advice about data.skip_bad here: `e2e predict` reads through this too
        raise E2EError(f"cannot read image {path}: {e}; fix or remove the file") from None
    array = array[None] if channels == 1 else array.transpose(2, 0, 1)
    return torch.from_numpy(array.copy())


def check_image(path: Path, size: int = 256) -> str | None:
    """None if `path` decodes as an image within MAX_PIXELS, else the reason it does not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_image(path, size) as img:
                img.load()
    except (TooManyPixels, UnidentifiedImageError, Image.DecompressionBombError, OSError,
            SyntaxError, ValueError) as e:
        return str(e)
    return None


def split_dirs(root: Path) -> dict[str, Path] | None:
    """{"train": ROOT/train, "val": ..., "test": ...} for torchvision's layout, else None."""
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    named = [d for d in subdirs if d.name.lower() in SPLIT_DIRS]
    if not any(SPLIT_DIRS[d.name.lower()] == "train" for d in named):
        return None  # class folders (a class may well be called "test")
    others = [d.name for d in subdirs if d not in named]
    if others:
        raise E2EError(f"{root} mixes split folders ({', '.join(d.name for d in named)}) with "
                       f"other folders {others}; put the class folders inside {root}/train/ "
                       "(and val/, test/), or rename the train/ folder")
    splits: dict[str, Path] = {}
    for d in named:
        split = SPLIT_DIRS[d.name.lower()]
        if split in splits:
            raise E2EError(f"{root} has two {split} folders, {splits[split].name}/ and "
                           f"{d.name}/; keep one")
        splits[split] = d
    return splits


def split_image_folder(root: str | Path, skip_bad: bool, val_fraction: float,
                       test_fraction: float, seed: int
                       ) -> tuple[dict[str, tuple[list[Path], list[int]]], list[str], list[Path]]:
    """({"train"|"val"|"test": (files, labels)}, class_names, skipped) for either layout.

    Class names come from the training folders; a val/ or test/ class folder that train/
    lacks is an error. What is not given is held out from train at random (test first).
    """
    root = Path(root)
    if not root.is_dir():
        raise E2EError(f"image folder {root} does not exist")
    given = split_dirs(root) or {"train": root}
    files, labels, classes, skipped = scan_class_folder(given["train"], skip_bad)
    parts: dict[str, tuple[list[Path], list[int]]] = {}
    for name in ("val", "test"):
        if name in given:
            f, lab, _, bad = scan_class_folder(given[name], skip_bad, classes)
            parts[name], skipped = (f, lab), skipped + bad
    train, val, test = split_indices(len(files), 0 if "val" in parts else val_fraction,
                                     0 if "test" in parts else test_fraction, seed,
                                     "readable images", str(given["train"]))

    def pick(idx: list[int]) -> tuple[list[Path], list[int]]:
        return [files[i] for i in idx], [labels[i] for i in idx]
    parts.setdefault("test", pick(test))
    parts.setdefault("val", pick(val))
    parts["train"] = pick(train)
    return parts, classes, skipped


def scan_class_folder(root: str | Path, skip_bad: bool, classes: list[str] | None = None
                      ) -> tuple[list[Path], list[int], list[str], list[Path]]:
    """(files, labels, class_names, skipped) for a folder of class sub-folders.

    With `classes` (those of the training split), labels follow that list and a folder of
    another name is an error. Every file is decoded once here, so a bad file is named
    before training starts rather than crashing a DataLoader worker an hour in.
    """
    root = Path(root)
    if not root.is_dir():
        raise E2EError(f"image folder {root} does not exist")
    found = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if classes is None:
        classes = found
        if len(classes) < 2:
            raise E2EError(f"{root} must hold one sub-folder per class (at least two), e.g. "
                           f"{root}/cat/1.png and {root}/dog/2.png; found {classes or 'none'}")
    else:
        unknown = [c for c in found if c not in classes]
        if unknown or not found:
            raise E2EError(f"{root}: class folder(s) {unknown or 'none'} do not match the "
                           f"training classes {classes}; give it folders named like train's")
    files, labels, skipped = [], [], []
    for name in found:
        label = classes.index(name)
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
    empty = [c for c in found if classes.index(c) not in set(labels)]
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
