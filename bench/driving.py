"""Driving benchmark: every driver on the same 100 unseen tracks, in the usual look and in
randomized colours.

    .venv/bin/python bench/driving.py                      # both cores; writes bench/RESULTS.md
    .venv/bin/python bench/driving.py --config varied      # a named recipe (issue 34's)
    .venv/bin/python bench/driving.py --config varied --seed 1      # a repeat: train.seed=1
    .venv/bin/python bench/driving.py --summarize bench/runs/driving-varied \
        bench/runs/driving-varied-seed1                    # mean and spread over the two

In one process, on this machine's CPU, wall clock, recording included:
  1. the expert drives the training tracks and is recorded (`e2e data driving`, in parallel
     workers; reused when already there); the recipe's data.random_looks share of them in
     randomized colours
  2. the expert, the modular pipeline and the adaptive modular pipeline (which learn
     nothing) drive the test tracks in both looks
  3. `e2e train driving` with the recipe (the bench sets only its budget: bench/budget.py):
     round 0 is behavior cloning, then data.dagger_rounds rounds of DAgger; checkpoints are
     chosen by driving the validation tracks (data.val_seeds, and data.val_random_seeds in
     randomized colours); the engine's final test evaluation of every round drives the test
     tracks in both looks
  4. policy inference time per frame at batch 1 (one thread, as in the drive workers)
The RESULTS.md section is rewritten after each stage, so a cut-short run still reports.

Seeds (tracks): recordings 0-39, DAgger rollouts 200-499, validation 500-599 (the `varied`
recipe: 500-509 usual, 510-519 randomized), test 1000-1099 in the usual look AND the same
tracks 1000-1099 in randomized colours (`--random-test-seeds`): the same roads, only the
colours differ, so the two columns are paired track by track. A randomized look is drawn
from its own seed, derived from the track's (e2e.tasks.driving.sim.look_seed), so no
training or validation look recurs in the test.

Noise: for every round, the spread (standard deviation) of its mean score over random
subsets of its own test drives the size of the validation set (what choosing a checkpoint on
that many tracks can resolve), and each round's paired difference to the one before on the
same test tracks, with its standard error.

Targets (issue 34): usual look >= 920 and above the modular pipeline; randomized looks >= 880,
worst track >= 500, above both modular rows; every round at least as good as the one before
in both columns; inference <= 2 ms per frame; the whole run under 75 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from e2e.data.driving_records import read_episode, recording_files
from e2e.stepwise.modular_driver import AdaptiveModularDriver, ModularConfig, ModularDriver
from e2e.tasks import load_config
from e2e.tasks.driving.closed_loop import ExpertPolicy, drive, summarize
from e2e.tasks.driving.config import STEERING_NOISE
from e2e.tasks.driving.dagger import load_policy, run_dagger
from e2e.tasks.driving.record import record
from e2e.tasks.driving.sim import RANDOM, USUAL, parse_seeds, track_name
from e2e.tasks.driving.task import DrivingTask

sys.path.insert(0, str(Path(__file__).parent))
from budget import check  # noqa: E402
from results import machine, write_section  # noqa: E402

# this script's RESULTS.md sections: SECTION, and SECTION-RECIPE[-seedN] for other recipes
SECTION = "driving"

BASELINES = {"expert": "expert (privileged: racing line + speed profile)",
             "modular": "modular pipeline (perception -> planning -> control, fixed colour "
                        "thresholds)",
             "adaptive": "adaptive modular pipeline (road colour read from the frame)"}
LOOK_TITLE = {USUAL: "usual look", RANDOM: "randomized looks"}


def inference_ms(run: Path, data: Path, n: int = 1000) -> tuple[float, float]:
    """Median and mean milliseconds per frame at batch 1, as a drive worker runs the policy."""
    policy = load_policy(DrivingTask(), run)
    frames = read_episode(recording_files([data])[0])[0]
    threads, mkldnn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    for f in frames[:50]:
        policy.act(f)
    times = []
    for i in range(n):
        t = time.perf_counter()
        policy.act(frames[i % len(frames)])
        times.append(time.perf_counter() - t)
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    return 1000 * float(np.median(times)), 1000 * float(np.mean(times))


def cells(part: dict | None) -> str:
    """mean | median | worst | laps of one look's drives ('-' when not driven)."""
    if not part:
        return "- | - | - | -"
    s = np.asarray(part["scores"])
    return (f"{s.mean():.1f} | {np.median(s):.1f} | {s.min():.1f} | "
            f"{100 * part['summary']['laps']:.0f}%")


