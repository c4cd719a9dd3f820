"""Driving benchmark: the expert, behavior cloning and DAgger, each driving unseen tracks.

    flock /tmp/e2e-cpu.lock .venv/bin/python bench/driving.py     # writes bench/RESULTS.md

In one process, on this machine's CPU, wall clock:
  1. record the expert on training tracks (`e2e data driving`; reused when already there)
  2. `e2e train driving --dagger ROUNDS`: round 0 is behavior cloning (checkpoint chosen by
     driving two validation tracks), each later round lets the network drive new training
     tracks, has the expert label what it saw, and fine-tunes on everything; the engine's
     final test evaluation of every round drives the same unseen test tracks
  3. policy inference time per frame at batch 1 (one thread, as in the drive workers)
  4. the expert drives the test tracks (`e2e drive expert`)
The RESULTS.md section is rewritten after each stage, so a cut-short run still reports.

Seeds: recordings 0-23, DAgger rollouts 200+, validation 500-501, test 1000-1019.
Targets (issue 5): behavior cloning mean score >= 850 on 20 unseen tracks; <= 2 ms per frame.
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
from e2e.tasks import load_config
from e2e.tasks.driving.closed_loop import ExpertPolicy, drive, summarize
from e2e.tasks.driving.dagger import load_policy, run_dagger
from e2e.tasks.driving.record import record
from e2e.tasks.driving.sim import parse_seeds

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, write_section  # noqa: E402


def inference_ms(run: Path, data: Path, n: int = 1000) -> tuple[float, float]:
    """Median and mean milliseconds per frame at batch 1, as a drive worker runs the policy."""
    policy = load_policy(run)
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


def row(name: str, s: dict, extra: str = "") -> str:
    return (f"| {name} | {s['score']:.1f} | {s['score_min']:.1f} | {100 * s['tiles']:.1f}% | "
            f"{100 * s['laps']:.0f}% | {100 * s['offtrack']:.1f}% | {extra} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench/runs/driving")
    ap.add_argument("--record-seeds", default="0-23")
    ap.add_argument("--test-seeds", default="1000-1019")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--budget-minutes", type=float, default=16,
                    help="start no DAgger round after this many minutes of training")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--dry-run", action="store_true", help="print, do not write RESULTS.md")
    args = ap.parse_args()
    out, data = Path(args.out), Path(args.out) / "data"
    t_start = time.time()
    if not any(data.glob("*.npz")):
        t0 = time.time()
        record(data, parse_seeds(args.record_seeds))
        print(f"recorded in {time.time() - t0:.0f}s", flush=True)
    n_frames = sum(len(read_episode(f)[1]) for f in recording_files([data]))
    test_seeds = parse_seeds(args.test_seeds)
    state: dict = {"rounds": [], "stopped": ""}

    def publish() -> None:
        """Rewrite the RESULTS.md section with everything measured so far."""
        cmd = " ".join(["flock /tmp/e2e-cpu.lock .venv/bin/python bench/driving.py",
                        *sys.argv[1:]])
        lines = [
            "## Driving (CarRacing-v3, camera frames -> steer, gas, brake)", "",
            f"Command: `{cmd}` (defaults: --rounds {args.rounds} --epochs {args.epochs} "
            f"--budget-minutes {args.budget_minutes:g} --test-seeds {args.test_seeds}). "
            f"Machine: {machine()}; run under the CPU lock, alone.", "",
            f"Closed-loop driving on {len(test_seeds)} unseen tracks (seeds {args.test_seeds}); "
            "score = the simulator's reward (+1000/N per tile, -0.1 per step), episodes of at "
            "most 1000 steps, the first 50 of which (camera zoom-in) the car waits. Training "
            f"data: the expert on tracks {args.record_seeds} ({n_frames} frames, the last "
            "track held out for the offline val/loss).", "",
            "| policy | mean score | min score | tiles covered | laps completed | off-track "
            "steps | notes |", "| --- | --- | --- | --- | --- | --- | --- |"]
        if "expert" in state:
            lines.append(row("expert (privileged: pure pursuit + speed profile)",
                             state["expert"], f"`e2e drive expert --seeds {args.test_seeds}`, "
                                              f"{state['expert_s']:.0f}s"))
        for r in state["rounds"]:
            s = {k[5:]: v for k, v in r.items() if k.startswith("test/")}
            name = "behavior cloning (round 0)" if r["round"] == 0 else \
                f"after DAgger round {r['round']}"
            note = (f"best val/score {r['best_val_score']:.1f}; "
                    f"trained {r.get('train_seconds', 0):.0f}s" +
                    (f"; +{r['added_frames']} frames the network drove, labelled by the expert"
                     if r["round"] else ""))
            lines.append(row(name, s, note))
        if "inference_ms" in state:
            med, mean = state["inference_ms"]
            lines += ["", f"Policy inference at batch 1, one thread (as in the drive workers), "
                          f"behavior-cloned network: median {med:.2f} ms, mean {mean:.2f} ms "
                          "per frame (target <= 2 ms)."]
        lines += ["", "Checkpoints are chosen by val/score (driving the validation tracks, seeds "
                      f"{cfg.data.val_seeds}), not by offline loss; per-round details in "
                      f"`{out}/dagger/dagger.json` and each round's report.md. "
                      f"Wall clock so far: {time.time() - t_start:.0f}s."]
        if state["stopped"]:
            lines.append(f"\nDAgger {state['stopped']} (--budget-minutes "
                         f"{args.budget_minutes:g}).")
        body = "\n".join(lines)
        (out / "bench.json").write_text(json.dumps(state, indent=1, default=str))
        if not args.dry_run:
            write_section("driving", body)
        print(body, flush=True)

    def on_round(r: dict) -> None:
        results = json.loads((Path(r["run"]) / "results.json").read_text())
        state["rounds"].append({**r, "train_seconds": results.get("train_seconds", 0)})
        if r["round"] == 0:
            state["inference_ms"] = inference_ms(Path(r["run"]), data)
        publish()

    cfg = load_config(None, "driving", [f"data.source={data}", f"data.test_seeds={args.test_seeds}",
                                        f"train.epochs={args.epochs}", *args.overrides])
    summary = run_dagger(cfg, out / "dagger", args.rounds, budget_s=60 * args.budget_minutes,
                         on_round=on_round)
    state["stopped"] = summary["stopped"]

    t0 = time.time()
    episodes, _ = drive(ExpertPolicy(), test_seeds, cfg.data.max_steps)
    state["expert"], state["expert_s"] = summarize(episodes), time.time() - t0
    publish()


if __name__ == "__main__":
    main()
