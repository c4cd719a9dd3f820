"""The simulator: gymnasium's CarRacing, made once here with the conventions every part shares.

Frames are the 96x96 RGB observations. An episode is `max_steps` simulator steps (1000, like
gymnasium's registration), of which the first `WARMUP` are the camera's zoom-in: the car
stands still during them (no frame of them is recorded or shown to a network), which costs
every policy the same 5 points. The score is the simulator's own reward: +1000/N per track
tile first touched, -0.1 per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from e2e.errors import DatasetMissing

INSTALL = 'pip install "e2e[driving]"   (or just the simulator: pip install "gymnasium[box2d]")'
FRAME_SHAPE = (96, 96, 3)  # H, W, RGB as CarRacing renders them
HUD_ROWS = 12  # bottom rows: speed and steering bars, which would leak the label
WARMUP = 50  # zoom-in steps at the start of each episode (1 s at 50 FPS)
MAX_STEPS = 1000


def make_env():
    """A CarRacing-v3 environment with continuous actions; needs no display."""
    try:
        from gymnasium.envs.box2d.car_racing import CarRacing
    except ImportError as e:  # gymnasium itself, or its Box2D / pygame extras
        raise DatasetMissing(f"the CarRacing simulator ({e.name or 'gymnasium[box2d]'})",
                             INSTALL) from None
    return CarRacing(continuous=True)


@dataclass
class Episode:
    """How one closed-loop drive went."""

    seed: int
    score: float
    tiles: int  # track tiles touched
    track_tiles: int
    lap: bool  # lap completed
    steps: int
    offtrack_steps: int  # steps with no wheel on the road

    @property
    def tiles_fraction(self) -> float:
        return self.tiles / self.track_tiles


def off_track(env) -> bool:
    """True when no wheel touches a road tile."""
    return not any(w.tiles for w in env.unwrapped.car.wheels)


def parse_seeds(text: str) -> list[int]:
    """'0-9' -> 0..9; '1,5,7-8' -> [1, 5, 7, 8]."""
    from e2e.errors import E2EError

    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1) if not part.startswith("-") else (part, "")
                seeds.extend(range(int(a), int(b) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise E2EError(f"seeds must look like 0-19 or 1,5,7-8, got '{text}'") from None
    if not seeds:
        raise E2EError(f"no seeds in '{text}'")
    return seeds


def step_env(env, action: np.ndarray):
    obs, reward, terminated, truncated, info = env.step(np.asarray(action, dtype=np.float64))
    return obs, float(reward), bool(terminated or truncated), info
