"""The `e2e` command line.

    e2e train vision [--data D] [--config C.yaml] [--set key=value ...] [--out RUN]
    e2e train --resume RUN
    e2e evaluate RUN [--data D] [--split test]
    e2e predict RUN IMAGE... [--top-k 3]
    e2e inspect RUN
    e2e config vision                 # the default config, as YAML to edit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from e2e.errors import E2EError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2e", description="Train neural networks end to end.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model end to end")
    p.add_argument("task", nargs="?", help="vision (omit with --resume)")
    p.add_argument("--data", help="dataset name or folder (sets data.source)")
    p.add_argument("--config", help="YAML config, e.g. a run's config.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=1e-3 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/TASK-TIMESTAMP)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="sets train.device")
    p.add_argument("--resume", metavar="RUN", help="continue the run in RUN from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    p = sub.add_parser("evaluate", help="evaluate a trained run on its test split")
    p.add_argument("run")
    p.add_argument("--data", help="evaluate on another source or folder with the same classes")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("predict", help="predict raw inputs (image files) with a trained run")
    p.add_argument("run")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("inspect", help="parameters, gradient flow and results of a run")
    p.add_argument("run")

    p = sub.add_parser("config", help="print a task's default config as YAML")
    p.add_argument("task")

    data = sub.add_parser("data", help="datasets: list what is installed, build corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_sub.add_parser("list", help="known datasets, whether installed, how to install")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args) or 0
    except E2EError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; resume with `e2e train --resume RUN`", file=sys.stderr)
        return 130


def cmd_train(args) -> int:
    from e2e import api

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.resume:
        results = api.train(out=args.resume, overrides=overrides, resume=True, quiet=args.quiet)
        out = args.resume
    else:
        if not args.task and not args.config:
            raise E2EError("name a task (e2e train vision) or pass --config / --resume")
        out = args.out or f"runs/{args.task or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"
        results = api.train(args.task, out=out, config=args.config, overrides=overrides,
                            data=args.data, quiet=args.quiet)
    if results:
        print(f"run: {out}")
        for k, v in results.items():
            if k.startswith("test/") and k.count("/") == 1:
                print(f"{k}: {v:.4f}")
    return 0


def cmd_evaluate(args) -> int:
    from e2e import api

    model = api.load(args.run, device=args.device)
    for k, v in model.evaluate(args.split, data=args.data).items():
        if k.count("/") == 1:
            print(f"{k}: {v:.4f}")
    return 0


def cmd_predict(args) -> int:
    from e2e import api

    model = api.load(args.run, device=args.device)
    for path in args.inputs:
        if not Path(path).exists():
            raise E2EError(f"input file {path} does not exist")
    answers = model.predict(args.inputs, top_k=args.top_k)
    if args.json:
        print(json.dumps([{"input": i, "top": [{"label": label, "p": p} for label, p in a]}
                          for i, a in zip(args.inputs, answers)], indent=1))
    else:
        for path, answer in zip(args.inputs, answers):
            print(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in answer))
    return 0


def cmd_inspect(args) -> int:
    from e2e import api

    model = api.load(args.run)
    print(f"run: {model.run.path}  task: {model.cfg.task}  checkpoint: {model.checkpoint}")
    print(f"data: {model.info.get('source')}  classes: {len(model.info.get('classes', []))}")
    grads = {}
    if model.run.gradflow.exists():
        grads = {r["name"]: r for r in json.loads(model.run.gradflow.read_text())}
    print(f"\n{'parameter':<40} {'shape':<18} {'params':>9} {'grad norm (step 1)':>19}")
    total = 0
    for name, p in model.model.named_parameters():
        total += p.numel()
        g = grads.get(name)
        norm = "-" if g is None else g["status"] if g["status"] != "ok" else f"{g['grad_norm']:.3e}"
        print(f"{name:<40} {str(tuple(p.shape)):<18} {p.numel():>9,} {norm:>19}")
    print(f"{'total':<40} {'':<18} {total:>9,}")
    if grads:
        ok = sum(r["status"] == "ok" for r in grads.values())
        print(f"\ngradient flow: {ok}/{len(grads)} parameter tensors received gradient "
              "from the loss on the first step")
    results = model.results()
    if results:
        print("\nresults:")
        for k, v in results.items():
            if not isinstance(k, str) or k.count("/") <= 1:
                print(f"  {k}: {v}")
    return 0


def cmd_config(args) -> int:
    from e2e.config import default_config

    print(default_config(args.task).to_yaml(), end="")
    return 0


def cmd_data(args) -> int:
    return DATA_COMMANDS[args.data_command](args) or 0


def cmd_data_list(args) -> int:
    from e2e.data.sources import IMAGE_SOURCES
    from e2e.errors import DatasetMissing

    for src in IMAGE_SOURCES.values():
        try:
            print(f"{src.name:<16} installed at {src.require()}")
        except DatasetMissing:
            print(f"{src.name:<16} missing; install: {src.install}")
    print(f"{'digits':<16} embedded in scikit-learn")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "inspect": cmd_inspect, "config": cmd_config, "data": cmd_data}
DATA_COMMANDS = {"list": cmd_data_list}

if __name__ == "__main__":
    raise SystemExit(main())