def row(name: str, parts: dict, note: str = "") -> str:
    return f"| {name} | {cells(parts.get(USUAL))} | {cells(parts.get(RANDOM))} | {note} |"


def round_parts(results: dict, tracks: dict[str, list[int]]) -> dict:
    """A round's per-look test drives from its results.json: scores and summary per look."""
    parts = {}
    for look, seeds in tracks.items():
        names = [track_name(s, look) for s in seeds]
        if not all(f"test/track_score/{n}" in results for n in names):
            continue
        scores = [results[f"test/track_score/{n}"] for n in names]
        laps = [results[f"test/track_lap/{n}"] for n in names]
        parts[look] = {"scores": scores, "summary": {"laps": float(np.mean(laps))}}
    return parts


def subset_spread(parts: dict, sizes: dict[str, int], draws: int = 2000, seed: int = 0
                  ) -> float:
    """Std of the mean score over random subsets of these drives with sizes[look] tracks of
    each look: how much a validation of that size moves for one and the same network."""
    rng = np.random.default_rng(seed)
    pools = {look: np.asarray(parts[look]["scores"]) for look, n in sizes.items()
             if n and look in parts}
    if not pools or any(sizes[look] > len(pool) for look, pool in pools.items()):
        return float("nan")
    means = []
    for _ in range(draws):
        picked = np.concatenate([rng.choice(pool, sizes[look], replace=False)
                                 for look, pool in pools.items()])
        means.append(picked.mean())
    return float(np.std(means))


