"""Streaming from disk, measured: peak memory of a training run on a prepared corpus and on
one 8 times larger, and the loader's examples/s against the model's own training rate.

    flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock .venv/bin/python bench/streaming.py
    .venv/bin/python bench/streaming.py --tiny --no-write   # a quick check

For each application (vision: Fashion-MNIST; speech: the `synthetic` recipe's espeak-ng corpus;
text: the default Bible + messages pairs; driving: the expert's recorded tracks):
1. `e2e data prepare APP --out D1` (the application's own data) and `--repeat 8 --out D8` (every
   training example written 8 times: a corpus 8x larger on disk, same test sets); driving:
   `e2e data driving` on 5 and on 40 tracks, trained from with `data.in_memory=false`;
2. `e2e train APP --set data.source=D --set train.max_steps=STEPS` on D1 and on D8 in a child
   process; peak RSS = the child's ru_maxrss (os.wait4): the whole process, model, optimizer,
   DataLoader and the corpus's index included;
3. loader rate: the training split of D8 through the engine's own `train_batches` with 2 worker
   processes, no model, against the model's rate (steps/s of the D8 run x batch size).
Each application's row is saved under WORK/rows/ as it is measured (so `--apps` can redo
one); the section of bench/RESULTS.md is written from every saved row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, write_section  # noqa: E402

APPS = {  # app -> (recipe overrides for both prepare and train, steps, batches for the loader)
    "vision": ([], 120, 200),
    "speech": (["--config", "synthetic"], 60, 60),
    "text": ([], 100, 200),
    "driving": ([], 60, 60),
}
# the final evaluation of a short run: a sample of the test sets is enough (memory and time)
TRAIN_EXTRA = {"text": ["data.test_limit=100", "data.val_decode=20"],
               "driving": ["data.dagger_rounds=0", "data.val_seeds=500", "data.test_seeds=1000",
                           "data.max_steps=100"]}
# how each application reads from disk: the prepared columns, or (driving) the frames of its
# recordings, read by the same positional reads
STREAM = {"driving": ["data.in_memory=false"]}
DRIVING_EPISODES, DRIVING_STEPS = 5, 400  # x1: 5 recorded tracks of 400 frames (x8: 40 tracks)


def e2e(*args: str) -> list[str]:
    return [sys.executable, "-m", "e2e", *args]


def prepare(app: str, recipe: list[str], out: Path, repeat: int, tiny: list[str]) -> float:
    if (out / "columns.json").exists():
        return 0.0
    shutil.rmtree(out, ignore_errors=True)
    started = time.time()
    if app == "driving":  # x8: eight times the expert's tracks, each one a different track
        episodes = DRIVING_EPISODES * repeat
        command = e2e("data", "driving", "--out", str(out), "--seeds", f"0-{episodes - 1}",
                      "--max-steps", str(DRIVING_STEPS), "--workers", "2", *tiny)
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        (out / "columns.json").write_text("{}")  # done: a rerun reuses the recordings
        return time.time() - started
    subprocess.run(e2e("data", "prepare", app, "--out", str(out), "--repeat", str(repeat),
                       *recipe, *tiny), check=True, stderr=subprocess.DEVNULL)
    return time.time() - started


def train_peak_rss(app: str, recipe: list[str], corpus: Path, run: Path, steps: int,
                   tiny: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, steps/s from the run's log) of a short training run on `corpus`."""
    shutil.rmtree(run, ignore_errors=True)
    proc = subprocess.Popen(e2e("train", app, *recipe, "--out", str(run), "--quiet",
                                "--set", f"data.source={corpus}", f"train.max_steps={steps}",
                                "train.log_every=10", "train.eval_every=100000",
                                "train.check_gradflow=false", *STREAM.get(app, []),
                                *TRAIN_EXTRA.get(app, []), *tiny),
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"training on {corpus} failed (status {status})")
    from e2e.engine.progress import read_metrics

    rows = [r for r in read_metrics(run / "metrics.csv") if r["metric"] == "train/loss"]
    first, last = rows[min(1, len(rows) - 1)], rows[-1]  # from the 2nd log: start-up excluded
    seconds = float(last["time_s"]) - float(first["time_s"])
    rate = (last["step"] - first["step"]) / seconds if seconds > 0 else float("nan")
    return usage.ru_maxrss / 1024, rate


