"""Scaling and deployment numbers: training samples/s with 1 and 2 processes (DDP through
`e2e train --nproc`) and with 2 "machines" of 1 process (two launchers on this machine,
`--nnodes 2`, meeting on the loopback), and inference latency of ONNX Runtime vs PyTorch per
application.

    flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock \
        .venv/bin/python bench/scale.py [--steps 60] [--runs RUN ...]
    .venv/bin/python bench/scale.py --latency-only --tiny   # a quick check, writes nothing
    .venv/bin/python bench/scale.py --throughput-only       # the training table alone

Throughput: `e2e train vision` (Fashion-MNIST, the default 1.17M-parameter CNN, global batch
256, bf16 autocast where the CPU has AMX) for `--steps` optimizer steps; samples/s is timed
from the 10th logged step to the last (start-up, data loading and the final evaluation
excluded). Latency: every graph `e2e export` writes, fp32, median of repeated calls in this
process, PyTorch (no_grad, eval) vs onnxruntime's CPU provider with the same thread count:
vision at batch 1 and 64, the speech encoder on 3 s of audio, the driving policy at batch 1,
the text encoder on 32 source tokens and its (cache-free) decoder step on a 16-token prefix.
The runs are those of bench/<app>.py under bench/runs/ (read, never written: exports go to
a temporary folder); where one is missing, a stand-in (see `stand_in`), named in the table.
Writes two sections of bench/RESULTS.md, `scale` (throughput) and `latency`, each only when
its table was measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, write_section  # noqa: E402

from e2e.engine.progress import read_metrics  # noqa: E402


def train_throughput(nproc: int, steps: int, out: Path, batch: int, extra: list[str],
                     nnodes: int = 1) -> float:
    """Samples/s of `e2e train vision` in `nproc` processes on each of `nnodes` "machines"
    (launchers on 127.0.0.1 meeting at one rendezvous: the network is the loopback)."""
    cmd = [sys.executable, "-m", "e2e", "train", "vision", "--out", str(out), "--quiet", *extra,
           "--set", f"train.max_steps={steps}", "--set", "train.log_every=10",
           "--set", f"train.batch_size={batch}", "--set", "train.check_gradflow=false"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if nnodes == 1:
        subprocess.run(cmd, check=True, env=env)
    else:
        from e2e.engine.distributed import free_port

        # Each launcher would give its processes all the cores: share them out as one would.
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // (nnodes * nproc))))
        endpoint = f"127.0.0.1:{free_port()}"
        nodes = [subprocess.Popen([*cmd, "--nproc", str(nproc), "--nnodes", str(nnodes),
                                   "--node-rank", str(r), "--rdzv-endpoint", endpoint], env=env)
                 for r in range(nnodes)]
        if any(node.wait() for node in nodes):
            raise SystemExit(f"a launcher of the {nnodes}-machine run failed")
    times = {r["step"]: float(r["time_s"]) for r in read_metrics(out / "metrics.csv")
             if r["metric"] == "train/loss"}
    last = max(times)  # logged every 10 steps
    return (last - 10) * batch / (times[last] - times[10])


def median_ms(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, lazy initialisation)
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return 1000 * statistics.median(samples)


APPS = ("vision", "speech", "driving", "text")
BENCH_RUNS = Path(__file__).parent / "runs"
# The runs bench/<app>.py trains (first one with weights wins); without them, a stand-in.
BENCH_CANDIDATES = {"vision": ["vision/default"], "speech": ["speech/default", "speech/real-mix"],
                    "driving": ["driving/dagger/round-1", "driving/dagger/round-0"],
                    "text": ["text-messages", "text-bible", "text-debian"]}
COPY_WORDS = "red green blue cat dog sun moon tree star fish".split()


def stand_in(app: str, out: Path) -> Path:
    """A run of the right kind made in seconds: latency depends on the network, not its
    weights. Speech and driving: the default network, freshly initialised. Vision and text
    (whose data info comes from data): a tiny model trained briefly on digits / a copy task."""
    import random

    import e2e
    from e2e.data.audio import VOCAB
    from e2e.export import init_run

    if app == "speech":
        return init_run("speech", {"vocab": VOCAB}, out)
    if app == "driving":
        m = e2e.load_config(None, "driving").model  # the frames the default model stacks
        return init_run("driving", {"frame_shape": [96, 96, 3], "frames": m.frames,
                                    "frame_gap": m.frame_gap}, out)
    if app == "vision":
        e2e.train("vision", data="digits", out=out, quiet=True,
                  overrides=["train.epochs=1", "model.widths=[8,16]"])
        return out
    rng = random.Random(0)
    lines = [" ".join(rng.choice(COPY_WORDS) for _ in range(rng.randint(2, 5)))
             for _ in range(400)]
    tsv = out.with_suffix(".tsv")
    tsv.write_text("".join(f"{line}\t{line}\n" for line in lines))
    e2e.train("text", data=str(tsv), out=out, quiet=True, overrides=[
        "data.vocab_size=320", "model.d_model=64", "model.ff=128", "model.encoder_layers=1",
        "model.decoder_layers=1", "model.max_len=32", "data.max_source_tokens=24",
        "data.max_target_tokens=24", "train.max_steps=20", "train.eval_every=20",
        "data.val_fraction=0.05", "data.test_fraction=0.05", "data.val_decode=8", "model.beam=1"])
    return out


def pick_runs(apps: list[str], tmp: Path, tiny: bool,
              trained_here: dict[str, Path]) -> dict[str, tuple[Path, str]]:
    """app -> (run, where it came from): bench/runs/ when there (read only), else a run
    this script trained (the throughput run, for vision), else a stand-in."""
    picked = {}
    for app in apps:
        found = [BENCH_RUNS / c for c in BENCH_CANDIDATES[app]
                 if any((BENCH_RUNS / c / f).exists()  # the best weights; an older e2e
                        for f in ("model.safetensors", "checkpoints/best.pt"))]
        if found and not tiny:
            picked[app] = (found[0], str(found[0].relative_to(BENCH_RUNS.parent.parent)))
        elif app in trained_here:
            picked[app] = (trained_here[app], "the throughput run")
        else:
            picked[app] = (stand_in(app, tmp / f"stand-in-{app}"), "stand-in (tiny)"
                           if app in ("vision", "text") else "stand-in (untrained default)")
    return picked


def latency_cases(app: str, specs: dict, info) -> list[tuple[str, str, dict]]:
    """(graph, what the input is, inputs) to time: what one user request feeds each graph."""
    from e2e.tasks.base import _random_like as random_like

    g = torch.Generator().manual_seed(0)
    if app == "speech":
        seconds = 3
        wave = 0.1 * torch.randn(1, 16000 * seconds, generator=g)
        return [("encoder", f"{seconds} s of audio", {"waveform": wave,
                                                       "lengths": torch.tensor([wave.shape[1]])})]
    if app == "text":
        from e2e.tasks.text.export import random_ids

        src = random_ids(g, info.vocab, [32])
        with torch.no_grad():
            memory = specs["encoder"].module(src)
        tokens = random_ids(g, info.vocab, [16])
        return [("encoder", "32 source tokens", {"src": src}),
                ("decoder_step", "16-token prefix, 32 source tokens",
                 {"tokens": tokens, "memory": memory, "src": src})]
    (name, spec), = specs.items()
    cases = []
    for batch in (1, 64) if app == "vision" else (1,):
        # Random inputs at this batch size (axis 0 is the dynamic batch axis).
        inputs = {k: random_like(v[:1].expand(batch, *v.shape[1:]), g)
                  for k, v in spec.inputs.items()}
        cases.append((name, f"batch {batch}", inputs))
    return cases


def latency_rows(app: str, run: Path, origin: str, repeat: int = 50) -> list[str]:
    """Export RUN (to a temporary folder: bench runs stay untouched) and time each graph."""
    import onnxruntime as ort

    from e2e.api import Predictor
    from e2e.export import export_run

    pred = Predictor(run)
    specs = pred.serving.export_specs(pred.model, pred.cfg, pred.info)
    rows = []
    with tempfile.TemporaryDirectory() as out:
        manifest = export_run(run, ["onnx"], out=out, quiet=True)
        options = ort.SessionOptions()  # the same threads as PyTorch, for a fair comparison
        options.intra_op_num_threads = torch.get_num_threads()
        for name, what, inputs in latency_cases(app, specs, pred.info):
            session = ort.InferenceSession(
                str(Path(out) / manifest["graphs"][name]["onnx"]["file"]), options,
                providers=["CPUExecutionProvider"])
            feed = {k: np.ascontiguousarray(v.numpy()) for k, v in inputs.items()}
            args = tuple(inputs.values())
            with torch.no_grad():
                t_torch = median_ms(lambda m=specs[name].module, a=args: m(*a), repeat)
            t_ort = median_ms(lambda s=session, f=feed: s.run(None, f), repeat)
            rows.append(f"| {app} | {name} | {what} | {t_torch:.2f} | {t_ort:.2f} "
                        f"| {t_torch / t_ort:.2f}x | {origin} |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--apps", nargs="+", default=list(APPS), choices=APPS,
                        help="applications to time (default: all)")
    parser.add_argument("--runs", nargs="*", default=[],
                        help="runs to time instead of bench/runs/ for their application")
    parser.add_argument("--latency-only", action="store_true",
                        help="skip the training throughput; print the latency table only")
    parser.add_argument("--throughput-only", action="store_true",
                        help="skip the latency; print the training throughput table only")
    parser.add_argument("--tiny", action="store_true",
                        help="ignore bench/runs/: time the stand-in runs (a quick check)")
    parser.add_argument("--no-write", action="store_true", help="leave bench/RESULTS.md alone")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="config overrides for the throughput runs, e.g. "
                             "train.precision=fp32 (a plain CPU's arithmetic)")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script runs (digits, tiny model); write nothing")
    args = parser.parse_args()
    command = ("flock /tmp/e2e-core0.lock flock /tmp/e2e-core1.lock .venv/bin/python "
               "bench/scale.py " + " ".join(sys.argv[1:]))
    write = not (args.smoke or args.no_write or args.tiny)  # each table is its own section

    extra = ["--data", "digits", "--set", "model.widths=[8,16]"] if args.smoke else []
    extra += ["--set", *args.overrides] if args.overrides else []
    header = [f"Command: `{command.strip()}`  ", f"Machine: {machine()}", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.latency_only:
            speed = {}
            for what, nproc, nnodes in (("1", 1, 1), ("2", 2, 1),
                                        ("2: 2 machines x 1 (loopback)", 1, 2)):
                speed[what] = train_throughput(nproc, args.steps, tmp / f"p{nproc}n{nnodes}",
                                               args.batch, extra, nnodes)
                print(f"{what} process(es): {speed[what]:.0f} samples/s", flush=True)
            body = [
                "## Scaling: processes and machines (bench/scale.py)", "", *header,
                f"Training throughput, `e2e train vision` on Fashion-MNIST, global batch "
                f"{args.batch}, {args.steps} steps, timed from step 10 (DDP over gloo; with 2 "
                f"processes each gets {max(1, (os.cpu_count() or 1) // 2)} thread(s); the "
                "2 machines are two launchers on this one, `--nnodes 2 --node-rank R "
                "--rdzv-endpoint 127.0.0.1:PORT`):", "",
                "| processes | samples/s | steps/s | vs 1 process |", "| --- | --- | --- | --- |",
                *(f"| {n} | {s:.0f} | {s / args.batch:.2f} | {s / speed['1']:.2f}x |"
                  for n, s in speed.items()), ""]
            print("\n".join(body))
            if write:
                write_section("scale", "\n".join(body))
        if not args.throughput_only:
            picked = pick_runs(args.apps, tmp, args.tiny or args.smoke,
                               {"vision": tmp / "p1n1"} if not args.latency_only else {})
            for run in map(Path, args.runs):
                from e2e.tasks import load_config

                picked[load_config(run / "config.yaml").task] = (run, str(run))
            rows = [row for app, (run, origin) in picked.items()
                    for row in latency_rows(app, run, origin)]
            body = [
                "## Deployment: inference latency (bench/scale.py)", "", *header,
                f"Inference latency, fp32, median of 50 calls (ms), {torch.get_num_threads()} "
                "thread(s) for both:", "",
                "| application | graph | input | PyTorch | ONNX Runtime | speed-up | run |",
                "| --- | --- | --- | --- | --- | --- | --- |", *rows, "",
            ]
            print("\n".join(body))
            if write:
                write_section("latency", "\n".join(body))


if __name__ == "__main__":
    main()
