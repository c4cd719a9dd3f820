"""How fast can the expert go? The car's measured limits and the lap-time bound they imply.

    .venv/bin/python bench/driving_limits.py     # ~40 s on one core; writes bench/RESULTS.md
    .venv/bin/python bench/driving_limits.py --try '' --try 'lateral=175,line_offset=3'
                                                 # score expert settings (~30 s each)

Issue 12 asks for an expert scoring >= 930 on the 100 test tracks. The score is 1000 for the
tiles minus 0.1 per step, so 930 means a lap (after the 50 waiting steps) in 650 steps. This
script asks whether the expert's racing line allows that:
  1. it drives the expert on a few tracks with full gas and full braking allowed and
     measures what the car really does: acceleration at full gas and deceleration at brake
     >= 0.8 (straight, speed bins), and the sideways acceleration it holds through bends;
  2. on each test track it computes the quasi-steady-state minimum lap time of a line
     (the classic lap-time simulation: the fastest speed profile with cornering <= L m/s^2,
     acceleration and braking as measured, and at most 100 m/s, Box2D's cap of 2 m per
     step at 50 steps per second), for several L and line offsets, and turns it into a score.
The bound ignores that braking and steering share the tyres' grip, so the real car can only
do worse than it; its line is the expert's own (`racing_line`), so a cleverer line could do
better.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from e2e.tasks.driving.closed_loop import ExpertPolicy, NoisyExpertPolicy, run_episode
from e2e.tasks.driving.config import STEERING_NOISE
from e2e.tasks.driving.expert import Expert, ExpertConfig
from e2e.tasks.driving.sim import WARMUP, make_env, parse_seeds, step_env

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, write_section  # noqa: E402

V_CAP = 100.0  # m/s: Box2D moves a body at most 2 m per step (b2_maxTranslation), 50 steps/s
BINS = np.arange(10, 101, 15)


def measure(seeds: list[int]) -> dict:
    """Acceleration (full gas, straight), braking (brake >= 0.8, straight) by speed, and the
    sideways acceleration held in bends, from the expert driving with its limits lifted."""
    cfg = ExpertConfig(traction=0.0, v_max=140.0, brake_gain=1.0)
    accel, brake, lateral = [], [], []
    for seed in seeds:
        env = make_env()
        env.reset(seed=seed)
        env.unwrapped._render = lambda *args, **kwargs: None  # nothing here reads the frame
        expert = Expert(env, cfg)
        for t in range(1000):
            action = expert.act(env) if t >= WARMUP else np.zeros(3, np.float32)
            hull = env.unwrapped.car.hull
            v0 = float(np.linalg.norm(hull.linearVelocity))
            _, _, done, _ = step_env(env, action)
            dv = (float(np.linalg.norm(hull.linearVelocity)) - v0) * 50  # m/s^2
            if t >= WARMUP and abs(action[0]) < 0.05 and action[1] >= 0.99:
                accel.append((v0, dv))
            if t >= WARMUP and abs(action[0]) < 0.1 and action[2] >= 0.79:
                brake.append((v0, -dv))
            if t >= WARMUP and abs(action[0]) > 0.2:
                lateral.append(abs(hull.angularVelocity) * v0)
            if done:
                break
        env.close()
    return {"accel": np.array(accel), "brake": np.array(brake), "lateral": np.array(lateral)}


def by_speed(samples: np.ndarray) -> list[float]:
    out = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        m = (samples[:, 0] >= lo) & (samples[:, 0] < hi) if len(samples) else np.zeros(0, bool)
        out.append(float(np.median(samples[m, 1])) if m.sum() >= 5 else float("nan"))
    return out


def cell(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:.0f}"  # "-": too few samples at that speed


def lap_bound(xy: np.ndarray, curvature: np.ndarray, lateral: float, accel: float,
              brake: float) -> float:
    """Minimum time (s) for one lap of the closed line `xy` from a standstill at point 0:
    a forward pass accelerating as hard as allowed, a backward pass braking, the speed at
    each point the least of the two, the cornering limit and V_CAP."""
    ds = np.linalg.norm(np.roll(xy, -1, 0) - xy, axis=1)
    v_corner = np.minimum(np.sqrt(lateral / np.maximum(curvature, 1e-6)), V_CAP)
    v = v_corner.copy()
    v[0] = 0.0
    for i in range(1, len(v)):
        v[i] = min(v[i], np.sqrt(v[i - 1] ** 2 + 2 * accel * ds[i - 1]))
    for i in range(len(v) - 2, -1, -1):
        v[i] = min(v[i], np.sqrt(v[i + 1] ** 2 + 2 * brake * ds[i]))
    mean_v = np.maximum((v + np.roll(v, -1)) / 2, 0.5)
    return float((ds / mean_v).sum())


def bound_scores(seeds: list[int], lateral: float, offset: float, accel: float,
                 brake: float) -> np.ndarray:
    scores = []
    for seed in seeds:
        env = make_env()
        env.reset(seed=seed)
        expert = Expert(env, ExpertConfig(line_offset=offset))
        steps = lap_bound(expert.xy, expert.curvature, lateral, accel, brake) * 50
        scores.append(1000 - 0.1 * (WARMUP + steps))
        env.close()
    return np.array(scores)


def try_settings(spec: str, seeds: list[int]) -> str:
    """'lateral=175,line_offset=3' -> the expert's mean, worst and laps on `seeds`, driving
    clean and with its steering perturbed by STEERING_NOISE (robust enough to be imitated?)."""
    types = {f.name: f.type for f in fields(ExpertConfig)}
    try:
        settings = {k: (int if types[k] in (int, "int") else float)(v)
                    for k, v in (item.split("=") for item in filter(None, spec.split(",")))}
    except (KeyError, ValueError):
        raise SystemExit(f"--try wants K=V,K=V with K in {', '.join(types)}; "
                         f"got '{spec}'") from None
    cfg = ExpertConfig(**settings)
    parts = []
    for policy in (ExpertPolicy(), NoisyExpertPolicy(STEERING_NOISE)):
        episodes = [run_episode(policy, seed, expert_cfg=cfg)[0] for seed in seeds]
        scores = np.array([e.score for e in episodes])
        parts.append(f"{policy.name}: {scores.mean():.1f} (worst {scores.min():.1f}, laps "
                     f"{np.mean([e.lap for e in episodes]):.2f})")
    return f"{spec or 'defaults'} | " + " | ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--measure-seeds", default="0-9")
    ap.add_argument("--test-seeds", default="1000-1099")
    ap.add_argument("--no-write", action="store_true", help="print, leave RESULTS.md alone")
    ap.add_argument("--try", dest="tries", action="append", default=[], metavar="K=V,K=V",
                    help="only score the expert with these ExpertConfig settings ('' = the "
                         "defaults) on --try-seeds, clean and with the steering perturbed as "
                         "when recording; repeatable")
    ap.add_argument("--try-seeds", default="0-99")
    args = ap.parse_args()
    if args.tries:
        for spec in args.tries:
            print(try_settings(spec, parse_seeds(args.try_seeds)), flush=True)
        return
    t0 = time.time()
    m = measure(parse_seeds(args.measure_seeds))
    acc, brk = by_speed(m["accel"]), by_speed(m["brake"])
    accel = float(np.nanmax(acc))  # the most generous: the bound stays a bound
    brake = float(np.nanmax(brk))
    lat = m["lateral"]
    ranges = [f"{lo}-{hi}" for lo, hi in zip(BINS[:-1], BINS[1:], strict=True)]
    seeds = parse_seeds(args.test_seeds)
    default = ExpertConfig()
    expert = np.array([run_episode(ExpertPolicy(), seed)[0].score for seed in seeds])
    rows, own = [], None
    for lateral, offset in [(default.lateral, default.line_offset), (180, default.line_offset),
                            (200, default.line_offset), (240, default.line_offset),
                            (200, 4.0), (240, 4.0), (240, 6.0)]:
        s = bound_scores(seeds, lateral, offset, accel, brake)
        note = ""
        if (lateral, offset) == (default.lateral, default.line_offset):
            note, own = " (the expert's own settings)", s
        rows.append(f"| {lateral:g} | {offset:g}{note} | {s.mean():.1f} | {s.min():.1f} |")
    body = [
        "## Driving: how fast the expert could be (the car's limits and a lap-time bound)",
        "",
        f"Command: `.venv/bin/python bench/driving_limits.py --measure-seeds "
        f"{args.measure_seeds} --test-seeds {args.test_seeds}`. Machine: {machine()}; "
        f"{time.time() - t0:.0f}s.",
        "",
        f"Measured on tracks {args.measure_seeds} (the expert driving with full gas and hard "
        "braking allowed), median m/s^2 by speed (m/s):",
        "",
        "| speed | " + " | ".join(ranges) + " |",
        "| --- |" + " --- |" * len(ranges),
        "| acceleration, full gas, straight | " + " | ".join(map(cell, acc)) + " |",
        "| braking, brake >= 0.8, straight | " + " | ".join(map(cell, brk)) + " |",
        "",
        f"Sideways acceleration in bends (|steer| > 0.2): median {np.median(lat):.0f}, "
        f"95th percentile {np.percentile(lat, 95):.0f}, max {lat.max():.0f} m/s^2. Top speed "
        f"{V_CAP:.0f} m/s: Box2D moves a body at most 2 m per step.",
        "",
        f"Lap-time bound on the test tracks {args.test_seeds}: the fastest speed profile along "
        f"the expert's racing line with cornering <= L, acceleration <= {accel:.0f} and braking "
        f"<= {brake:.0f} m/s^2 (the largest measured), as a score (1000 - 0.1 per step, the 50 "
        "waiting steps included). It ignores that braking and cornering share the grip, so a "
        "driver on that line within those limits cannot beat it (up to the smoothing of the "
        "curvature estimate).",
        "",
        "| cornering L (m/s^2) | line offset (m) | bound: mean score | bound: worst track |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        f"The expert itself, driving the same tracks: mean {expert.mean():.1f}, worst "
        f"{expert.min():.1f}; its bound at its own settings: {own.mean():.1f}.",
    ]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("driving-limits", text)


if __name__ == "__main__":
    main()
