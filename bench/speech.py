"""Speech benchmark: real human voices + synthetic voices in training, real people in test.

    flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock .venv/bin/python bench/speech.py
    ... bench/speech.py --config broad                     # a named recipe instead
    ... bench/speech.py --only curve --config broad --curve-minutes 60   # the data curve
    ... bench/speech.py --only pocketsphinx --config broad # pocketsphinx alone (fills its cache)

Parts (`--only`, default `main`):
  main          one run of `e2e train speech`'s default recipe (or --config NAME), on this
                machine's CPU, an hour of two processes by default; it sets only its budget
                (bench/budget.py) on the recipe:
                1. data: the espeak-ng + flite corpus (rendered once), the real game corpora
                   (extracted once by `e2e data speech-real`), split by speaker
                2. training through e2e.train for `--minutes` of wall clock; the number of steps
                   comes from a short measured calibration and the LR schedule follows the clock
                   (train.schedule_by_time), so it anneals inside the budget
                3. WER and CER on each test set, reported separately: the Asterisk prompts (a real
                   woman, never trained on), held-out speakers and voices of the game corpora,
                   Drascula (a whole corpus never trained on), held-out synthetic voices. End to
                   end = the network's own greedy decoding; beside it, as stepwise variants, beam
                   search with the training word list and with a word bigram LM of the training
                   text, and pocketsphinx (a pretrained HMM recognizer, the one users would pick
                   instead) on the same clips of every real test set; its transcripts are cached
                   (RUNS/pocketsphinx.jsonl), so a rerun does not decode them again
                4. real-time factor of `transcribe` (one file at a time) on 1 and 2 threads
  curve         the data curve: the recipe at a fixed budget (`--curve-minutes` per point) on
                nested shares of the real training hours (`--fractions`, data.real_fraction, the
                curve key of bench/budget.py); CER and WER per real test set against real hours,
                a fit of each against log10(hours), and the hours each target would need at that
                rate. Points already run with the same recipe, budget and processes are reused
                from RUNS/curve-RECIPE.json (--fresh runs them again)
  pocketsphinx  pocketsphinx alone on the recipe's real test sets (printed; fills the cache)

Targets (issue 35; greedy, the network alone): Amazon Queen held-out speakers CER <= 35%, WER <=
70%; Drascula CER <= 45%; Asterisk number words and letters WER <= 50%; held-out synthetic digit
strings WER <= 10%; real-time factor <= 0.02 on 2 threads.
"""

from __future__ import annotations

import argparse
import json
import math
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
from budget import check, curve_check
from results import machine, write_section

PARTS = ("main", "curve", "pocketsphinx")
ORDER = ["asterisk_digits", "asterisk_letters", "queen_heldout", "warzone_heldout",
         "hedgewars_heldout", "drascula", "synth_digits", "synth_letters", "synth_words",
         "synth_sentences"]
WHAT = {"asterisk_digits": "Asterisk number words (real woman, 8 kHz, never trained on)",
        "asterisk_letters": "Asterisk letters (same speaker)",
        "queen_heldout": "Amazon Queen, held-out speakers",
        "warzone_heldout": "Warzone 2100, held-out folders (speakers unknown)",
        "hedgewars_heldout": "Hedgewars, held-out voice packs",
        "drascula": "Drascula (whole corpus never trained on)",
        "synth_digits": "held-out synthetic voices, digit strings",
        "synth_letters": "held-out synthetic voices, letters",
        "synth_words": "held-out synthetic voices, one word alone",
        "synth_sentences": "held-out synthetic voices, sentences"}
TARGETS = {"asterisk_digits": "WER <= 50%", "asterisk_letters": "WER <= 50%",
           "queen_heldout": "CER <= 35%, WER <= 70%", "drascula": "CER <= 45%",
           "synth_digits": "WER <= 10%"}
# (test set, metric, target) the data curve extrapolates to
CURVE_TARGETS = [("queen_heldout", "cer", 0.35), ("queen_heldout", "wer", 0.70),
                 ("drascula", "cer", 0.45), ("asterisk_digits", "wer", 0.50),
                 ("asterisk_letters", "wer", 0.50)]


