"""What a vision model knows about its data: classes, image shape, pixel statistics."""

from __future__ import annotations

from dataclasses import dataclass

from e2e.errors import E2EError
from e2e.tasks.base import Info


@dataclass(kw_only=True)
class VisionInfo(Info):
    classes: list[str]
    channels: int
    size: list[int]  # height, width
    mean: list[float]  # per channel, of the training pixels in [0, 1]
    std: list[float]
    flip: bool = False  # a mirrored image keeps its class (training and test-time flips)
    skipped_files: int = 0  # unreadable images left out of a folder source

    def check_data(self, data: Info) -> None:
        if not isinstance(data, VisionInfo) or data.classes != self.classes:
            theirs = data.classes if isinstance(data, VisionInfo) else None
            raise E2EError(f"the data's classes {theirs} differ from the model's "
                           f"{self.classes}")

    def describe(self) -> str:
        return f"data: {self.source}  classes: {len(self.classes)}"
