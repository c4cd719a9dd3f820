"""The `e2e` command line: the verbs every application shares.

    e2e train APP [--data D] [--config C.yaml] [--set key=value ...] [--out RUN]
    e2e train --resume RUN
    e2e evaluate RUN [--data D] [--split test]
    e2e predict RUN INPUT... [--json]   # images, audio files, files of text lines, frames
    e2e inspect RUN
    e2e export RUN [--format onnx torchscript]; e2e predict RUN INPUT... --backend onnx
    e2e serve RUN... [--port 8000]      # a demo page per run, on 127.0.0.1
    e2e compare APP [--quick]           # end to end vs stepwise
    e2e config APP                      # the application's default config, as YAML to edit
    e2e data list

Each application adds its own verbs (`e2e transcribe`, `e2e translate`, `e2e drive`, ...)
from its `cli.py`, named in the registry (e2e.tasks.CLIS). Nothing heavy is imported until
a command runs, so `e2e --help` answers at once.

Exit codes: 0 success; 1 the command ran and failed (a clear message, never a traceback);
2 the command line itself is wrong (unknown command or option); 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import sys
import time
from pathlib import Path

from e2e.errors import E2EError, check_range, describe_os_error, number
from e2e.extras import missing_extra
from e2e.tasks import CLIS, TASKS

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a misspelt command or choice."""

    def error(self, message: str):
        choices = [a for a in self._actions if a.choices]
        if "invalid choice" in message:
            wrong = message.split("'")[1] if "'" in message else ""
            for action in choices:
                close = difflib.get_close_matches(wrong, [str(c) for c in action.choices], 1)
                if close:
                    message += f" (did you mean '{close[0]}'?)"
                    break
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("e2e")
    except PackageNotFoundError:
        ver = "unknown"
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = Parser(prog="e2e", formatter_class=fmt,
                    description="Train neural networks end to end: raw input in, prediction "
                                "out, one loss, every layer trained together.")
    parser.add_argument("--version", action="version", version=f"e2e {ver}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    apps = ", ".join(TASKS)

    p = sub.add_parser("train", help="train a model end to end", formatter_class=fmt)
    p.add_argument("task", nargs="?", help=f"the application: {apps} (omit with --resume)")
    p.add_argument("--data", help="dataset name or folder (sets data.source)")
    p.add_argument("--config", metavar="NAME|PATH",
                   help="a named recipe of the application (e2e config --list), a YAML file "
                        "or a run directory")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE",
                   help="override config values, e.g. --set train.lr=1e-3 train.batch_size=32")
    p.add_argument("--out", help="run directory (default: runs/APP-TIMESTAMP)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="sets train.device")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the run in RUN from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--nproc", type=int, default=0, metavar="N",
                   help="train with N processes on this machine (DistributedDataParallel "
                        "through torchrun; gloo on CPU, NCCL on GPU)")
    p.add_argument("--nnodes", type=int, default=1, metavar="M",
                   help="train on M machines: run the same command on each, with its "
                        "--node-rank and the same --rdzv-endpoint and --out (a shared folder)")
    p.add_argument("--node-rank", type=int, metavar="R",
                   help="this machine's index, 0 to M-1; machine 0 hosts the rendezvous")
    p.add_argument("--rdzv-endpoint", default="", metavar="HOST:PORT",
                   help="where the machines meet: machine 0's address and a free port")
    p.add_argument("--rdzv-id", default="e2e", metavar="ID",
                   help="the run's name at the rendezvous, the same on every machine "
                        "(e.g. $SLURM_JOB_ID)")
    p.add_argument("--max-restarts", type=int, default=0, metavar="K",
                   help="when a process fails, start all of them again up to K times; they "
                        "resume from the last checkpoint")
    p.add_argument("--dagger", type=int, default=0, metavar="ROUNDS",
                   help="driving: after behavior cloning, ROUNDS of DAgger (the network "
                        "drives, the expert labels what it sees, retrain); the same as "
                        "--set data.dagger_rounds=ROUNDS")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a trained run on a split of its data",
                       formatter_class=fmt)
    p.add_argument("run")
    p.add_argument("--data", help="evaluate on another source or folder with the same classes")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_evaluate)

    p = sub.add_parser("predict", help="answer raw inputs with a trained run: image, audio or "
                                       "frame files, or files of text lines", formatter_class=fmt)
    p.add_argument("run")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--top-k", type=int, default=3, help="classifiers: labels per input")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", choices=["torch", "onnx", "torchscript"], default="torch",
                   help="onnx / torchscript: run the exported model (after e2e export)")
    p.set_defaults(handler=cmd_predict)

    p = sub.add_parser("inspect", help="parameters, gradient flow and results of a run")
    p.add_argument("run")
    p.set_defaults(handler=cmd_inspect)

    p = sub.add_parser("compare", help="end to end vs stepwise on the same split, with a report",
                       formatter_class=fmt)
    p.add_argument("apps", nargs="+", metavar="APP",
                   help="vision, speech, text, driving, or all")
    p.add_argument("--data", help="dataset name or folder (sets data.source)")
    p.add_argument("--out", help="report directory (default: runs/compare-APP-TIMESTAMP)")
    p.add_argument("--quick", action="store_true", help="a small version that takes minutes")
    p.add_argument("--fractions", type=fractions, default=(), metavar="F,F,...",
                   help="the data curve's sizes as fractions of the training data (default "
                        "0.01,0.03,0.1,0.3,1, with --quick 0.1,0.3,1; driving: tracks 5-200)")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("config", help="print an application's config as YAML (its default, or "
                                      "a named recipe applied to it); --list names the recipes")
    p.add_argument("task", nargs="?", choices=list(TASKS), metavar="APP", help=f"one of: {apps}")
    p.add_argument("--config", metavar="NAME|PATH", help="a named recipe or YAML file to apply")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE", help="override config values")
    p.add_argument("--list", action="store_true",
                   help="every named recipe of every application, with what it is for")
    p.set_defaults(handler=cmd_config)

    data = sub.add_parser("data", help="datasets: list what is installed, build corpora")
    data_sub = data.add_subparsers(dest="data_command", metavar="WHAT", required=True,
                                   parser_class=Parser)
    p = data_sub.add_parser("list", help="every application's data sources, whether installed, "
                                         "how to install each")
    p.set_defaults(handler=cmd_data_list)

    p = data_sub.add_parser(
        "prepare", formatter_class=fmt,
        help="write a corpus as the on-disk columns that training streams from "
             "(`--set data.source=OUT`): the application's own data, or yours (--from)")
    p.add_argument("task", choices=list(TASKS), metavar="APP", help=f"one of: {apps}")
    p.add_argument("--out", required=True, help="the folder to write (resumes an unfinished one)")
    p.add_argument("--from", dest="source", metavar="CORPUS",
                   help="a Parquet, JSON Lines, TSV or CSV file, a Hugging Face save_to_disk "
                        "folder, a Common Voice folder, WebDataset .tar shards (a file or a "
                        "folder), or a folder of train/val/test files; "
                        "default: the application's own data (of --config/--set)")
    p.add_argument("--column", dest="columns", action="append", default=[],
                   metavar="COLUMN=FIELD", help="which field of your records fills a column "
                                                "(e.g. text: source=en target=es)")
    p.add_argument("--config", metavar="NAME|PATH", help="a named recipe or YAML file")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE")
    p.add_argument("--repeat", type=number(int, 1, 1000), default=1,
                   help="write the training examples this many times (a larger corpus, e.g. "
                        "to measure memory)")
    p.add_argument("--val-fraction", type=number(float, 0, 0.5), default=0.05,
                   help="held out for validation when the corpus comes unsplit")
    p.add_argument("--test-fraction", type=number(float, 0, 0.5), default=0.05,
                   help="held out for testing when the corpus comes unsplit")
    p.add_argument("--seed", type=int, default=0, help="the random hold-out")
    p.add_argument("--skip-bad", action="store_true", help="leave out records that cannot be "
                                                           "read, listed in columns.json")
    p.set_defaults(handler=cmd_data_prepare)

    from e2e.serve import cli as serve_cli  # export and serve: deployment, not an application

    serve_cli.add_parsers(sub)
    for module in CLIS.values():  # each application's own verbs
        importlib.import_module(module).add_parsers(sub, data_sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:  # a bare `e2e` shows what it can do
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.handler(args) or 0
    except E2EError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except ImportError as e:  # an optional extra that is not installed: name it
        if missing_extra(e) is None:
            raise
        print(f"error: {missing_extra(e)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:  # disk full, permission denied, ...: the system's one-line reason
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted; resume with `e2e train --resume RUN`", file=sys.stderr)
        return EXIT_INTERRUPTED


def cmd_train(args) -> int:
    from e2e import api
    from e2e.engine import distributed
    from e2e.engine.results import headline
    from e2e.engine.run import RunDir

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"train.device={args.device}")
    check_range("--nproc", args.nproc, 0)
    check_range("--dagger", args.dagger, 0)
    nodes = distributed.Nodes(args.nnodes, args.node_rank, args.rdzv_endpoint, args.rdzv_id,
                              args.max_restarts)
    if args.nproc > 1 or nodes != distributed.Nodes():
        return launch_train(args, nodes)
    if args.resume:
        results = api.train(out=args.resume, overrides=overrides, resume=True, quiet=args.quiet)
        out = args.resume
    else:
        if not args.task and not args.config:
            raise E2EError("name an application (e2e train vision) or pass --config / --resume")
        if not args.out and (distributed.dist_env().world > 1 or distributed.elastic()):
            raise E2EError("with several processes, name the run directory with --out "
                           "(each process must write to the same one)")
        out = args.out or default_out(args.task)
        if args.dagger:  # shorthand for the driving config's setting
            overrides.append(f"data.dagger_rounds={args.dagger}")
        if distributed.restarted() and RunDir(out).last.exists():
            # torchrun started the processes again (--max-restarts) after one of them failed
            print(f"restart {distributed.restarted()}: resuming {out} from its last "
                  "checkpoint", file=sys.stderr)
            results = api.train(out=out, overrides=overrides, resume=True, quiet=args.quiet)
        else:
            results = api.train(args.task, out=out, config=args.config, overrides=overrides,
                                data=args.data, quiet=args.quiet)
    if results:
        print(f"run: {out}")
        for k, v in headline(results).items():
            if k.startswith("test/"):
                print(f"{k}: {v:.4f}")
    return 0


def default_out(task: str | None) -> str:
    return f"runs/{task or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}"


LAUNCH_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-id",
                "--max-restarts")


