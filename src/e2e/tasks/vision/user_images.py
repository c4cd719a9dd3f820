"""A folder of the user's own images, scored by a trained model (`e2e evaluate RUN --data DIR`).

The folder holds one sub-folder per class, named like the model's classes (a '/' in a class
name becomes '-': T-shirt-top/ for 'T-shirt/top'); a folder may hold only some of them. Every
image is a test image, decoded and resized to the model's input (its size and channels), so
photos of any size score against a model trained on 28 x 28 grayscale Fashion-MNIST.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from e2e.data.images import ImageFolderDataset, scan_class_folder, split_dirs
from e2e.tasks.base import Splits
from e2e.tasks.vision.corruptions import folder_name
from e2e.tasks.vision.info import VisionInfo


def folder_for_model(path: Path, info: VisionInfo, skip_bad: bool) -> Splits:
    """Every image under PATH (or under PATH/test/ in torchvision's layout) as the model sees
    it; the three splits are the same images."""
    given = split_dirs(path) or {}
    root = given.get("test", path)
    files, labels, _, skipped = scan_class_folder(root, skip_bad,
                                                  [folder_name(c) for c in info.classes])
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s) in {root}, e.g. {skipped[0]}")
    images = ImageFolderDataset(files, labels, info.size[0], info.channels)
    return Splits(images, images, images,
                  dataclasses.replace(info, source=str(path), skipped_files=len(skipped)))
