"""Driving the stepwise way: perception -> planning -> control, designed by hand, no learning.

The counterpart of the end-to-end PilotNet (e2e.tasks.driving.task). It sees exactly what the
network sees, the 96x96 camera frame, and nothing of the simulator's state (that would make it
the privileged expert):

- perception: a road mask by color (the road is gray, R = G = B around 100; the curbs are red
  and white; the grass is green), from the frame with the HUD rows cropped as the network's
  input is. The speed is read from the HUD's speed bar: its brightness grows with the speed.
- planning: the road's centre column in each row ahead of the car, following the stretch of
  road connected to the car row by row (so a distant part of the track that is also in view
  does not pull the plan); the target is the centre a speed-dependent number of rows ahead, and
  the speed target falls as the road ahead bends away from the car's axis.
- control: a PD controller on the angle to the target steers; a bang-bang rule with a dead band
  on speed gives gas or brake.

The adaptive version (AdaptiveModularDriver) differs in perception alone: the road's colour
is not fixed but read from the frame, from the patch just ahead of the car (the car drives on
road), and a pixel is road when its colour lies nearer that reference than half the way to
the nearest other colour in view; so it finds the road in any colours the simulator draws
(`domain_randomize`), as long as road and grass differ.

It implements the closed loop's policy interface (`act(obs, expert_action)`, `reset()`), so
`e2e.tasks.driving.closed_loop.drive` scores it on the same tracks, the same way, as the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from e2e.errors import E2EError
from e2e.tasks.driving.sim import FRAME_SHAPE, HUD_ROWS

CAR_ROW, CAR_COL = 70.0, 47.5  # the car's centre in the frame (the camera follows it)
CAR_BOX = (slice(64, 78), slice(43, 53))  # its pixels (red/black), not road
SPEED_COLS = slice(12, 14)  # the HUD's speed bar
SPEED_PER_PX = 20.0  # m/s per fully lit bar pixel (bar height = 0.048 px per m/s)


@dataclass
class ModularConfig:
    lookahead_rows: float = 14.0  # target row distance ahead of the car at standstill ...
    lookahead_per_speed: float = 0.2  # ... plus this many rows per m/s
    kp: float = 1.6  # steer per radian of angle to the target
    kd: float = 4.0  # steer per radian of change in that angle per step (damping)
    v_max: float = 100.0  # m/s on a straight
    v_min: float = 40.0  # m/s in the sharpest bend
    bend_slow: float = 1.2  # m/s less per pixel the far road centre sits off the car's axis
    far_rows: int = 54  # how many rows ahead the road centre tells how much the road bends
    brake: float = 0.4  # brake when over the target by more than `band` m/s
    band: float = 4.0


def road_mask(frame: np.ndarray) -> np.ndarray:
    """rows x cols bool: road (gray asphalt, or red/white curbs) in the frame above the HUD."""
    f = frame[: frame.shape[0] - HUD_ROWS].astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    gray = (np.abs(r - g) < 12) & (np.abs(g - b) < 12) & (r > 80) & (r < 130)
    curb = (r > 200) & (((g < 60) & (b < 60)) | ((g > 200) & (b > 200)))
    mask = gray | curb
    mask[CAR_BOX] = True  # under the car is road as far as planning is concerned
    return mask


AHEAD = (slice(54, 64), slice(44, 52))  # the patch of road just ahead of the car's nose


@dataclass
class AdaptiveConfig:
    """How the adaptive road mask sets its colour threshold from the frame."""

    # the reference follows the patch ahead (tiles differ by a few levels, visited ones
    # change colour) only while that patch is uniform and near it: off the road, the patch
    # is grass, and the reference must not become grass
    follow: float = 0.2  # share of the new patch colour taken in per frame
    follow_within: float = 30.0  # RGB distance within which the patch counts as road
    uniform: float = 10.0  # mean distance of the patch's pixels to their median
    # road = nearer the reference than this share of the distance to the nearest other colour
    # in view (the 25th percentile of the distances over `far` from it), kept within bounds
    share: float = 0.5
    far: float = 15.0
    lowest: float = 8.0
    highest: float = 60.0


def adaptive_road_mask(frame: np.ndarray, ref: np.ndarray, c: AdaptiveConfig | None = None
                       ) -> np.ndarray:
    """rows x cols bool like road_mask, for road of colour `ref` (RGB) in any look: a pixel
    is road when nearer `ref` than a threshold set by how far the other colours in this frame
    lie from it (or a red/white curb)."""
    c = c or AdaptiveConfig()
    f = frame[: frame.shape[0] - HUD_ROWS].astype(np.float32)
    dist = np.sqrt(((f - ref) ** 2).sum(-1))
    other = dist[dist > c.far]
    gap = float(np.percentile(other, 25)) if other.size else c.highest / c.share
    mask = dist < float(np.clip(c.share * gap, c.lowest, c.highest))
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    mask |= (r > 200) & (((g < 60) & (b < 60)) | ((g > 200) & (b > 200)))  # curbs: fixed colours
    mask[CAR_BOX] = True
    return mask


def road_colour(frame: np.ndarray) -> tuple[np.ndarray, float]:
    """The median colour of the patch just ahead of the car, and how uniform it is (the mean
    distance of its pixels to that median)."""
    patch = frame[AHEAD].reshape(-1, 3).astype(np.float32)
    median = np.median(patch, 0)
    return median, float(np.sqrt(((patch - median) ** 2).sum(-1)).mean())


def hud_speed(frame: np.ndarray) -> float:
    """Speed in m/s from the HUD's speed bar: its lit height, anti-aliased pixels counted part."""
    bar = frame[frame.shape[0] - HUD_ROWS:, SPEED_COLS].astype(np.float32)
    return SPEED_PER_PX * float(bar.sum()) / (3 * 253 * bar.shape[1])


