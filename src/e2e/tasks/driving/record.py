"""`e2e data driving`: the expert drives training tracks and its frames and actions are saved."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from e2e.data.driving_records import FRAME_SHAPE, write_metadata
from e2e.engine.progress import Ticker
from e2e.errors import E2EError
from e2e.tasks.driving.closed_loop import ExpertPolicy, NoisyExpertPolicy, drive
from e2e.tasks.driving.config import STEERING_NOISE
from e2e.tasks.driving.expert import ExpertConfig
from e2e.tasks.driving.sim import HUD_ROWS, MAX_STEPS, WARMUP, track_name, tracks


def record(out: str | Path, seeds: list[int], workers: int = 2, max_steps: int = MAX_STEPS,
           quiet: bool = False, noise: float = STEERING_NOISE, random_looks: float = 0.0,
           look: str | None = None) -> list:
    """One expert episode per seed, written to OUT/episode-SEED.npz (episode-SEED-random.npz
    for a track drawn in randomized colours); returns the episodes.

    With `noise` > 0 the executed steering is perturbed (NoisyExpertPolicy) and the
    expert's clean actions are the labels. A share `random_looks` of the tracks (a property
    of each seed: sim.random_look), or all of them in `look` if given, are drawn in a
    randomized look; the labels do not depend on it."""
    if max_steps <= WARMUP:  # nothing would be written but the metadata
        raise E2EError(f"--max-steps {max_steps} records no frame: the first {WARMUP} steps "
                       f"(the camera zooming in) are skipped; use more than {WARMUP} "
                       f"(default {MAX_STEPS})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ticker = Ticker(len(seeds), "recording", "tracks", interval=0, enabled=not quiet)

    def show(ep):
        ticker.update(note=f"track {track_name(ep.seed, ep.look)}: score {ep.score:.1f}, "
                           f"{ep.steps - WARMUP} frames, lap {'yes' if ep.lap else 'no'}")
    with ticker:
        driver = NoisyExpertPolicy(noise) if noise > 0 else ExpertPolicy()
        episodes, _ = drive(driver, tracks(seeds, random_looks, look), max_steps, workers,
                            record_dir=out, progress=show)
    write_metadata(out, {"simulator": "gymnasium CarRacing-v3", "driver": driver.name,
                         "steering_noise": noise, "random_looks": random_looks,
                         "expert": asdict(ExpertConfig()), "frame_shape": list(FRAME_SHAPE),
                         "hud_rows": HUD_ROWS, "warmup_steps_skipped": WARMUP,
                         "max_steps": max_steps, "actions": ["steer", "gas", "brake"],
                         "episodes": {track_name(e.seed, e.look): asdict(e) for e in episodes}})
    return episodes