def launch_train(args, nodes) -> int:
    """`e2e train` in torchrun's processes: this command line less the flags that launch."""
    from e2e.engine import distributed

    if distributed.under_torchrun():
        raise E2EError("--nproc, --nnodes and the other launch flags start torchrun; this "
                       "process runs under torchrun already: drop them")
    if nodes.count > 1 and not (args.out or args.resume):
        raise E2EError(f"--nnodes {nodes.count}: name the run directory with --out, the same "
                       "folder on every machine (a shared filesystem)")
    # Fix the run directory here: processes choosing timestamps could disagree.
    out = args.resume or args.out or default_out(args.task)
    return distributed.launch(max(args.nproc, 1), without_launch_flags(args.argv)
                              + ([] if args.resume or args.out else ["--out", out]), nodes)


def without_launch_flags(argv: list[str]) -> list[str]:
    """ARGV without the launch flags and their values (`--nproc 2`, `--nproc=2`, or an
    abbreviation that argparse accepted, `--nnod 2`)."""
    out, skip = [], False
    for a in argv:
        name = a.split("=", 1)[0]
        if skip:
            skip = False
        elif len(name) > 3 and any(flag.startswith(name) for flag in LAUNCH_FLAGS):
            skip = "=" not in a
        else:
            out.append(a)
    return out


