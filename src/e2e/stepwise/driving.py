"""`e2e compare driving`: the end-to-end PilotNet vs the modular pipeline, on the same tracks.

End to end: behavior cloning through the engine (`e2e.api.train`) on the first k recorded
expert episodes, for nested k (the data curve). Stepwise: perception -> planning -> control
designed by hand (e2e.stepwise.modular_driver), which learns nothing and is one row. Both
drive the same unseen test tracks in the same closed loop (e2e.tasks.driving.closed_loop) and are
scored the same way; quality is the mean closed-loop score.
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
from e2e.stepwise.modular_driver import ModularConfig, ModularDriver
from e2e.stepwise.report import CompareOptions, Comparison, Metric, Row, nested_sizes
from e2e.tasks import load_config
from e2e.tasks.driving.closed_loop import ExpertPolicy, NetPolicy, drive, summarize
from e2e.tasks.driving.sim import make_env, parse_seeds


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
    return record + len(_sizes(opts, s, n - held_out)) + 1


def _sizes(opts: CompareOptions, s: DrivingCompare, n: int) -> list[int]:
    if opts.quick:
        return nested_sizes(n, opts.fractions, minimum=1)
    return [k for k in s.sizes if k <= n] or [n]


def _config(opts: CompareOptions, s: DrivingCompare) -> Config:
    if opts.quick:
        return load_config(None, "driving", [*s.quick_overrides, *opts.overrides])
    return load_config(None, "driving", [*s.full_overrides, *opts.overrides])


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
    test_seeds = parse_seeds(d.test_seeds)

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
        rows.append(Row(side, n_frames, r["test/score"], r["train_seconds"], infer,
                        f"{r['parameters']:,} parameters"))
        details.append((f"{side}, {k} episode{'s' * (k != 1)}", {m: r[f"test/{m}"] for m in
                                                   ("score", "score_min", "tiles", "laps",
                                                    "offtrack")}))
        bar.update()

    bar.set_description("driving: modular pipeline (perception, planning, control)")
    driver = ModularDriver(ModularConfig())
    started = time.time()
    episodes, _ = drive(driver, test_seeds, d.max_steps, d.workers)
    drive_seconds = time.time() - started
    m = summarize(episodes)
    side = "stepwise: road mask -> centre line -> PD steering (no learning)"
    rows.append(Row(side, 0, m["score"], 0.0, _ms_per_frame(driver, sample),
                    f"{len(fields(ModularConfig))} hand-set parameters"))
    details.append((side, m))
    bar.update()

    # The teacher on the same tracks, for scale (seconds: it reads the state, nothing renders)
    expert = summarize(drive(ExpertPolicy(), test_seeds, d.max_steps, d.workers)[0])
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
        f"simulator's state. Both drive the same unseen test tracks {d.test_seeds} "
        f"({len(test_seeds)} tracks, up to {d.max_steps} steps each) in the same closed "
        "loop; quality = mean simulator score (+1000/N per tile, -0.1 per step; 900 counts "
        f"as solved; the privileged expert, the teacher, scores {expert['score']:.1f} on these "
        "tracks: last row below). Training time "
        "includes the validation drives; the modular pipeline's test drives took "
        f"{drive_seconds:.0f} s. Inference = one policy step on one frame, on the CPU.\n\n"
        + _details_table(details))
    return Comparison(rows, notes, Metric("mean closed-loop score", higher_is_better=True))


def _ms_per_frame(policy, frames: np.ndarray) -> float:
    if hasattr(policy, "reset"):
        policy.reset()
    started = time.perf_counter()
    for f in frames:
        policy.act(f)
    return 1000 * (time.perf_counter() - started) / len(frames)


def _details_table(details: list[tuple[str, dict]]) -> str:
    lines = ["| system | mean score | min score | tiles covered | laps completed | "
             "off-track steps |", "| --- | --- | --- | --- | --- | --- |"]
    for name, m in details:
        lines.append(f"| {name} | {m['score']:.1f} | {m['score_min']:.1f} | "
                     f"{100 * m['tiles']:.1f}% | {100 * m['laps']:.0f}% | "
                     f"{100 * m['offtrack']:.1f}% |")
    return "\n".join(lines)