def paired(now: dict, before: dict, look: str) -> str:
    """Mean difference on the same tracks, with its standard error: 'now - before'."""
    if look not in now or look not in before:
        return "-"
    d = np.asarray(now[look]["scores"]) - np.asarray(before[look]["scores"])
    return f"{d.mean():+.1f} ± {d.std(ddof=1) / np.sqrt(len(d)):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="run folder (default: bench/runs/driving[-CONFIG][-seedN])")
    ap.add_argument("--record-seeds", default="0-39")
    ap.add_argument("--test-seeds", default="1000-1099")
    ap.add_argument("--random-test-seeds", default="1000-1099",
                    help="test tracks driven in randomized colours ('' = none); the default "
                         "is the usual test tracks, so the two columns are paired")
    ap.add_argument("--rounds", type=int,
                    help="DAgger rounds (an experiment; default: the recipe's data.dagger_rounds)")
    ap.add_argument("--workers", type=int, default=2, help="episodes driven in parallel")
    # 60: with both looks' test drives, round 3 starts after about 45 minutes of training
    ap.add_argument("--budget-minutes", type=float, default=60,
                    help="start no DAgger round after this many minutes of training")
    ap.add_argument("--noise", type=float, default=STEERING_NOISE,
                    help="steering perturbation while recording (labels stay the expert's)")
    ap.add_argument("--config", help="a named recipe or YAML file (default: the default recipe)")
    ap.add_argument("--seed", type=int,
                    help="a repeat: train.seed=SEED (the recordings stay the same); its "
                         "section (and default --out) is driving[-CONFIG]-seedSEED")
    ap.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[])
    ap.add_argument("--dry-run", action="store_true", help="print, do not write RESULTS.md")
    ap.add_argument("--resume", action="store_true",
                    help="keep the baselines and the finished DAgger rounds of the run in --out "
                         "(e.g. --rounds 3 after a 2-round run adds round 3)")
    ap.add_argument("--print-config", action="store_true",
                    help="print the config this command trains, exit")
    ap.add_argument("--summarize", nargs="+", metavar="OUT",
                    help="no run: the mean and spread over the repeats in these --out folders "
                         "(section driving-repeats)")
    args = ap.parse_args()
    if args.summarize:
        summarize_repeats([Path(p) for p in args.summarize], args.dry_run)
        return
    name = "-".join([SECTION, *([Path(args.config).stem] if args.config else []),
                     *([f"seed{args.seed}"] if args.seed is not None else [])])
    out = Path(args.out or f"bench/runs/{name}")
    data = out / "data"
    budget = [f"data.source={data}", f"data.test_seeds={args.test_seeds}",
              f"data.workers={args.workers}"]
    if args.random_test_seeds.strip():
        budget.append(f"data.test_random_seeds={args.random_test_seeds}")
    if args.seed is not None:
        budget.append(f"train.seed={args.seed}")
    experiment = [*args.overrides] + \
        ([f"data.dagger_rounds={args.rounds}"] if args.rounds is not None else [])
    cfg = load_config(args.config, "driving", check("driving", budget) + experiment)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return
    rounds = cfg.data.dagger_rounds
    tracks = {USUAL: parse_seeds(args.test_seeds)}
    if args.random_test_seeds.strip():
        tracks[RANDOM] = parse_seeds(args.random_test_seeds)
    val_sizes = {USUAL: len(parse_seeds(cfg.data.val_seeds)),
                 RANDOM: len(parse_seeds(cfg.data.val_random_seeds))
                 if cfg.data.val_random_seeds.strip() else 0}
    section = name  # driving, driving-varied, driving-varied-seed1: one section per run
    t_start = time.time()
    state: dict = {"rounds": [], "stopped": "", "config": args.config or "",
                   "seed": cfg.train.seed}
    if args.resume and (out / "bench.json").exists():
        earlier = json.loads((out / "bench.json").read_text())
        state.update({k: earlier[k] for k in (*BASELINES, "record_s") if k in earlier})
        state["earlier_s"] = earlier.get("wall_s", 0.0)
        state["earlier_command"] = earlier.get("command", "")
    if not any(data.glob("*.npz")):
        t0 = time.time()
        record(data, parse_seeds(args.record_seeds), workers=args.workers, quiet=True,
               noise=args.noise, random_looks=cfg.data.random_looks)
        state["record_s"] = time.time() - t0
        print(f"recorded in {state['record_s']:.0f}s", flush=True)
    files = recording_files([data])
    n_frames = sum(len(read_episode(f)[1]) for f in files)
    n_random = sum(f.stem.endswith(f"-{RANDOM}") for f in files)

    def publish() -> None:
        """Rewrite the RESULTS.md section with everything measured so far."""
        cmd = " ".join(["OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/driving.py",
                        *sys.argv[1:]]) if args.workers == 1 else \
            " ".join([".venv/bin/python bench/driving.py", *sys.argv[1:]])
        if state.get("earlier_command"):  # resumed: the commands that ran the kept stages first
            cmd = f"{state['earlier_command']}`, then `{cmd}"
        state["command"] = cmd  # the whole chain, so a second --resume still names the first
        recorded = (f"recorded in {state['record_s']:.0f}s" if "record_s" in state
                    else "recorded by an earlier run")
        random_col = (f"the same tracks {args.random_test_seeds} each in randomized colours "
                      "(the simulator's domain_randomize, the colours drawn from a seed "
                      "derived from the track's)" if args.random_test_seeds == args.test_seeds
                      else f"tracks {args.random_test_seeds} in randomized colours")
        lines = [
            "## Driving (CarRacing-v3, camera frames -> steer, gas, brake)", "",
            f"Command: `{cmd}` (defaults: --record-seeds {args.record_seeds} --rounds "
            f"{rounds} --workers {args.workers} --test-seeds {args.test_seeds} "
            f"--random-test-seeds {args.random_test_seeds}, recipe "
            f"`{args.config or 'the default: e2e config driving'}`, train.seed "
            f"{cfg.train.seed}). Machine: {machine()}.", "",
            f"Closed-loop driving on {len(tracks[USUAL])} unseen tracks (seeds "
            f"{args.test_seeds}) in the usual look"
            + (f" and on {random_col}" if RANDOM in tracks else "")
            + ", the same tracks for every row; score = the simulator's reward (+1000/N per "
            "tile, -0.1 per step), episodes of at most 1000 steps, the first 50 of which "
            "(camera zoom-in) the car waits. Training data: the expert on tracks "
            f"{args.record_seeds} ({n_random} of them in randomized colours), its steering "
            f"perturbed by {args.noise:g} while the labels stay its own ({n_frames} frames, "
            f"{recorded}; the last track held out for the offline val/loss).", "",
            f"| driver | {LOOK_TITLE[USUAL]}: mean | median | worst | laps | "
            f"{LOOK_TITLE[RANDOM]}: mean | median | worst | laps | notes |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, title in BASELINES.items():
            if key in state:
                secs = sum(p["seconds"] for p in state[key].values())
                lines.append(row(title, state[key], f"{secs:.0f}s"))
        for r in state["rounds"]:
            title = "network: behavior cloning (round 0)" if r["round"] == 0 else \
                f"network: after DAgger round {r['round']}"
            note = (f"best val/score {r['best_val_score']:.1f}; "
                    f"trained {r.get('train_seconds', 0):.0f}s" +
                    (f"; +{r['added_frames']} frames the network drove, labelled by the expert"
                     if r["round"] else ""))
            lines.append(row(title, r["parts"], note))
        if state["rounds"]:
            n_val = " + ".join(f"{n} {LOOK_TITLE[look]}" for look, n in val_sizes.items() if n)
            lines += ["", f"Noise. Spread (std) of each network's mean score over random "
                          f"subsets of its test drives of the validation's size ({n_val}): "
                          "what choosing a checkpoint on that many tracks can resolve; and "
                          "each round's paired difference to the round before on the same "
                          "test tracks (mean ± standard error):", "",
                      f"| round | spread over {n_val} tracks | spread over 2x as many | "
                      f"vs the round before, {LOOK_TITLE[USUAL]} | "
                      f"vs the round before, {LOOK_TITLE[RANDOM]} |",
                      "| --- | --- | --- | --- | --- |"]
            for i, r in enumerate(state["rounds"]):
                before = state["rounds"][i - 1]["parts"] if i else {}
                lines.append(f"| {r['round']} | {r['noise']:.1f} | {r['noise_2x']:.1f} | "
                             f"{paired(r['parts'], before, USUAL)} | "
                             f"{paired(r['parts'], before, RANDOM)} |")
        if "inference_ms" in state:
            med, mean = state["inference_ms"]
            lines += ["", f"Policy inference at batch 1, one thread (as in the drive workers), "
                          f"behavior-cloned network: median {med:.2f} ms, mean {mean:.2f} ms "
                          "per frame (target <= 2 ms)."]
        state["wall_s"] = state.get("earlier_s", 0.0) + time.time() - t_start
        resumed = (f" ({state['earlier_s']:.0f}s of it before this run was resumed with "
                   "--resume)" if state.get("earlier_s") else "")
        val = f"seeds {cfg.data.val_seeds}" + (
            f" and {cfg.data.val_random_seeds} in randomized colours"
            if cfg.data.val_random_seeds.strip() else "")
        lines += ["", "Checkpoints are chosen by val/score (driving the validation tracks, "
                      f"{val}, with EMA weights), not by offline loss; per-round details in "
                      f"`{out}/dagger/dagger.json` and each round's report.md. Wall clock so "
                      f"far: {state['wall_s']:.0f}s{resumed}."]
        if state["stopped"]:
            lines.append(f"\nDAgger {state['stopped']} (--budget-minutes "
                         f"{args.budget_minutes:g}).")
        body = "\n".join(lines)
        (out / "bench.json").write_text(json.dumps(state, indent=1, default=str))
        if not args.dry_run:
            write_section(section, body)
        print(body, flush=True)

    def baseline(key: str, policy) -> None:
        if isinstance(state.get(key), dict) and USUAL in state[key]:  # kept by --resume
            return
        state[key] = {}
        for look, seeds in tracks.items():
            t0 = time.time()
            episodes, _ = drive(policy, [(s, look) for s in seeds], cfg.data.max_steps,
                                args.workers)
            state[key][look] = {"summary": summarize(episodes),
                                "scores": [e.score for e in episodes],
                                "seconds": time.time() - t0}
        publish()

    baseline("expert", ExpertPolicy())  # cheap: the expert's drives skip rendering
    baseline("modular", ModularDriver(ModularConfig()))
    baseline("adaptive", AdaptiveModularDriver(ModularConfig()))

    def on_round(r: dict) -> None:
        run = Path(r["run"])
        results = json.loads((run / "results.json").read_text())
        parts = round_parts(results, tracks)
        doubled = {look: 2 * n for look, n in val_sizes.items()}
        state["rounds"].append({**r, "train_seconds": results.get("train_seconds", 0),
                                "parts": parts, "noise": subset_spread(parts, val_sizes),
                                "noise_2x": subset_spread(parts, doubled)})
        if r["round"] == 0:
            state["inference_ms"] = inference_ms(run, data)
        publish()

    summary = run_dagger(DrivingTask(), cfg, out / "dagger", rounds,
                         budget_s=60 * args.budget_minutes, on_round=on_round)
    state["stopped"] = summary["stopped"]
    publish()


def summarize_repeats(outs: list[Path], dry_run: bool = False) -> str:
    """The section driving-repeats: each row's mean over the repeats in both looks, and the
    spread (max - min) and each repeat's value."""
    states = []
    for out in outs:
        path = out / "bench.json"
        if not path.exists():
            raise SystemExit(f"bench: {path} does not exist; run bench/driving.py --out {out} "
                             "first")
        states.append(json.loads(path.read_text()))
    rows: dict[str, list[dict]] = {}
    for s in states:
        for key, title in BASELINES.items():
            if key in s:
                rows.setdefault(title, []).append(s[key])
        for r in s.get("rounds", []):
            title = "network: behavior cloning (round 0)" if r["round"] == 0 else \
                f"network: after DAgger round {r['round']}"
            rows.setdefault(title, []).append(r["parts"])

    def cell(parts: list[dict], look: str) -> str:
        means = [float(np.mean(p[look]["scores"])) for p in parts if look in p]
        worst = [float(np.min(p[look]["scores"])) for p in parts if look in p]
        if not means:
            return "- | -"
        each = ", ".join(f"{m:.1f}" for m in means)
        return (f"{np.mean(means):.1f} (spread {max(means) - min(means):.1f}: {each}) | "
                f"{min(worst):.1f}")

    lines = ["## Driving: mean and spread over repeats", "",
             f"{len(states)} repeats of the whole bench, each with its own train.seed "
             f"({', '.join(str(s.get('seed', '?')) for s in states)}); commands: "
             + "; ".join(f"`{s.get('command', '?')}`" for s in states)
             + f". Summary: `.venv/bin/python bench/driving.py --summarize "
             f"{' '.join(str(o) for o in outs)}`.", "",
             f"| driver | repeats | {LOOK_TITLE[USUAL]}: mean (spread: each) | worst track | "
             f"{LOOK_TITLE[RANDOM]}: mean (spread: each) | worst track |",
             "| --- | --- | --- | --- | --- | --- |"]
    for title, parts in rows.items():
        lines.append(f"| {title} | {len(parts)} | {cell(parts, USUAL)} | {cell(parts, RANDOM)} |")
    body = "\n".join(lines)
    if not dry_run:
        write_section("driving-repeats", body)
    print(body, flush=True)
    return body


if __name__ == "__main__":
    main()
