"""What a driving network knows about its data: the camera frame's shape and how many
frames, how far apart, it sees at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from e2e.tasks.base import Info


@dataclass(kw_only=True)
class DrivingInfo(Info):
    frame_shape: list[int] = field(default_factory=list)  # H x W x 3, as the simulator renders
    episodes: int = 0  # recorded episodes trained on
    frames: int = 1  # stacked frames per input: the current one and frames - 1 earlier ...
    frame_gap: int = 1  # ... this many simulator steps apart
    # Why there is no training data (no recordings yet): driving still works, training not.
    missing: str = ""