def road_centres(mask: np.ndarray, start_row: int = int(CAR_ROW)) -> np.ndarray:
    """Centre column of the road run connected to the car, for each row from the car upward
    (index 0 = the car row); NaN once the road leaves the view or is lost."""
    centres = np.full(start_row + 1, np.nan)
    col = CAR_COL
    for i, row in enumerate(range(start_row, -1, -1)):
        on = mask[row]
        # the run of road pixels containing (or nearest to) the previous row's centre
        cols = np.flatnonzero(on)
        if not len(cols):
            break
        nearest = cols[np.abs(cols - col).argmin()]
        if abs(nearest - col) > 6:  # no road near the path so far: the road turned away
            break
        left, right = nearest, nearest
        while left > 0 and on[left - 1]:
            left -= 1
        while right < len(on) - 1 and on[right + 1]:
            right += 1
        col = (left + right) / 2
        centres[i] = col
    return centres


class ModularDriver:
    """Perception -> planning -> control; a policy for e2e.tasks.driving.closed_loop."""

    def __init__(self, cfg: ModularConfig | None = None, name: str = "modular pipeline"):
        self.cfg, self.name = cfg or ModularConfig(), name
        self.reset()

    def reset(self, seed: int = 0) -> None:
        self.prev_angle: float | None = None

    def mask(self, frame: np.ndarray) -> np.ndarray:
        """Perception: where the road is (the colour thresholds of the usual look)."""
        return road_mask(frame)

    def plan(self, frame: np.ndarray) -> tuple[float, float, float]:
        """(angle to the target in radians, > 0 = right; target speed; measured speed)."""
        c = self.cfg
        speed = hud_speed(frame)
        centres = road_centres(self.mask(frame))
        seen = np.flatnonzero(~np.isnan(centres))
        if not len(seen):  # off the road: aim straight, slowly
            return 0.0, c.v_min, speed
        ahead = min(int(c.lookahead_rows + c.lookahead_per_speed * speed), int(seen[-1]))
        ahead = max(ahead, int(seen[0]))
        angle = math.atan2(centres[ahead] - CAR_COL, max(ahead, 1))
        # the road bends ahead: its centre far ahead is off the axis, or it leaves the view
        far = c.far_rows
        off = abs(centres[far] - CAR_COL) if far <= seen[-1] else 40.0  # the road left the view
        v_target = float(np.clip(c.v_max - c.bend_slow * off, c.v_min, c.v_max))
        return angle, v_target, speed

    def act(self, obs: np.ndarray, expert_action: np.ndarray | None = None) -> np.ndarray:
        if tuple(obs.shape) != FRAME_SHAPE:
            raise E2EError(f"the modular pipeline reads {FRAME_SHAPE} CarRacing frames (its "
                           f"HUD and car position are fixed there), got {tuple(obs.shape)}")
        c = self.cfg
        angle, v_target, speed = self.plan(obs)
        change = 0.0 if self.prev_angle is None else angle - self.prev_angle
        self.prev_angle = angle
        steer = float(np.clip(c.kp * angle + c.kd * change, -1, 1))
        gas, brake = 0.0, 0.0
        if speed < v_target:
            gas = 1.0 if abs(steer) < 0.5 else 0.5  # full gas in a hard turn spins the car
        elif speed > v_target + c.band:
            brake = c.brake
        return np.array([steer, gas, brake], dtype=np.float32)


class AdaptiveModularDriver(ModularDriver):
    """The modular pipeline with the road's colour read from the frame (adaptive_road_mask):
    planning and control are ModularDriver's, unchanged."""

    def __init__(self, cfg: ModularConfig | None = None, adaptive: AdaptiveConfig | None = None,
                 name: str = "adaptive modular pipeline"):
        self.adaptive = adaptive or AdaptiveConfig()
        super().__init__(cfg, name)

    def reset(self, seed: int = 0) -> None:
        super().reset(seed)
        self.ref: np.ndarray | None = None  # the road's colour, learned from the first frame on

    def mask(self, frame: np.ndarray) -> np.ndarray:
        c = self.adaptive
        colour, spread = road_colour(frame)
        if self.ref is None:  # the first frame: the car stands on the road
            self.ref = colour
        elif spread < c.uniform and np.linalg.norm(colour - self.ref) < c.follow_within:
            self.ref = (1 - c.follow) * self.ref + c.follow * colour
        return adaptive_road_mask(frame, self.ref, c)
