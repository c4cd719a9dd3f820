"""The `e2e` command line.

    e2e train vision [--data D] [--config C.yaml] [--set key=value ...] [--out RUN]
    e2e train --resume RUN
    e2e evaluate RUN [--data D] [--split test]
    e2e predict RUN IMAGE... [--top-k 3]
    e2e transcribe RUN AUDIO...       # speech: text and real-time factor
    e2e translate RUN "text" ...      # or lines on stdin; e2e summarize RUN alike
    e2e inspect RUN
    e2e export RUN [--format onnx torchscript]; e2e predict RUN INPUT... --backend onnx
    e2e serve RUN... [--port 8000]    # a demo page per run, on 127.0.0.1
    e2e compare APP [--quick]         # end to end vs stepwise (vision, speech, text, driving)
    e2e config vision                 # the default config, as YAML to edit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from e2e.errors import E2EError
from e2e.serve import cli as serve_cli
from e2e.tasks.driving import cli as driving_cli
from e2e.tasks.speech import cli as speech_cli


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
    p.add_argument("--resume", metavar="RUN",
                   help="continue the run in RUN from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--nproc", type=int, default=0, metavar="N",
                   help="train with N processes on this machine (DistributedDataParallel "
                        "through torchrun; gloo on CPU, NCCL on GPU)")
    p.add_argument("--dagger", type=int, default=0, metavar="ROUNDS",
                   help="driving: after behavior cloning, ROUNDS of DAgger (the network "
                        "drives, the expert labels what it sees, retrain)")

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
    p.add_argument("--backend", choices=serve_cli.BACKENDS, default="torch",
                   help="onnx / torchscript: run the exported model (after e2e export)")

    for name in ("translate", "summarize"):
        p = sub.add_parser(name, help=f"{name} text with a trained text run")
        p.add_argument("run")
        p.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; none = lines on stdin")
        p.add_argument("--beam", type=int, help="beam width (default: the run's model.beam)")
        p.add_argument("--device", default="cpu")

    p = sub.add_parser("inspect", help="parameters, gradient flow and results of a run")
    p.add_argument("run")

    p = sub.add_parser("compare", help="end to end vs stepwise on the same split, with a report")
    p.add_argument("apps", nargs="+", metavar="APP", help="vision, speech, text, driving, or all")
    p.add_argument("--data", help="dataset name or folder (sets data.source)")
    p.add_argument("--out", help="report directory (default runs/compare-APP-TIMESTAMP)")
    p.add_argument("--quick", action="store_true", help="a small version that takes minutes")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    p = sub.add_parser("config", help="print a task's default config as YAML")
    p.add_argument("task")

    data = sub.add_parser("data", help="datasets: list what is installed, build corpora")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    data_sub.add_parser("list", help="known datasets, whether installed, how to install")
    driving_cli.add_parsers(sub, data_sub)
    speech_cli.add_parsers(sub, data_sub)
    serve_cli.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
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
    from e2e.engine import distributed

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    if args.nproc < 0:
        raise E2EError(f"--nproc must be at least 1, got {args.nproc}")
    if args.nproc > 1:
        # Fix the run directory here: N processes choosing timestamps could disagree.
        out = args.resume or args.out or default_out(args.task)
        return distributed.launch(args.nproc, without_nproc(args.argv)
                                  + ([] if args.resume or args.out else ["--out", out]))
    if args.resume:
        results = api.train(out=args.resume, overrides=overrides, resume=True, quiet=args.quiet)
        out = args.resume
    else:
        if not args.task and not args.config:
            raise E2EError("name a task (e2e train vision) or pass --config / --resume")
        if not args.out and distributed.dist_env().world > 1:
            raise E2EError("with several processes, name the run directory with --out "
                           "(each process must write to the same one)")
        out = args.out or default_out(args.task)
        if args.dagger:
            results = driving_cli.train_dagger(args, overrides, out)
        else:
            results = api.train(args.task, out=out, config=args.config, overrides=overrides,
                                data=args.data, quiet=args.quiet)
    if results:
        print(f"run: {out}")
        for k, v in results.items():
            if k.startswith("test/") and k.count("/") == 1:
                print(f"{k}: {v:.4f}")
    return 0


def default_out(task: str | None) -> str:
    return f"runs/{task or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"


def without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def cmd_evaluate(args) -> int:
    from e2e import api

    model = api.load(args.run, device=args.device)
    for k, v in model.evaluate(args.split, data=args.data).items():
        if k.count("/") == 1:
            print(f"{k}: {v:.4f}")
    if getattr(model.task, "signature", ""):  # e.g. sacrebleu's, so scores can be compared
        print(f"signature: {model.task.signature}")
    return 0


def cmd_predict(args) -> int:
    from e2e import api
    from e2e.export import ExportedPredictor

    model = api.load(args.run, device=args.device) if args.backend == "torch" \
        else ExportedPredictor(args.run, args.backend)
    for path in args.inputs:
        if not Path(path).exists():
            raise E2EError(f"input file {path} does not exist")
    if model.cfg.task == "text":  # text inputs are files of lines, one input per line
        from e2e.data.text_lines import read_text_lines

        return print_text(model, [x for p in args.inputs for x in read_text_lines(p)], None)
    if model.cfg.task == "driving":  # controls, not class labels
        return driving_cli.print_predictions(model, args.inputs, args.json)
    answers = model.predict(args.inputs, top_k=args.top_k)
    if args.json:
        print(json.dumps([{"input": i, "top": [{"label": label, "p": p} for label, p in a]}
                          for i, a in zip(args.inputs, answers)], indent=1))
    else:
        for path, answer in zip(args.inputs, answers):
            print(f"{path}: " + ", ".join(f"{label} {p:.3f}" for label, p in answer))
    return 0


def cmd_text(args) -> int:
    from e2e import api
    from e2e.data.text_lines import read_text_lines

    model = api.load(args.run, device=args.device)
    if model.cfg.task != "text":
        raise E2EError(f"{args.run} is a '{model.cfg.task}' run; e2e {args.command} needs a "
                       "run of the text task (e2e train text ...)")
    return print_text(model, args.texts or read_text_lines(None), args.beam)


def print_text(model, texts: list[str], beam: int | None) -> int:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = model.predict(texts, beam=beam)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for answer in answers:
        print(answer)
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
        print(f"{name:<40} {tuple(p.shape)!s:<18} {p.numel():>9,} {norm:>19}")
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


def cmd_compare(args) -> int:
    from e2e.compare import CompareOptions, compare

    out = Path(args.out or f"runs/compare-{'-'.join(args.apps)}-{time.strftime('%Y%m%d-%H%M%S')}")
    report = compare(args.apps, CompareOptions(out=out, data=args.data, quick=args.quick,
                                               overrides=args.overrides))
    print(report.read_text())
    print(f"report: {report}")
    return 0


def cmd_config(args) -> int:
    from e2e.tasks import default_config

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
            "translate": cmd_text, "summarize": cmd_text,
            "inspect": cmd_inspect, "config": cmd_config, "data": cmd_data,
            "compare": cmd_compare,
            "drive": driving_cli.cmd_drive,
            "export": serve_cli.cmd_export, "serve": serve_cli.cmd_serve,
            "transcribe": speech_cli.cmd_transcribe}
DATA_COMMANDS = {"list": cmd_data_list, "driving": driving_cli.cmd_data_driving,
                 "speech-synth": speech_cli.cmd_data_speech_synth}

if __name__ == "__main__":
    raise SystemExit(main())
