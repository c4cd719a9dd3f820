"""Driving benchmark: every driver on the same 100 unseen tracks.

    .venv/bin/python bench/driving.py     # both cores; writes bench/RESULTS.md

In one process, on this machine's CPU, wall clock, recording included:
  1. the expert drives the training tracks and is recorded (`e2e data driving`, in parallel
     workers; reused when already there)
  2. `e2e train driving`, the default recipe (it sets only its budget: bench/budget.py): round 0
     is behavior cloning, then data.dagger_rounds rounds of DAgger; each later round lets the
     network drive new training tracks (the expert taking a share beta^r of the steps), has
     the expert label every state visited, and retrains from scratch on everything;
     checkpoints are chosen by driving the validation tracks (500-509); the engine's final
     test evaluation of every round drives the test tracks
  3. policy inference time per frame at batch 1 (one thread, as in the drive workers)
(the expert and the modular pipeline, which learns nothing, drive the same test tracks first)
The RESULTS.md section is rewritten after each stage, so a cut-short run still reports.

Seeds: recordings 0-199, DAgger rollouts 200-499, validation 500-599, test 1000-1099.
Targets (issue 12): the network >= 900 mean and above the modular pipeline on 100 unseen
tracks, worst track >= 600; every DAgger round at least as good as the one before; the
expert >= 930; inference <= 2 ms per frame; the whole run under 60 minutes on 2 cores.
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
from e2e.stepwise.modular_driver import ModularConfig, ModularDriver
from e2e.tasks import load_config
from e2e.tasks.driving.closed_loop import ExpertPolicy, drive, summarize
from e2e.tasks.driving.config import STEERING_NOISE
from e2e.tasks.driving.dagger import load_policy, run_dagger
from e2e.tasks.driving.record import record
from e2e.tasks.driving.sim import parse_seeds
from e2e.tasks.driving.task import DrivingTask

sys.path.insert(0, str(Path(__file__).parent))
from budget import check  # noqa: E402
from results import machine, write_section  # noqa: E402


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


def stats(scores: list[float]) -> str:
    s = np.asarray(scores)
    return f"{s.mean():.1f} | {np.median(s):.1f} | {s.min():.1f}"


def row(name: str, s: dict, scores: list[float], extra: str = "") -> str:
    return (f"| {name} | {stats(scores)} | {100 * s['laps']:.0f}% | {100 * s['tiles']:.1f}% | "
            f"{100 * s['offtrack']:.1f}% | {extra} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/runs/driving")
    ap.add_argument("--record-seeds", default="0-39")
    ap.add_argument("--test-seeds", default="1000-1099")
    ap.add_argument("--rounds", type=int,
                    help="DAgger rounds (an experiment; default: the recipe's data.dagger_rounds)")
    ap.add_argument("--workers", type=int, default=2, help="episodes driven in parallel")
    ap.add_argument("--budget-minutes", type=float, default=30,
                    help="start no DAgger round after this many minutes of training")
    ap.add_argument("--noise", type=float, default=STEERING_NOISE,
                    help="steering perturbation while recording (labels stay the expert's)")
    ap.add_argument("--config", help="a named recipe or YAML file (default: the default recipe)")
    ap.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[])
    ap.add_argument("--dry-run", action="store_true", help="print, do not write RESULTS.md")
    ap.add_argument("--resume", action="store_true",
                    help="keep the baselines and the finished DAgger rounds of the run in --out "
                         "(e.g. --rounds 3 after a 2-round run adds round 3)")
    ap.add_argument("--print-config", action="store_true",
                    help="print the config this command trains, exit")
    args = ap.parse_args()
    out, data = Path(args.out), Path(args.out) / "data"
    experiment = [*args.overrides] + \
        ([f"data.dagger_rounds={args.rounds}"] if args.rounds is not None else [])
    cfg = load_config(args.config, "driving",
                      check("driving", [f"data.source={data}", f"data.test_seeds={args.test_seeds}",
                                        f"data.workers={args.workers}"]) + experiment)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return
    rounds = cfg.data.dagger_rounds
    t_start = time.time()
    state: dict = {"rounds": [], "stopped": ""}
    if args.resume and (out / "bench.json").exists():
        earlier = json.loads((out / "bench.json").read_text())
        state.update({k: earlier[k] for k in ("expert", "modular", "record_s") if k in earlier})
        state["earlier_s"] = earlier.get("wall_s", 0.0)
        state["earlier_command"] = earlier.get("command", "")
    if not any(data.glob("*.npz")):
        t0 = time.time()
        record(data, parse_seeds(args.record_seeds), workers=args.workers, quiet=True,
               noise=args.noise)
        state["record_s"] = time.time() - t0
        print(f"recorded in {state['record_s']:.0f}s", flush=True)
    n_frames = sum(len(read_episode(f)[1]) for f in recording_files([data]))
    test_seeds = parse_seeds(args.test_seeds)

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
        lines = [
            "## Driving (CarRacing-v3, camera frames -> steer, gas, brake)", "",
            f"Command: `{cmd}` (defaults: --record-seeds {args.record_seeds} --rounds "
            f"{rounds} --workers {args.workers} --test-seeds {args.test_seeds}, recipe "
            f"`{args.config or 'the default: e2e config driving'}`). Machine: {machine()}.", "",
            f"Closed-loop driving on {len(test_seeds)} unseen tracks (seeds {args.test_seeds}), "
            "the same tracks for every row; score = the simulator's reward (+1000/N per tile, "
            "-0.1 per step), episodes of at most 1000 steps, the first 50 of which (camera "
            "zoom-in) the car waits. Training data: the expert on tracks "
            f"{args.record_seeds}, its steering perturbed by {args.noise:g} while the labels "
            f"stay its own ({n_frames} frames, {recorded}; the last track held out "
            "for the offline val/loss).", "",
            "| driver | mean score | median | worst track | laps completed | tiles covered | "
            "off-track steps | notes |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, name in (("expert", "expert (privileged: racing line + speed profile)"),
                          ("modular", "modular pipeline (perception -> planning -> control, "
                                      "no learning)")):
            if key in state:
                s = state[key]
                lines.append(row(name, s["summary"], s["scores"], f"{s['seconds']:.0f}s"))
        for r in state["rounds"]:
            s = {k[5:]: v for k, v in r.items() if k.startswith("test/")}
            scores = r["test_scores"]
            name = "network: behavior cloning (round 0)" if r["round"] == 0 else \
                f"network: after DAgger round {r['round']}"
            note = (f"best val/score {r['best_val_score']:.1f}; "
                    f"trained {r.get('train_seconds', 0):.0f}s" +
                    (f"; +{r['added_frames']} frames the network drove, labelled by the expert"
                     if r["round"] else ""))
            lines.append(row(name, s, scores, note))
        if "inference_ms" in state:
            med, mean = state["inference_ms"]
            lines += ["", f"Policy inference at batch 1, one thread (as in the drive workers), "
                          f"behavior-cloned network: median {med:.2f} ms, mean {mean:.2f} ms "
                          "per frame (target <= 2 ms)."]
        state["wall_s"] = state.get("earlier_s", 0.0) + time.time() - t_start
        resumed = (f" ({state['earlier_s']:.0f}s of it before this run was resumed with "
                   "--resume)" if state.get("earlier_s") else "")
        lines += ["", "Checkpoints are chosen by val/score (driving the validation tracks, seeds "
                      f"{cfg.data.val_seeds}, with EMA weights), not by offline loss; per-round "
                      f"details in `{out}/dagger/dagger.json` and each round's report.md. "
                      f"Wall clock so far: {state['wall_s']:.0f}s{resumed}."]
        if state["stopped"]:
            lines.append(f"\nDAgger {state['stopped']} (--budget-minutes "
                         f"{args.budget_minutes:g}).")
        body = "\n".join(lines)
        (out / "bench.json").write_text(json.dumps(state, indent=1, default=str))
        if not args.dry_run:
            write_section("driving", body)
        print(body, flush=True)

    def baseline(key: str, policy) -> None:
        if key in state:  # kept by --resume
            return
        t0 = time.time()
        episodes, _ = drive(policy, test_seeds, cfg.data.max_steps, args.workers)
        state[key] = {"summary": summarize(episodes), "scores": [e.score for e in episodes],
                      "seconds": time.time() - t0}
        publish()

    baseline("expert", ExpertPolicy())  # cheap: the expert's drives skip rendering
    baseline("modular", ModularDriver(ModularConfig()))

    def on_round(r: dict) -> None:
        run = Path(r["run"])
        results = json.loads((run / "results.json").read_text())
        scores = [v for k, v in sorted(results.items()) if k.startswith("test/track_score/")]
        state["rounds"].append({**r, "train_seconds": results.get("train_seconds", 0),
                                "test_scores": scores or [r["test/score"]]})
        if r["round"] == 0:
            state["inference_ms"] = inference_ms(run, data)
        publish()

    summary = run_dagger(DrivingTask(), cfg, out / "dagger", rounds,
                         budget_s=60 * args.budget_minutes, on_round=on_round)
    state["stopped"] = summary["stopped"]
    publish()


if __name__ == "__main__":
    main()
