"""The simulator: gymnasium's CarRacing, made once here with the conventions every part shares.

Frames are the 96x96 RGB observations. An episode is `max_steps` simulator steps (1000, like
gymnasium's registration), of which the first `WARMUP` are the camera's zoom-in: the car
stands still during them (no frame of them is recorded or shown to a network), which costs
every policy the same 5 points. The score is the simulator's own reward: +1000/N per track
tile first touched, -0.1 per step.

Looks: a track (its seed) can be drawn in the usual colours or in a randomized look, the
simulator's own `domain_randomize` (road, grass and background in other colours). A
randomized look is drawn from its own seed (LOOK_SEED of the track's), then the track from
the track's seed with the colours kept (`reset_env`): the same track in either look, the
same physics, and each (seed, look) pair the same frames every time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from e2e.errors import DatasetMissing, E2EError

INSTALL = 'pip install "e2e[driving]"   (or just the simulator: pip install "gymnasium[box2d]")'
FRAME_SHAPE = (96, 96, 3)  # H, W, RGB as CarRacing renders them
HUD_ROWS = 12  # bottom rows: speed and steering bars, which would leak the label
WARMUP = 50  # zoom-in steps at the start of each episode (1 s at 50 FPS)
MAX_STEPS = 1000
USUAL, RANDOM = "usual", "random"  # the looks a track is drawn in
LOOKS = (USUAL, RANDOM)
LOOK_TAG = 7919  # mixed with a track's seed into the seed its randomized colours come from


def make_env(fast: bool = True, look: str = USUAL):
    """A CarRacing-v3 environment with continuous actions; needs no display. `fast` draws
    the same frames faster (see `fast_render`); `look` RANDOM makes one that can draw
    randomized colours (reset it with `reset_env`)."""
    try:
        from gymnasium.envs.box2d.car_racing import CarRacing
    except ImportError as e:  # gymnasium itself, or its Box2D / pygame extras
        raise DatasetMissing(f"the CarRacing simulator ({e.name or 'gymnasium[box2d]'})",
                             INSTALL) from None
    check_look(look)
    env = CarRacing(continuous=True, domain_randomize=look == RANDOM)
    if fast:
        fast_render(env)
    return env


def check_look(look: str) -> str:
    if look not in LOOKS:
        raise E2EError(f"a track's look is one of {', '.join(LOOKS)}, got '{look}'")
    return look


def look_seed(seed: int) -> int:
    """The seed the randomized colours of track `seed` are drawn from (not the track's own:
    its first random draws also shape the track)."""
    return int(np.random.SeedSequence([seed, LOOK_TAG]).generate_state(1)[0])


def reset_env(env, seed: int, look: str = USUAL) -> np.ndarray:
    """Start track `seed` in `look` (made by make_env(look=look)); the first observation.

    Randomized: gymnasium draws the colours from the generator a reset seeds, before the
    track, so a first reset with the look's seed draws them and a second one with
    `randomize: False` builds the track of `seed` in them: the track is the usual look's."""
    if check_look(look) == RANDOM:
        if not env.unwrapped.domain_randomize:
            raise E2EError("reset_env(look='random') needs make_env(look='random')")
        env.reset(seed=look_seed(seed), options={"randomize": True})
        obs, _ = env.reset(seed=seed, options={"randomize": False})
    else:
        obs, _ = env.reset(seed=seed)
    return obs


def random_look(seed: int, share: float) -> bool:
    """Whether track `seed` is drawn in a randomized look when a `share` of tracks are: a
    property of the seed alone (a Weyl sequence), so any run of consecutive seeds holds
    that share to within one track, and a track keeps its look whatever list it is in."""
    return share > 0 and (seed * 0.6180339887498949) % 1.0 < share