def describe(name: str) -> str:
    """A test set's row label; `<corpus>_<speaker>` is a voice held out whole (real_holdout)."""
    if name in WHAT:
        return WHAT[name]
    corpus, _, speaker = name.partition("_")
    return f"{corpus}: the {speaker} voice, held out whole (never trained on)"


def ordered(names: list[str]) -> list[str]:
    """Test sets in table order: real before synthetic, the known ones as ORDER has them."""
    return sorted(names, key=lambda s: (s.startswith("synth_"),
                                        ORDER.index(s) if s in ORDER else len(ORDER), s))


def real_sets(names: list[str]) -> list[str]:
    return [s for s in ordered(names) if not s.startswith("synth_")]


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


def train_run(args: argparse.Namespace, overrides: list[str], minutes: float, out: Path
              ) -> tuple[dict, float, float]:
    """Train the recipe with `overrides` for `minutes` into `out`: (results, calibrated
    steps/s, wall seconds)."""
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config(args.config, "speech", overrides)
    # Each process computes batch_size / nproc examples of a step: calibrate on that share.
    share = cfg.train.batch_size // args.nproc
    rate = steps_per_second(args.config, overrides + [f"train.batch_size={share}"])
    budget = minutes * 60
    expected = max(20, int(rate * budget * 0.9))  # validation passes share the clock
    # The clock decides (schedule_by_time); max_steps is only a ceiling, kept far away.
    overrides = overrides + check("speech", [
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
    return r, rate, time.time() - started


def pocketsphinx_rows(d, cache: Path, workers: int = 1) -> tuple[dict[str, dict], str]:
    """pocketsphinx's WER, CER and RTF on every real test set of the config `d` (the clips the
    network is tested on; `workers` sets at once, one core each), and a note; none when it is
    not installed."""
    from concurrent.futures import ThreadPoolExecutor

    from e2e.stepwise import pocketsphinx
    from e2e.tasks.speech.mix import real_test_sets

    if not pocketsphinx.installed():
        return {}, f"pocketsphinx not installed ({pocketsphinx.INSTALL})"
    sets = real_test_sets(d)
    with ThreadPoolExecutor(max(1, workers)) as pool:  # each set is a pocketsphinx_batch process
        done = dict(zip(sets, pool.map(lambda items: pocketsphinx.evaluate(items, cache),
                                       sets.values())))
    rows = {name: done[name] for name in sets}
    for name, r in rows.items():
        print(f"pocketsphinx {name}: WER {r['wer']:.1%} CER {r['cer']:.1%} ({r['reused']} of "
              f"{r['clips']} clips from the cache)", flush=True)
    audio = sum(r["audio_seconds"] for r in rows.values())
    rtf = sum(r["rtf"] * r["audio_seconds"] for r in rows.values()) / max(audio, 1e-9)
    return rows, (f"pocketsphinx: Debian's pocketsphinx_batch with the pocketsphinx-en-us "
                  f"acoustic model, trigram LM and dictionary, defaults, on the same clips as "
                  f"the network (16 kHz); real-time factor {rtf:.2f} on one thread "
                  f"({audio / 60:.0f} min of audio; decoding time as pocketsphinx logs it, "
                  f"transcripts cached in {cache})")


def table(r: dict, names: list[str], ps: dict[str, dict]) -> list[str]:
    def cell(key: str) -> str:
        v = r.get(f"test/{key}")
        return "-" if v is None else f"{v:.1%}"

    def ps_cell(name: str, metric: str) -> str:
        return f"{ps[name][metric]:.1%}" if name in ps else "-"
    lines = ["| test set | target | WER greedy (end to end) | CER greedy | WER word-list beam | "
             "WER beam + word bigram LM | CER beam + LM | WER pocketsphinx | CER pocketsphinx |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in ordered(names):
        if f"test/{s}_wer" in r:
            lines.append(f"| {describe(s)} | {TARGETS.get(s, '-')} | {cell(s + '_wer')} | "
                         f"{cell(s + '_cer')} | {cell(s + '_beam_wer')} | {cell(s + '_lm_wer')} | "
                         f"{cell(s + '_lm_cer')} | {ps_cell(s, 'wer')} | {ps_cell(s, 'cer')} |")
    return lines


def mix_line(cfg, info) -> str:
    """What the run trained on, from its config and the facts of its data."""
    d, real = cfg.data, info.real
    held = ", ".join(f"{c} ({', '.join(parts['test'])})" for c, parts in
                     real.get("speakers", {}).items() if parts["test"])
    text = (f"Training data: {info.train_utterances} utterances, {info.train_hours} h, of "
            f"which {real.get('real_train_hours', 0)} h real voice acting ({d.real_train}"
            f"{f'; held out for test: {held}' if held else ''}"
            f"{f'; never trained on: {d.real_unseen}' if d.real_unseen else ''}"
            f"{f'; repeated: {d.real_repeat}' if d.real_repeat else ''}"
            f"{f'; {d.real_fraction:g} of the real hours' if d.real_fraction < 1 else ''}) + "
            f"espeak-ng and flite voices ({d.kinds})" if d.real else
            f"Training data: {info.train_utterances} utterances, {info.train_hours} h of "
            f"espeak-ng and flite voices ({d.kinds})")
    return (text + "; augmented (noise, reverb, speed, telephone band + mu-law). Dropped "
            f"before training: {info.dropped_long} clips over {info.max_seconds:g} s; the CTC "
            "length guard's count and the clips left out at extraction are in the run's "
            "report.md. Real test sets are a fixed random subset of at most "
            f"{d.max_test} clips each.")


def command_of(args: argparse.Namespace) -> tuple[str, str]:
    """(this command line with its CPU locks, how the cores were used)."""
    command = ".venv/bin/python bench/speech.py" + "".join(f" {a}" for a in sys.argv[1:])
    return locked(command, args)


def locked(command: str, args: argparse.Namespace) -> tuple[str, str]:
    if args.nproc * args.threads == 1:
        return (f"OMP_NUM_THREADS=1 flock /tmp/e2e-core0.lock taskset -c 0 {command}",
                "pinned to one core (the other may run another benchmark)")
    return (f"flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock {command}",
            f"{args.nproc * args.threads} cores, nothing else running")


def recipe_name(args: argparse.Namespace) -> str:
    return Path(args.config).stem if args.config else "default"


# ---- the data curve ----

def fit_log(hours: list[float], values: list[float]) -> tuple[float, float]:
    """Least squares of value = a + b * log10(hours): (a, b)."""
    if len(set(hours)) < 2:
        raise ValueError(f"a fit needs points at two or more amounts of data, got {hours}")
    x = [math.log10(h) for h in hours]
    mx, my = sum(x) / len(x), sum(values) / len(values)
    b = sum((xi - mx) * (yi - my) for xi, yi in zip(x, values)) / \
        sum((xi - mx) ** 2 for xi in x)
    return my - b * mx, b


def hours_needed(a: float, b: float, target: float) -> float | None:
    """Hours at which the fitted line reaches `target`; None if it does not fall."""
    if b >= 0:
        return None
    return 10 ** ((target - a) / b)


def curve_points(args: argparse.Namespace, overrides: list[str]) -> list[dict]:
    """Run (or reuse) each point of the curve; every point saved as soon as it is done."""
    name = recipe_name(args)
    store = args.runs / f"curve-{name}.json"
    done = {} if args.fresh or not store.exists() else \
        {p["fraction"]: p for p in json.loads(store.read_text())}
    minutes = args.curve_minutes or args.minutes
    points = []
    for f in args.fractions:
        same = done.get(f)
        if same and same["minutes"] == minutes and same["nproc"] == args.nproc and \
                same["overrides"] == overrides:
            print(f"curve: reusing the point at {f:g} of the real hours from {store}")
            points.append(same)
            continue
        extra = curve_check("speech", [f"data.real_fraction={f:g}"]) if f < 1 else []
        out = args.runs / f"curve-{name}-{f:g}"
        r, rate, wall = train_run(args, overrides + extra, minutes, out)
        info = e2e.load(out).info
        single = (".venv/bin/python bench/speech.py"
                  + (f" --config {args.config}" if args.config else "")
                  + f" --nproc {args.nproc} --minutes {minutes:g} --no-write"
                  + "".join(f" --set {o}" for o in [*args.set, *extra]))
        points.append({"fraction": f, "minutes": minutes, "nproc": args.nproc,
                       "overrides": overrides, "hours": info.real.get("real_train_hours", 0.0),
                       "train_hours": info.train_hours, "steps": r.get("steps"),
                       "test_sets": info.test_sets, "command": locked(single, args)[0],
                       "results": {k: v for k, v in r.items() if k.startswith("test/")}})
        done[f] = points[-1]
        args.runs.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps(sorted(done.values(), key=lambda p: p["fraction"]),
                                    indent=1))
    return points


def curve_section(args: argparse.Namespace, points: list[dict]) -> str:
    minutes = points[0]["minutes"]
    sets = real_sets(points[-1]["test_sets"])
    hours = [p["hours"] for p in points]
    command, pinning = command_of(args)
    lines = [
        "## Speech: the data curve (error against hours of real speech, at a fixed budget)", "",
        f"Command: `{command}` (recipe `{args.config or 'the default: e2e config speech'}`)", "",
        f"Machine: {machine()}; {pinning}. Each point trains the recipe for {minutes:g} minutes "
        f"of {args.nproc} process(es) on a share of its real training hours "
        "(`data.real_fraction`: the shortest prefix of one fixed shuffle of the real training "
        "clips that holds that share, so every smaller set is inside every larger one); the "
        "synthetic half and every test set are the same at every point. Greedy decoding (the "
        "network alone); each point alone: the command in its row.", "",
        "| share of the real hours | real hours | all hours | steps | "
        + " | ".join(f"{s} CER / WER" for s in sets) + " | command |",
        "| --- | --- | --- | --- |" + " --- |" * len(sets) + " --- |"]
    for p in points:
        res = p["results"]
        cells = [f"{res[f'test/{s}_cer']:.1%} / {res[f'test/{s}_wer']:.1%}"
                 if f"test/{s}_cer" in res else "-" for s in sets]
        lines.append(f"| {p['fraction']:g} | {p['hours']:.2f} | {p['train_hours']:.2f} | "
                     f"{p['steps']} | " + " | ".join(cells) + f" | `{p['command']}` |")
    lines += ["", "Fit of each real test set's error against log10(real hours) (least squares "
              f"over the {len(points)} points), and the real hours at which the line reaches "
              "each target:", "",
              "| test set | metric | fit | per doubling of the hours | target | hours needed "
              "at this rate |", "| --- | --- | --- | --- | --- | --- |"]
    targets = {(s, m): t for s, m, t in CURVE_TARGETS}
    for s in sets:
        for m in ("cer", "wer"):
            values = [p["results"].get(f"test/{s}_{m}") for p in points]
            if None in values or len(set(hours)) < 2:
                continue
            a, b = fit_log(hours, values)
            t = targets.get((s, m))
            need = hours_needed(a, b, t) if t is not None else None
            verdict = ("-" if t is None else "never: the error does not fall with more data "
                       "at this budget" if need is None else f"{need:,.0f} h")
            lines.append(f"| {describe(s)} | {m.upper()} | {a:.1%} {'-' if b < 0 else '+'} "
                         f"{abs(b):.1%} x log10(h) | {b * math.log10(2):+.1%} | "
                         f"{'-' if t is None else f'<= {t:.0%}'} | {verdict} |")
    lines += ["", f"The extrapolation assumes every point's budget, {minutes:g} minutes of "
              f"{args.nproc} process(es), the recipe's model and the same synthetic half: "
              "with the budget fixed, more hours are fewer passes over each clip, so this is the "
              "rate of more data at this compute, not of more data with the compute to use it; "
              "a log-linear line through a few points is a rough guide far beyond them."]
    return "\n".join(lines)


def curve_plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    hours = [p["hours"] for p in points]
    for s in real_sets(points[-1]["test_sets"]):
        values = [p["results"].get(f"test/{s}_cer") for p in points]
        if None not in values:
            ax.plot(hours, values, marker="o", label=s)
    ax.set_xscale("log")
    ax.set_xlabel("hours of real speech in training")
    ax.set_ylabel("CER, greedy (lower is better)")
    ax.set_title(f"speech: data curve, {points[0]['minutes']:g} min per point")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def fractions(text: str) -> list[float]:
    values = sorted({float(v) for v in text.split(",") if v.strip()})
    if not values or not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"fractions in (0, 1], comma-separated; got '{text}'")
    return values


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=PARTS, default="main", help="which part (default: main)")
    p.add_argument("--config", help="a named recipe or YAML file (default: the default recipe)")
    p.add_argument("--runs", type=Path, default=Path("bench/runs/speech"))
    p.add_argument("--corpus", type=Path, default=Path("bench/runs/speech/corpus"))
    p.add_argument("--real", type=Path, default=Path("bench/runs/speech/real"),
                   help="folder of the extracted real corpora (e2e data speech-real)")
    p.add_argument("--minutes", type=float, default=60.0, help="training budget (wall clock)")
    p.add_argument("--curve-minutes", type=float, default=0.0,
                   help="curve: budget per point (default: --minutes)")
    p.add_argument("--fractions", type=fractions, default=fractions("0.25,0.5,1"),
                   help="curve: shares of the real training hours (default 0.25,0.5,1)")
    p.add_argument("--fresh", action="store_true", help="curve: run every point again")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training")
    p.add_argument("--nproc", type=int, default=2,
                   help="training processes (DistributedDataParallel, one core each); "
                        "train.batch_size is the global batch, shared among them")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="overrides on top of the recipe (an experiment: recorded in the command)")
    p.add_argument("--no-pocketsphinx", action="store_true",
                   help="main: leave out the pocketsphinx columns")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--print-config", action="store_true",
                   help="print the config this command trains (without its time budget), exit; "
                        "with --only curve, each point's, as YAML documents")
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
    overrides = [*check("speech", [f"data.corpus={args.corpus}", f"data.real={args.real}"]),
                 *args.set]
    cfg = load_config(args.config, "speech", overrides)
    if args.print_config:  # what this command trains, before its time budget is added
        if args.only == "curve":
            print("---\n".join(load_config(args.config, "speech", overrides + (
                curve_check("speech", [f"data.real_fraction={f:g}"]) if f < 1 else [])
            ).to_yaml() for f in args.fractions), end="")
        else:
            print(cfg.to_yaml(), end="")
        return
    cache = args.runs / "pocketsphinx.jsonl"
    if args.only == "pocketsphinx":
        rows, note = pocketsphinx_rows(cfg.data, cache, args.nproc * args.threads)
        print(note)
        return
    if args.only == "curve":
        points = curve_points(args, overrides)
        text = curve_section(args, points)
        print(text)
        if not args.no_write:
            curve_plot(points, Path(__file__).parent / "plots" / "speech_real_hours.png")
            write_section("speech-curve", text + "\n\n![speech: data curve]"
                          "(plots/speech_real_hours.png)")
        return
    out = args.runs / recipe_name(args)
    r, rate, wall = train_run(args, overrides, args.minutes, out)
    rtf = {(beam, t): real_time_factor(out, asterisk_files, beam, t) for t in (1, 2)
           for beam in (False, True)}
    print(json.dumps({"results": r, "rtf": {str(k): v for k, v in rtf.items()}}, indent=1,
                     default=str))
    model_info = e2e.load(out).info
    ps, ps_note = ({}, "pocketsphinx left out (--no-pocketsphinx)") if args.no_pocketsphinx \
        else pocketsphinx_rows(cfg.data, cache, args.nproc * args.threads)
    command, pinning = command_of(args)
    lines = [
        "## Speech: real human voices + synthetic voices in training, real people in test", "",
        f"Command: `{command}` (recipe "
        f"`{args.config or 'the default: e2e config speech'}`)", "",
        f"Machine: {machine()}; {pinning}. "
        f"Training: {args.nproc} process(es) x {args.threads} torch thread(s), "
        f"{args.minutes:g} minutes of wall clock ({r.get('steps', '?')} steps, batch "
        f"{cfg.train.batch_size}{' shared by the processes' if args.nproc > 1 else ''}; calibrated "
        f"{rate:.2f} steps/s); the "
        f"whole command took {wall / 60:.0f} minutes of training and evaluation.", "",
        mix_line(cfg, model_info), "",
        f"Model: learned conv front end on the raw waveform + conformer, "
        f"{r.get('parameters', 0):,} parameters, CTC over characters. {ps_note}.", "",
        *table(r, model_info.test_sets, ps), "",
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
