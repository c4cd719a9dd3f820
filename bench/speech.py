"""Speech benchmark: synthetic voices for training, held-out voices and a real human for testing.

    flock /tmp/e2e-cpu.lock .venv/bin/python bench/speech.py     # writes bench/RESULTS.md

In one process, on this machine's CPU, wall clock:
  1. render the espeak-ng corpus (`e2e data speech-synth`; reused when already there)
  2. train the default model twice, side by side (one process and one thread each: on two
     shared cores, two single-thread processes beat one two-thread process), with the same
     training-time budget (`--minutes`), with and without waveform augmentation; the number
     of steps comes from a short measured calibration so that the learning-rate schedule
     completes inside the budget
  3. WER/CER of each run on each test set: held-out synthetic voices (digits, letters,
     sentences) and the Asterisk prompts (a real human, 8 kHz), greedy and beam search
     with the training word list
  4. real-time factor of `transcribe` (one file at a time, 2 threads) on the test files

Targets (issue 3): synthetic digits WER <= 5%, sentences <= 15%; Asterisk digits and letters
<= 20% trained on synthetic speech only; real-time factor <= 0.02.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

import e2e
from e2e.engine.batching import to_device
from e2e.engine.optim import build_optimizer
from e2e.engine.trainer import autocast_for, seed_everything
from e2e.tasks import get_task, load_config
from e2e.tasks.speech.synth import build_corpus

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, write_section

SETS = ["synth_digits", "synth_letters", "synth_sentences", "asterisk_digits", "asterisk_letters"]
TARGETS = {"synth_digits": 0.05, "synth_sentences": 0.15, "asterisk_digits": 0.20,
           "asterisk_letters": 0.20}


def data_overrides(args) -> list[str]:
    return [f"data.corpus={args.corpus}", f"data.n={args.n}", f"data.n_val={args.n_val}",
            f"data.n_test={args.n_test}"]


def steps_per_second(overrides: list[str], steps: int = 4) -> float:
    """Training steps/s of the model on the same corpus (same arguments, so the corpus and its
    manifests stay exactly as they are for the run beside this one)."""
    cfg = load_config(None, "speech", overrides + ["data.asterisk=false"])
    seed_everything(0)
    task = get_task("speech")
    splits = task.build_data(cfg)
    task.setup(cfg, splits.info)
    model = task.build_model(cfg, splits.info)
    opt = build_optimizer(model, cfg.train)
    autocast = autocast_for(torch.device("cpu"), cfg.train.precision)
    g = torch.Generator().manual_seed(0)
    for i in range(steps + 1):
        idx = torch.randint(len(splits.train), (cfg.train.batch_size,), generator=g).tolist()
        batch = task.collate([splits.train[j] for j in idx])
        if i == 1:
            start = time.perf_counter()  # the first step warms up allocators and kernels
        batch = task.prepare_batch(to_device(batch, torch.device("cpu")), train=True)
        with autocast:
            loss = task.loss(model, batch)
        loss.float().backward()
        opt.step()
        opt.zero_grad()
    return steps / (time.perf_counter() - start)


def train_run(name: str, args, extra: list[str]) -> dict:
    torch.set_num_threads(args.threads)
    out = args.runs / name
    shutil.rmtree(out, ignore_errors=True)
    overrides = data_overrides(args) + extra
    rate = steps_per_second(overrides)
    budget = args.minutes * 60
    # Evaluations come out of the same wall clock: aim a bit short.
    expected = max(20, int(rate * budget * 0.85))
    # The schedule follows the clock (train.schedule_by_time): where the machine turns out
    # slower than the calibration, the LR still anneals by the end of the budget instead of
    # being cut off near its peak. max_steps is only a ceiling.
    overrides += [f"train.max_steps={int(1.5 * expected)}", f"train.time_limit={budget}",
                  "train.schedule_by_time=true", f"train.eval_every={max(10, expected // 4)}"]
    started = time.time()
    results = e2e.train("speech", out=out, overrides=overrides)
    wall = time.time() - started
    print(f"{name}: {rate:.3f} steps/s calibrated, ~{expected} steps expected; "
          f"wall {wall:.0f} s")
    return {"name": name, "overrides": extra, "steps_per_s": rate, "wall_s": wall, **results}


def real_time_factor(run: Path, files: list[Path], beam: bool, threads: int) -> float:
    torch.set_num_threads(threads)
    model = e2e.load(run)
    model.predict([str(files[0])], beam=beam)  # warm-up
    total_audio = total_compute = 0.0
    for f in files:
        r = model.predict([str(f)], beam=beam)[0]
        total_audio += r["seconds"]
        total_compute += r["rtf"] * r["seconds"]
    return total_compute / total_audio


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, default=Path("bench/runs/speech/corpus"))
    p.add_argument("--runs", type=Path, default=Path("bench/runs/speech"))
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--minutes", type=float, default=7.0, help="training budget per run")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for training: on a shared, oversubscribed machine one "
                        "thread per process beats two that wait for each other")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--rtf-only", type=Path, metavar="RUN",
                   help="only the real-time factor of RUN on the Asterisk prompts (printed)")
    args = p.parse_args()
    if args.rtf_only:
        from e2e.data.asterisk import asterisk_set

        files = [u.path for s in ("digits", "letters") for u in asterisk_set(s)]
        for threads in (1, 2):
            for beam in (False, True):
                rtf = real_time_factor(args.rtf_only, files, beam, threads)
                print(f"{len(files)} Asterisk files, {threads} thread(s), "
                      f"{'beam + word list' if beam else 'greedy'}: real-time factor {rtf:.4f}")
        return
    torch.set_num_threads(args.threads)
    command = "flock /tmp/e2e-cpu.lock .venv/bin/python bench/speech.py" + \
        "".join(f" {a}" for a in sys.argv[1:])

    t = time.time()
    counts = build_corpus(args.corpus, args.n, args.n_val, args.n_test)
    render_s = time.time() - t
    # The two runs train side by side, one process (and `--threads` threads) each.
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        jobs = [pool.submit(train_run, "augmented", args, []),
                pool.submit(train_run, "clean", args, ["data.augment=false"])]
        runs = [j.result() for j in jobs]

    from e2e.data.asterisk import asterisk_set
    from e2e.data.audio import read_manifest

    files = [u.path for s in ("digits", "letters") for u in asterisk_set(s)] + \
        [u.path for u in read_manifest(args.corpus / "test_sentences.tsv")[:40]]
    rtf = {(beam, threads): real_time_factor(args.runs / "augmented", files, beam, threads)
           for threads in (1, 2) for beam in (False, True)}

    print(json.dumps({"runs": runs, "rtf": {str(k): v for k, v in rtf.items()}}, indent=1,
                     default=str))
    lines = [
        "## Speech: synthetic voices in training, held-out voices and a real human in test", "",
        f"Command: `{command}`", "",
        f"Machine: {machine()}. Timings are wall clock; the command holds the CPU lock that "
        "the other benchmarks take, so nothing else of ours ran beside it.", "",
        f"Corpus: espeak-ng, {counts['train']} training utterances, {counts['val']} validation, "
        f"{args.n_test} test per kind; validation and test voices never occur in training "
        f"(rendered in {render_s:.0f} s, {counts['rendered']} new). Asterisk: 28 number "
        "words and 26 letters, one female speaker, 8 kHz telephone prompts.", "",
        f"Model: learned conv front end + conformer, "
        f"{runs[0]['parameters']:,} parameters, CTC over characters; "
        f"each run trained for at most {args.minutes:g} minutes.", "",
        "| test set (WER) | target | augmented, greedy | augmented, beam + word list | "
        "clean, greedy | clean, beam + word list |", "| --- | --- | --- | --- | --- | --- |"]
    for s in SETS:
        target = f"<= {TARGETS[s]:.0%}" if s in TARGETS else "-"
        cells = [f"{r.get(f'test/{s}_wer', float('nan')):.3f} / "
                 f"{r.get(f'test/{s}_beam_wer', float('nan')):.3f}" for r in runs]
        lines.append(f"| {s} | {target} | " + " | ".join(
            c for cell in cells for c in cell.split(" / ")) + " |")
    lines += ["", "| run | steps | training s | best val WER | steps/s |",
              "| --- | --- | --- | --- | --- |"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['steps']} | {r['train_seconds']:.0f} | "
                     f"{r['best_val/wer']:.3f} | {r['steps_per_s']:.2f} |")
    lines += ["", f"Real-time factor of `transcribe` (compute s / audio s, one file at a time, "
              f"{len(files)} files: the Asterisk prompts and 40 synthetic sentences; target "
              "<= 0.02):", "", "| threads | greedy | beam + word list |", "| --- | --- | --- |"]
    lines += [f"| {t} | {rtf[(False, t)]:.4f} | {rtf[(True, t)]:.4f} |" for t in (1, 2)]
    lines += ["", f"The two runs trained at the same time, {args.threads} torch thread(s) each."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("speech", text)


if __name__ == "__main__":
    main()