def cmd_evaluate(args) -> int:
    from e2e import api
    from e2e.engine.results import headline

    model = api.load(args.run, device=args.device)
    for k, v in headline(model.evaluate(args.split, data=args.data)).items():
        print(f"{k}: {v:.4f}")
    signature = model.task.signature(model.cfg)  # e.g. sacrebleu's: scores comparable
    if signature:
        print(f"signature: {signature}")
    return 0


def cmd_predict(args) -> int:
    import warnings

    from e2e import api
    from e2e.export import ExportedPredictor

    check_range("--top-k", args.top_k, 1)
    model = api.load(args.run, device=args.device) if args.backend == "torch" \
        else ExportedPredictor(args.run, args.backend)
    # One unreadable input is named and the others are still answered; the exit code says
    # that something failed.
    failed = [(p, f"input file {p} does not exist") for p in args.inputs if not Path(p).exists()]
    files = [p for p in args.inputs if Path(p).exists()]
    inputs = model.serving.predict_inputs(files) if files else []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            answers = model.predict(inputs, top_k=args.top_k) if inputs else []
        except E2EError:  # find which inputs fail: answer the others one by one
            answers = []
            for raw in inputs:
                try:
                    answers.extend(model.predict([raw], top_k=args.top_k))
                except E2EError as e:
                    failed.append((raw, str(e)))
                    answers.append(None)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    answered = [(raw, a) for raw, a in zip(inputs, answers) if a is not None]
    if args.json:
        print(json.dumps([model.serving.prediction_json(i, a) for i, a in answered]
                         + [{"input": str(i), "error": e} for i, e in failed], indent=1))
    else:
        for raw, answer in answered:
            print(plain(model.serving.format_prediction(raw, answer)))
    for _, message in failed:
        print(f"error: {plain(message)}", file=sys.stderr)
    if failed and len(failed) + len(answered) > 1:
        print(f"error: {len(failed)} of {len(answered) + len(failed)} inputs could not be "
              "answered (named above)", file=sys.stderr)
    return EXIT_FAILED if failed else 0


