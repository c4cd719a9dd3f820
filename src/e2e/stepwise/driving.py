"""`e2e compare driving`: the end-to-end PilotNet vs the modular pipeline, on the same tracks.

End to end: behavior cloning through the engine (`e2e.api.train`) on the first k recorded
expert episodes, for nested k (the data curve). Stepwise: perception -> planning -> control
designed by hand (e2e.stepwise.modular_driver), which learns nothing: one row with the usual
look's colour thresholds, one whose road colour is read from the frame. All drive the same
unseen test tracks in the same closed loop (e2e.tasks.driving.closed_loop), in the usual look
and again in randomized colours (data.test_random_seeds), and are scored the same way;
quality is the mean closed-loop score in the usual look, the details table has both looks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from e2e import api
from e2e.config import Config, with_overrides
from e2e.data.driving_records import read_episode, recording_files
from e2e.errors import E2EError
from e2e.stepwise.modular_driver import (
    AdaptiveConfig,
    AdaptiveModularDriver,
    ModularConfig,
    ModularDriver,
)
from e2e.stepwise.report import CompareOptions, Comparison, Metric, Row, nested_sizes
from e2e.tasks import load_config
from e2e.tasks.driving.closed_loop import ExpertPolicy, NetPolicy, drive, summarize
from e2e.tasks.driving.sim import RANDOM, USUAL, make_env, track_name
from e2e.tasks.driving.task import split_tracks


@dataclass
class DrivingCompare:
    """What the comparison records when `--data` names no recordings, and its quick budget."""

    episodes: int = 201  # expert episodes recorded on training tracks 0..N-1 ...
    quick_episodes: int = 6  # ... or this many with --quick
    # the data curve: the network trained on the first k expert tracks, for each k (those
    # above the recorded training tracks dropped); --quick uses the shared --fractions
    sizes: tuple[int, ...] = (5, 10, 25, 50, 100, 200)
    # --quick: shorter training, one validation track, two test tracks (~10 min on 2 cores)
    quick_overrides: tuple[str, ...] = ("train.epochs=3", "data.val_seeds=500",
                                        "data.test_seeds=1000-1001", "data.dagger_rounds=0")
    # The full comparison trains with the default recipe (bench/driving.py's) by behavior
    # cloning alone, every size for the same number of optimizer steps (about what 8 epochs
    # of 40 tracks take), so the curve shows what more data buys at a fixed cost rather than
    # what more epochs buy; every row drives the benchmark's 100 unseen tracks (about 2 hours
    # on one core in all).
    full_overrides: tuple[str, ...] = ("train.max_steps=2000", "data.test_seeds=1000-1099",
                                       "data.dagger_rounds=0")
    timing_frames: int = 200  # frames the inference time per frame is measured on


def jobs(opts: CompareOptions, settings: DrivingCompare | None = None) -> int:
    s = settings or DrivingCompare()
    record = 0 if opts.data else 1
    if opts.data:
        try:
            n = len(recording_files([opts.data]))
        except E2EError:
            return 1  # compare_driving reports the missing recordings
    else:
        n = s.quick_episodes if opts.quick else s.episodes
    held_out = max(0, min(_config(opts, s).data.offline_val_episodes, n - 1))
    return record + len(_sizes(opts, s, n - held_out)) + 2  # + the two modular pipelines


def _sizes(opts: CompareOptions, s: DrivingCompare, n: int) -> list[int]:
    if opts.quick:
        return nested_sizes(n, opts.fractions, minimum=1)
    return [k for k in s.sizes if k <= n] or [n]


def _config(opts: CompareOptions, s: DrivingCompare) -> Config:
    base = s.quick_overrides if opts.quick else s.full_overrides
    cfg = load_config(None, "driving", [*base, *opts.overrides])
    # The randomized-look column drives the usual column's test tracks in other colours (the
    # simulator's domain_randomize): the same roads, so the columns compare track by track;
    # --set data.test_random_seeds=... picks others ("" = no such column).
    if not any(o.split("=", 1)[0].strip() == "data.test_random_seeds" for o in opts.overrides):
        cfg.data.test_random_seeds = cfg.data.test_seeds
    return cfg


def compare_driving(opts: CompareOptions, bar: tqdm,
                    settings: DrivingCompare | None = None) -> Comparison:
    s = settings or DrivingCompare()
    make_env().close()  # no simulator: DatasetMissing, and the report skips driving
    root = opts.out / "driving"
    cfg = _config(opts, s)
    d = cfg.data
    if opts.data:
        source = Path(opts.data)
    else:
        from e2e.tasks.driving.record import record

        source = root / "recordings"
        n = s.quick_episodes if opts.quick else s.episodes
        bar.set_description(f"driving: the expert records {n} training tracks")
        record(source, list(range(n)), d.workers, d.max_steps, quiet=True)
        bar.update()
    cfg = with_overrides(cfg, f"data.source={source}")
    files = recording_files([source])
    held_out = max(0, min(d.offline_val_episodes, len(files) - 1))
    train_files = files[: len(files) - held_out]
    frames_per_episode = [len(read_episode(f)[1]) for f in train_files]
    tracks = split_tracks(d, "test_seeds", "test_random_seeds")  # (seed, look) pairs
    looks = list(dict.fromkeys(look for _, look in tracks))

    rows, details = [], []
    sample = read_episode(files[-1])[0][: s.timing_frames]  # timing frames, same for both
    for k in _sizes(opts, s, len(train_files)):
        n_frames = sum(frames_per_episode[:k])
        bar.set_description(f"driving: end to end on {k} episodes ({n_frames} frames)")
        out = root / f"e2e-{k}-episodes"
        r = api.train(config=with_overrides(cfg, f"data.episodes={k}"), out=out, quiet=True)
        model = api.load(out)
        infer = _ms_per_frame(NetPolicy(model.model, model.info), sample)
        side = "end to end (PilotNet, behavior cloning)"
        rows.append(Row(side, n_frames, r.get("test/score_usual", r["test/score"]),
                        r["train_seconds"], infer, f"{r['parameters']:,} parameters"))
        details.append((f"{side}, {k} episode{'s' * (k != 1)}", _by_look(r, tracks, looks)))
        bar.update()

    drive_seconds, n_fixed = 0.0, len(fields(ModularConfig))
    for side, driver, size in (
            ("stepwise: road mask -> centre line -> PD steering (no learning)",
             ModularDriver(ModularConfig()), f"{n_fixed} hand-set parameters"),
            ("stepwise, adaptive: road colour read from the frame -> centre line -> PD "
             "steering (no learning)", AdaptiveModularDriver(ModularConfig()),
             f"{n_fixed} + {len(fields(AdaptiveConfig))} hand-set parameters")):
        bar.set_description(f"driving: {driver.name} (perception, planning, control)")
        started = time.time()
        episodes, _ = drive(driver, tracks, d.max_steps, d.workers)
        drive_seconds += time.time() - started
        m = _summaries(episodes, looks)
        rows.append(Row(side, 0, m[USUAL]["score"], 0.0, _ms_per_frame(driver, sample), size))
        details.append((side, m))
        bar.update()

    # The teacher on the same tracks, for scale (seconds: it reads the state, nothing renders)
    expert = _summaries(drive(ExpertPolicy(), tracks, d.max_steps, d.workers)[0], looks)
    details.append(("privileged expert (the teacher: reads the simulator's state)", expert))

    budget = ("**--quick**: a small version (few episodes, one validation track, two test "
              "tracks, short training), meant to finish in about 10 minutes on 2 cores; "
              "its numbers are noisy. " if opts.quick else "")
    where = f"`{opts.data}`" if opts.data else f"recorded by the expert into `{source}`"
    notes = (
        f"{budget}Data: CarRacing-v3 expert recordings ({where}), {len(train_files)} training "
        f"episodes ({sum(frames_per_episode):,} frames, the zoom-in left out)"
        + (f" and {held_out} held out for the offline loss" if held_out else "")
        + ". End to end: PilotNet trained by behavior cloning for "
        + (f"{cfg.train.max_steps} optimizer steps (batch {cfg.train.batch_size}) at every size"
           if cfg.train.max_steps else f"{cfg.train.epochs} epochs")
        + " on the first k episodes (nested prefixes, sorted by seed; training examples = their "
        f"frames), `best` picked by driving validation tracks {d.val_seeds}. Stepwise: a road "
        "mask by color from the frame alone (HUD cropped like the network's input), the "
        "road's centre line ahead as the plan, PD steering toward a look-ahead point and a "
        "speed rule from the HUD's speed bar; nothing is learned and it never reads the "
        "simulator's state; its adaptive version reads the road's colour from the patch "
        "just ahead of the car instead of fixed thresholds. All drive the same unseen test "
        f"tracks {d.test_seeds} ({sum(look == USUAL for _, look in tracks)} tracks, up to "
        f"{d.max_steps} steps each) in the same closed loop"
        + (f", and tracks {d.test_random_seeds} again in randomized colours (the simulator's "
           "domain_randomize, colours drawn from a seed derived from the track's: the "
           "randomized-look column)" if RANDOM in looks else "")
        + "; quality = mean simulator score in the usual look (+1000/N per tile, -0.1 per "
        "step; 900 counts as solved; the privileged expert, the teacher, scores "
        f"{expert[USUAL]['score']:.1f} on these tracks: last row below). Training time "
        "includes the validation drives; the modular pipelines' test drives took "
        f"{drive_seconds:.0f} s. Inference = one policy step on one frame, on the CPU.\n\n"
        + _details_table(details, looks))
    return Comparison(rows, notes, Metric("mean closed-loop score", higher_is_better=True))


def _ms_per_frame(policy, frames: np.ndarray) -> float:
    if hasattr(policy, "reset"):
        policy.reset()
    started = time.perf_counter()
    for f in frames:
        policy.act(f)
    return 1000 * (time.perf_counter() - started) / len(frames)


def _summaries(episodes, looks: list[str]) -> dict[str, dict]:
    """summarize() of each look's episodes."""
    return {look: summarize([e for e in episodes if e.look == look]) for look in looks}


