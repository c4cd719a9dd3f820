"""Speech benchmark: real human voices + synthetic voices in training, real people in test.

    flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock .venv/bin/python bench/speech.py

One run of `e2e train speech`'s default recipe (or --config NAME), on this machine's CPU, an
hour of two processes by default; it sets only its budget (bench/budget.py) on the recipe:
  1. data: the espeak-ng + flite corpus (rendered once), the real game corpora (extracted once
     by `e2e data speech-real`), split by speaker
  2. training through e2e.train for `--minutes` of wall clock; the number of steps comes from
     a short measured calibration and the LR schedule follows the clock
     (train.schedule_by_time), so it anneals inside the budget
  3. WER and CER on each test set, reported separately: the Asterisk prompts (a real woman,
     never trained on), held-out speakers of the game corpora, Drascula (a whole corpus never
     trained on), held-out synthetic voices. End to end = the network's own greedy decoding;
     beside it, as stepwise variants, beam search with the training word list and with a word
     bigram language model of the training text
  4. real-time factor of `transcribe` (one file at a time) on 1 and 2 threads

Targets (issue 17): Asterisk digits and letters WER <= 20%; unseen corpus CER <= 25%, WER <=
50%; held-out real speakers WER <= 35%; held-out synthetic digits <= 5%, sentences <= 15%;
real-time factor <= 0.02 on 2 threads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

import e2e
from e2e.engine.batching import to_device
from e2e.engine.distributed import launch
from e2e.engine.optim import build_optimizer
from e2e.engine.trainer import autocast_for, seed_everything
from e2e.tasks import get_task, load_config

sys.path.insert(0, str(Path(__file__).parent))
from budget import check
from results import machine, write_section

SETS = ["asterisk_digits", "asterisk_letters", "queen_heldout", "warzone_heldout", "drascula",
        "synth_digits", "synth_letters", "synth_sentences"]
WHAT = {"asterisk_digits": "Asterisk number words (real woman, 8 kHz, never trained on)",
        "asterisk_letters": "Asterisk letters (same speaker)",
        "queen_heldout": "Amazon Queen, held-out speakers",
        "warzone_heldout": "Warzone 2100, held-out folders (speakers unknown)",
        "drascula": "Drascula (whole corpus never trained on)",
        "synth_digits": "held-out synthetic voices, digit strings",
        "synth_letters": "held-out synthetic voices, letters",
        "synth_sentences": "held-out synthetic voices, sentences"}
TARGETS = {"asterisk_digits": "WER <= 20%", "asterisk_letters": "WER <= 20%",
           "queen_heldout": "WER <= 35%", "drascula": "CER <= 25%, WER <= 50%",
           "synth_digits": "WER <= 5%", "synth_sentences": "WER <= 15%"}


def steps_per_second(config: str | None, overrides: list[str], steps: int = 4) -> float:
    """Training steps/s of the recipe on its own data (the first step is a warm-up)."""
    cfg = load_config(config, "speech", overrides)
    seed_everything(0)
    task = get_task("speech")
    splits = task.build_data(cfg)
    model = task.build_model(cfg, splits.info)
    opt = build_optimizer(model, cfg.train)
    autocast = autocast_for(torch.device("cpu"), cfg.train.precision)
    g = torch.Generator().manual_seed(0)
    # Batches of neighbours in length, as the engine's length bucketing makes them (random
    # batches pad to their longest clip and measured 0.75 steps/s where training ran at 2).
    by_length = torch.argsort(splits.train.lengths)
    for i in range(steps + 1):
        first = int(torch.randint(len(by_length) - cfg.train.batch_size, (1,), generator=g))
        idx = by_length[first:first + cfg.train.batch_size].tolist()
        batch = task.collate([splits.train[j] for j in idx])
        if i == 1:
            start = time.perf_counter()
        batch = task.prepare_batch(to_device(batch, torch.device("cpu")), True, cfg, splits.info)
        with autocast:
            loss = task.loss(model, batch, cfg, splits.info)
        loss.float().backward()
        opt.step()
        opt.zero_grad()
    return steps / (time.perf_counter() - start)


def real_time_factor(run: Path, files: list[Path], beam: bool, threads: int,
                     passes: int = 3) -> float:
    """Compute seconds per audio second over `files`, one file at a time: the median of
    `passes` passes. One pass of the same command on the same model read anywhere from 0.011
    to 0.020 between runs on one 2-core machine; the median of three is steadier than one."""
    torch.set_num_threads(threads)
    model = e2e.load(run)
    model.predict([str(files[0])], beam=beam)  # warm-up
    factors = []
    for _ in range(passes):
        audio = compute = 0.0
        for f in files:
            r = model.predict([str(f)], beam=beam)[0]
            audio += r["seconds"]
            compute += r["rtf"] * r["seconds"]
        factors.append(compute / audio)
    return sorted(factors)[len(factors) // 2]


def table(r: dict) -> list[str]:
    def cell(key: str) -> str:
        v = r.get(f"test/{key}")
        return "-" if v is None else f"{v:.1%}"
    lines = ["| test set | target | WER greedy (end to end) | CER greedy | WER word-list beam | "
             "WER beam + word bigram LM | CER beam + LM |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in SETS:
        if f"test/{s}_wer" in r:
            lines.append(f"| {WHAT[s]} | {TARGETS.get(s, '-')} | {cell(s + '_wer')} | "
                         f"{cell(s + '_cer')} | {cell(s + '_beam_wer')} | {cell(s + '_lm_wer')} | "
                         f"{cell(s + '_lm_cer')} |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", help="a named recipe or YAML file (default: the default recipe)")
    p.add_argument("--runs", type=Path, default=Path("bench/runs/speech"))
    p.add_argument("--corpus", type=Path, default=Path("bench/runs/speech/corpus"))
    p.add_argument("--real", type=Path, default=Path("bench/runs/speech/real"),
                   help="folder of the extracted real corpora (e2e data speech-real)")
    p.add_argument("--minutes", type=float, default=60.0, help="training budget (wall clock)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training")
    p.add_argument("--nproc", type=int, default=2,
                   help="training processes (DistributedDataParallel, one core each); "
                        "train.batch_size is the global batch, shared among them")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides on top of the recipe")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--print-config", action="store_true",
                   help="print the config this command trains (without its time budget), exit")
    p.add_argument("--rtf-only", type=Path, metavar="RUN",
                   help="only the real-time factor of RUN on the Asterisk prompts (printed)")
    args = p.parse_args()
    from e2e.data.asterisk import asterisk_set

    asterisk_files = [u.path for s in ("digits", "letters") for u in asterisk_set(s)]
    if args.rtf_only:
        for threads in (1, 2):
            for beam in (False, True):
                rtf = real_time_factor(args.rtf_only, asterisk_files, beam, threads)
                print(f"{len(asterisk_files)} Asterisk files, {threads} thread(s), "
                      f"{'beam + word list' if beam else 'greedy'}: real-time factor {rtf:.4f}")
        return
    torch.set_num_threads(args.threads)
    command = ".venv/bin/python bench/speech.py" + "".join(f" {a}" for a in sys.argv[1:])
    cores = args.nproc * args.threads
    if cores == 1:
        command = f"OMP_NUM_THREADS=1 flock /tmp/e2e-core0.lock taskset -c 0 {command}"
        pinning = "pinned to one core (the other may run another benchmark)"
    else:
        command = f"flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock {command}"
        pinning = f"{cores} cores, nothing else running"
    overrides = [*check("speech", [f"data.corpus={args.corpus}", f"data.real={args.real}"]),
                 *args.set]
    # Each process computes batch_size / nproc examples of a step: calibrate on that share.
    cfg = load_config(args.config, "speech", overrides)
    if args.print_config:  # what this command trains, before its time budget is added
        print(cfg.to_yaml(), end="")
        return
    out = args.runs / (Path(args.config).stem if args.config else "default")
    shutil.rmtree(out, ignore_errors=True)
    share = cfg.train.batch_size // args.nproc
    rate = steps_per_second(args.config, overrides + [f"train.batch_size={share}"])
    budget = args.minutes * 60
    expected = max(20, int(rate * budget * 0.9))  # validation passes share the clock
    # The clock decides (schedule_by_time); max_steps is only a ceiling, kept far away.
    overrides += check("speech", [
                  f"train.max_steps={int(3 * expected)}", f"train.time_limit={budget}",
                  "train.schedule_by_time=true", f"train.eval_every={max(10, expected // 4)}"])
    started = time.time()
    if args.nproc > 1:
        code = launch(args.nproc, ["train", "speech", "--out", str(out),
                                   *(["--config", args.config] if args.config else []),
                                   *[a for o in overrides for a in ("--set", o)]])
        if code:
            sys.exit(f"training failed (exit status {code})")
        r = json.loads((out / "results.json").read_text())
    else:
        r = e2e.train("speech", config=args.config, out=out, overrides=overrides)
    wall = time.time() - started
    files = asterisk_files
    rtf = {(beam, t): real_time_factor(out, files, beam, t) for t in (1, 2)
           for beam in (False, True)}
    print(json.dumps({"results": r, "rtf": {str(k): v for k, v in rtf.items()}}, indent=1,
                     default=str))
    model_info = e2e.load(out).info
    lines = [
        "## Speech: real human voices + synthetic voices in training, real people in test", "",
        f"Command: `{command}` (recipe "
        f"`{args.config or 'the default: e2e config speech'}`)", "",
        f"Machine: {machine()}; {pinning}. "
        f"Training: {args.nproc} process(es) x {args.threads} torch thread(s), "
        f"{args.minutes:g} minutes of wall clock ({r.get('steps', '?')} steps, batch "
        f"{cfg.train.batch_size}{' shared by the processes' if args.nproc > 1 else ''}; calibrated "
        f"{rate:.2f} steps/s); the "
        f"whole command took {wall / 60:.0f} minutes with the final evaluation.", "",
        f"Training data: {model_info.train_utterances} utterances, "
        f"{model_info.train_hours} h: real voice acting (Flight of the Amazon "
        "Queen and Warzone 2100 minus held-out speakers) + espeak-ng and flite voices; "
        f"augmented (noise, reverb, speed, telephone band + mu-law). Dropped before training: "
        f"{model_info.dropped_long} clips over {model_info.max_seconds:g} s; "
        "the CTC length guard's count and the clips left out at extraction are in the run's "
        "report.md. Real test sets are a fixed random subset of at most "
        f"{cfg.data.max_test} clips each.", "",
        f"Model: learned conv front end on the raw waveform + conformer, "
        f"{r.get('parameters', 0):,} parameters, CTC over characters.", "",
        *table(r), "",
        "Real-time factor of `transcribe` (compute s / audio s, one file at a time, the 54 "
        "Asterisk prompts, median of 3 passes; target <= 0.02 on 2 threads):", "",
        "| threads | greedy | word-list beam |", "| --- | --- | --- |",
        *[f"| {t} | {rtf[(False, t)]:.4f} | {rtf[(True, t)]:.4f} |" for t in (1, 2)]]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("speech", text)


if __name__ == "__main__":
    main()
