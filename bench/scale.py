"""Scaling and deployment numbers: training samples/s with 1 and 2 processes (DDP through
`e2e train --nproc`), and inference latency of ONNX Runtime vs PyTorch per application.

    flock /tmp/e2e-cpu.lock .venv/bin/python bench/scale.py [--steps 60] [--runs RUN ...]

Throughput: `e2e train vision` (Fashion-MNIST, the default 0.57M-parameter CNN, global batch
256, bf16 autocast where the CPU has AMX) for `--steps` optimizer steps; samples/s is timed
from the 10th logged step to the last (start-up, data loading and the final evaluation
excluded). Latency: each exported graph, fp32, batch 1 and batch 64, median of repeated
calls in this process, PyTorch (no_grad, eval) vs onnxruntime's CPU provider. The vision run
trained here is exported; pass other applications' runs with --runs to time them too.
Writes its section of bench/RESULTS.md.
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


def train_throughput(nproc: int, steps: int, out: Path, batch: int, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "e2e", "train", "vision", "--out", str(out), "--quiet", *extra,
           "--set", f"train.max_steps={steps}", "--set", "train.log_every=10",
           "--set", f"train.batch_size={batch}", "--set", "train.check_gradflow=false"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    subprocess.run(cmd, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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


def latency_rows(run: Path) -> list[str]:
    import onnxruntime as ort

    from e2e.api import Predictor
    from e2e.export import _random_like as random_like
    from e2e.export import export_run

    pred = Predictor(run)
    manifest = export_run(run, ["onnx"], quiet=True)
    specs = pred.task.export_specs(pred.model, pred.info)
    rows = []
    for name, spec in specs.items():
        session = ort.InferenceSession(str(run / "export" / manifest["graphs"][name]["onnx"]
                                           ["file"]), providers=["CPUExecutionProvider"])
        for batch in (1, 64):
            g = torch.Generator().manual_seed(0)
            # Random inputs at this batch size (axis 0 is the dynamic batch axis).
            inputs = {k: random_like(v[:1].expand(batch, *v.shape[1:]), g)
                      if 0 in spec.dynamic.get(k, {}) else v for k, v in spec.inputs.items()}
            if spec.random is not None:  # inputs with constraints (token ids): the task's own
                inputs = spec.random_inputs(g)
                batch = len(next(iter(inputs.values())))
            feed = {k: np.ascontiguousarray(v.numpy()) for k, v in inputs.items()}
            args = tuple(inputs.values())
            with torch.no_grad():
                t_torch = median_ms(lambda m=spec.module, a=args: m(*a), 50)
            t_ort = median_ms(lambda s=session, f=feed: s.run(None, f), 50)
            rows.append(f"| {pred.task.name} | {name} | {batch} | {t_torch:.2f} | {t_ort:.2f} "
                        f"| {t_torch / t_ort:.2f}x |")
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--runs", nargs="*", default=[], help="more runs to export and time")
    parser.add_argument("--smoke", action="store_true",
                        help="check the script runs (digits, tiny model); write nothing")
    args = parser.parse_args()
    command = "flock /tmp/e2e-cpu.lock .venv/bin/python bench/scale.py " + " ".join(sys.argv[1:])

    smoke = ["--data", "digits", "--set", "model.widths=[8,16]"] if args.smoke else []
    with tempfile.TemporaryDirectory() as tmp:
        speed = {}
        for nproc in (1, 2):
            speed[nproc] = train_throughput(nproc, args.steps, Path(tmp) / f"p{nproc}",
                                            args.batch, smoke)
            print(f"{nproc} process(es): {speed[nproc]:.0f} samples/s", flush=True)
        rows = latency_rows(Path(tmp) / "p1")
        for run in args.runs:
            rows += latency_rows(Path(run))

    body = [
        "## Scaling and deployment (bench/scale.py)", "",
        f"Command: `{command.strip()}`  ", f"Machine: {machine()}", "",
        f"Training throughput, `e2e train vision` on Fashion-MNIST, global batch {args.batch}, "
        f"{args.steps} steps, timed from step 10 (DDP over gloo; with 2 processes each gets "
        f"{max(1, (os.cpu_count() or 1) // 2)} thread(s)):", "",
        "| processes | samples/s | vs 1 process |", "| --- | --- | --- |",
        *(f"| {n} | {s:.0f} | {s / speed[1]:.2f}x |" for n, s in speed.items()), "",
        "Inference latency, fp32, median of 50 calls (ms):", "",
        "| application | graph | batch | PyTorch | ONNX Runtime | speed-up |",
        "| --- | --- | --- | --- | --- | --- |", *rows, "",
    ]
    print("\n".join(body))
    if not args.smoke:
        write_section("scale", "\n".join(body))


if __name__ == "__main__":
    main()