def _by_look(results: dict, tracks: list[tuple[int, str]], looks: list[str]) -> dict:
    """A trained run's test numbers per look, from its per-track results."""
    out = {}
    for look in looks:
        names = [track_name(s, lk) for s, lk in tracks if lk == look]
        scores = np.array([results[f"test/track_score/{n}"] for n in names])
        out[look] = {"score": float(scores.mean()), "score_min": float(scores.min()),
                     "tiles": float(np.mean([results[f"test/track_tiles/{n}"] for n in names])),
                     "laps": float(np.mean([results[f"test/track_lap/{n}"] for n in names]))}
    return out


def _details_table(details: list[tuple[str, dict]], looks: list[str]) -> str:
    """One row per system: mean, min score, tiles and laps in each look (the usual first)."""
    titles = {USUAL: "usual look", RANDOM: "randomized looks"}
    head = " | ".join(f"{titles[look]}: mean score | min score | tiles covered | laps completed"
                      for look in looks)
    lines = [f"| system | {head} |", "| --- |" + " --- | --- | --- | --- |" * len(looks)]
    for name, by_look in details:
        cells = " | ".join(f"{m['score']:.1f} | {m['score_min']:.1f} | {100 * m['tiles']:.1f}% | "
                           f"{100 * m['laps']:.0f}%" for m in (by_look[look] for look in looks))
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)