def plain(text: str) -> str:
    """Text as it may reach a terminal: control characters (escape sequences, carriage
    returns, newlines) shown escaped, so a label or file name cannot rewrite the screen."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                   for c in text)


def cmd_inspect(args) -> int:
    from e2e import api
    from e2e.engine.results import is_detail

    model = api.load(args.run)
    print(f"run: {model.run.path}  task: {model.cfg.task}  checkpoint: {model.checkpoint}")
    print(model.info.describe())
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
            if not is_detail(k):
                print(f"  {k}: {v}")
    return 0


def fractions(text: str) -> tuple[float, ...]:
    """--fractions: comma-separated shares of the training data, each in (0, 1]."""
    try:
        values = tuple(float(f) for f in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected numbers like 0.1,0.3,1") from None
    bad = [v for v in values if not 0 < v <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"{bad[0]:g} is not a share of the data: each "
                                         "fraction must be in (0, 1]")
    return values


def cmd_compare(args) -> int:
    from e2e.compare import CompareOptions, compare

    out = Path(args.out or f"runs/compare-{'-'.join(args.apps)}-{time.strftime('%Y%m%d-%H%M%S')}")
    report = compare(args.apps, CompareOptions(out=out, data=args.data, quick=args.quick,
                                               fractions=args.fractions,
                                               overrides=args.overrides))
    print(report.read_text())
    print(f"report: {report}")
    return 0


def cmd_config(args) -> int:
    from e2e import recipes
    from e2e.tasks import load_config

    if args.list:
        rows = recipes.listing()
        width = max(len(f"{app} {name}") for app, name, _ in rows)
        for app, name, what in rows:
            print(f"{f'{app} {name}':<{width}}  {what}")
        return 0
    if not args.task:
        raise E2EError("name an application (e2e config speech) or list the recipes with "
                       "e2e config --list")
    print(load_config(args.config, args.task, args.overrides).to_yaml(), end="")
    return 0


def cmd_data_prepare(args) -> int:
    from e2e.data.prepare import prepare
    from e2e.tasks import get_task, load_config

    mapping = {}
    for item in args.columns:
        column, sep, name = item.partition("=")
        if not sep or not column or not name:
            raise E2EError(f"--column {item}: COLUMN=FIELD expected (e.g. --column text=sentence)")
        mapping[column] = name
    cfg = load_config(args.config, args.task, args.overrides)
    out = prepare(get_task(args.task), cfg, args.out, args.source, mapping, args.repeat,
                  args.val_fraction, args.test_fraction, args.seed, args.skip_bad)
    print(f"prepared {out}; train on it with `e2e train {args.task} --set data.source={out}`")
    return 0


def cmd_data_list(args) -> int:
    from e2e.data.catalog import lines

    print("\n".join(lines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