def tracks(seeds: list[int], share: float = 0.0, look: str | None = None
           ) -> list[tuple[int, str]]:
    """(seed, look) per seed: all in `look` if given, else a `share` of them randomized."""
    if look is not None:
        return [(s, check_look(look)) for s in seeds]
    return [(s, RANDOM if random_look(s, share) else USUAL) for s in seeds]


def track_name(seed: int, look: str) -> str:
    """How a (seed, look) pair is named in metrics and file names: 1003, random-1003."""
    return str(seed) if look == USUAL else f"{look}-{seed}"


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
    look: str = USUAL  # the colours it was drawn in (USUAL or RANDOM)

    @property
    def tiles_fraction(self) -> float:
        return self.tiles / self.track_tiles


def off_track(env) -> bool:
    """True when no wheel touches a road tile."""
    return not any(w.tiles for w in env.unwrapped.car.wheels)


def parse_seeds(text: str) -> list[int]:
    """'0-9' -> 0..9; '1,5,7-8' -> [1, 5, 7, 8]."""
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


def fast_render(env) -> None:
    """Draw the road of `env` (a CarRacing) ~3x faster, pixel for pixel the same frames.

    CarRacing's `_render_road` rotates each of its ~700 polygons' corners in Python every
    step, only to skip the ~90% that lie off screen; rendering is ~95% of a step. Here the
    corners are transformed with numpy in one go (the same arithmetic: pygame's rotation
    of the angle reduced to [0, 2pi), cos x - sin y), the same polygons are culled by the
    same bounds test and the survivors drawn by the same gfxdraw calls in the same order.
    `tests/test_driving.py` checks the frames are identical to gymnasium's own."""
    import math

    from gymnasium.envs.box2d import car_racing as cr
    from pygame import gfxdraw

    u = env.unwrapped
    original = u._render_road
    cache: dict = {}

    def polygons():
        if cache.get("road") is not u.road_poly:  # a new track after reset
            b, g = cr.PLAYFIELD, cr.GRASS_DIM
            grass = [[(g * x + g, g * y), (g * x, g * y), (g * x, g * y + g),
                      (g * x + g, g * y + g)]
                     for x in range(-20, 20, 2) for y in range(-20, 20, 2)]
            polys = [np.array(p, dtype=np.float64) for p in grass]
            colors: list = [u.grass_color] * len(grass)
            for poly, color in u.road_poly:
                polys.append(np.array([(p[0], p[1]) for p in poly], dtype=np.float64))
                colors.append(color)  # live: a tile's colour changes once it is visited
            cache.update(road=u.road_poly, polys=np.stack(polys), colors=colors,
                         field=[(b, b), (b, -b), (-b, -b), (-b, b)])
        return cache["polys"], cache["colors"], cache["field"]

    def render_road(zoom, translation, angle):
        a = math.fmod(angle, 2 * math.pi)
        a += 2 * math.pi if a < 0 else 0.0
        eps = 1e-6  # pygame special-cases quarter turns: leave those frames to gymnasium
        if math.fmod(a + eps, math.pi / 2) < 2 * eps:
            return original(zoom, translation, angle)
        polys, colors, field = polygons()
        u._draw_colored_polygon(u.surf, field, u.bg_color, zoom, translation, angle, clip=False)
        s, c = math.sin(a), math.cos(a)
        x = (c * polys[..., 0] - s * polys[..., 1]) * zoom + translation[0]
        y = (s * polys[..., 0] + c * polys[..., 1]) * zoom + translation[1]
        m = cr.MAX_SHAPE_DIM
        inside = ((x >= -m) & (x <= cr.WINDOW_W + m) & (y >= -m) & (y <= cr.WINDOW_H + m)).any(1)
        pts = np.stack([x, y], -1)
        for i in np.flatnonzero(inside):
            poly = [tuple(p) for p in pts[i].tolist()]
            color = [int(v) for v in colors[i]]
            gfxdraw.aapolygon(u.surf, poly, color)
            gfxdraw.filled_polygon(u.surf, poly, color)

    u._render_road = render_road