def loader_rate(app: str, recipe: list[str], corpus: Path, batches: int,
                tiny: list[str]) -> tuple[float, int]:
    """Examples/s of the training split through train_batches with 2 workers (no model)."""
    from e2e.engine.batching import train_batches
    from e2e.tasks import get_task, load_config

    overrides = [o for o in tiny if "=" in o]
    cfg = load_config(recipe[1] if recipe else None, app,
                      [f"data.source={corpus}", *STREAM.get(app, []), *overrides])
    task = get_task(app)
    splits = task.build_data(cfg)
    size = cfg.train.batch_size
    n = min(batches, len(splits.train) // size)
    started, seen = time.time(), 0
    for _ in train_batches(splits.train, size, 0, 0, 0, n, num_workers=2,
                           collate=task.collate):
        seen += size
    return seen / (time.time() - started), size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--apps", nargs="+", default=list(APPS), choices=list(APPS))
    p.add_argument("--work", type=Path, default=Path("bench/runs/streaming"))
    p.add_argument("--tiny", action="store_true", help="small corpora and few steps: a check")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args()
    for app in args.apps:
        recipe, steps, batches = APPS[app]
        tiny = []
        if args.tiny:
            steps, batches = 12, 10
            tiny = {"vision": ["--set", "data.source=digits"],
                    "speech": ["--set", "data.n=60", "data.n_val=8", "data.n_test=8"],
                    "text": ["--set", "data.limit=2000"], "driving": ["--max-steps", "130"]}[app]
        d1, d8 = args.work / f"{app}-x1", args.work / f"{app}-x8"
        t1 = prepare(app, recipe, d1, 1, tiny)
        t8 = prepare(app, recipe, d8, 8, tiny)
        rss1, _ = train_peak_rss(app, recipe, d1, args.work / f"{app}-run-x1", steps, [])
        rss8, rate = train_peak_rss(app, recipe, d8, args.work / f"{app}-run-x8", steps, [])
        loader, batch = loader_rate(app, recipe, d8, batches, [])
        size1 = sum(f.stat().st_size for f in d1.rglob("*.npy")) / 2 ** 20
        size8 = sum(f.stat().st_size for f in d8.rglob("*.npy")) / 2 ** 20
        row = {"app": app, "mb1": size1, "mb8": size8, "rss1": rss1, "rss8": rss8,
               "growth": rss8 / rss1 - 1, "loader": loader, "model": rate * batch,
               "prepare_s": t1 + t8}
        print(row, flush=True)
        (args.work / "rows").mkdir(parents=True, exist_ok=True)
        (args.work / "rows" / f"{app}.json").write_text(json.dumps({**row, "date": machine()}))
    saved = [args.work / "rows" / f"{app}.json" for app in APPS]
    rows = [json.loads(path.read_text()) for path in saved if path.exists()]
    dates = sorted({r["date"].rsplit("; ", 1)[-1] for r in rows})
    lines = ["## Streaming from disk (bench/streaming.py)", "",
             f"Command: `flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock .venv/bin/python "
             f"bench/streaming.py{' --tiny' if args.tiny else ''}` (`--apps APP` redoes one row). "
             f"Machine: {machine().rsplit('; ', 1)[0]}; measured {', '.join(dates)}.", "",
             "| application | corpus on disk (x1 / x8) | peak RSS x1 | peak RSS x8 | growth | "
             "loader examples/s (2 workers) | model examples/s | loader / model |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['app']} | {r['mb1']:,.0f} / {r['mb8']:,.0f} MiB | {r['rss1']:,.0f} MiB "
                     f"| {r['rss8']:,.0f} MiB | {100 * r['growth']:+.1f}% | {r['loader']:,.0f} | "
                     f"{r['model']:,.0f} | {r['loader'] / r['model']:.1f}x |")
    lines += ["", "x8: every training example written 8 times by `e2e data prepare --repeat 8` "
              "(the same validation and test sets); driving: the expert's recordings of "
              f"{DRIVING_EPISODES} tracks against {8 * DRIVING_EPISODES} ({DRIVING_STEPS} frames "
              "each, `e2e data driving`), read from disk as batches need them "
              "(`data.in_memory=false`). Peak RSS is the training process's ru_maxrss; the "
              "model's rate is its logged steps/s times the batch size."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("streaming", text)


if __name__ == "__main__":
    main()
