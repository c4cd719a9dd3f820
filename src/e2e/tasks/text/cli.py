"""The text commands of the `e2e` CLI: `e2e translate RUN TEXT...`, `e2e summarize RUN TEXT...`."""

from __future__ import annotations

import sys

from e2e.errors import number


def add_parsers(sub, data_sub) -> None:
    for name in ("translate", "summarize"):
        p = sub.add_parser(name, help=f"{name} text with a trained text run")
        p.add_argument("run")
        p.add_argument("texts", nargs="*", metavar="TEXT", help="inputs; none = lines on stdin")
        p.add_argument("--beam", type=number(int, 1),
                       help="beam width (default: the run's model.beam)")
        p.add_argument("--device", default="cpu")
        p.set_defaults(handler=cmd_text)


def cmd_text(args) -> int:
    import warnings

    import torch

    from e2e.data.text_lines import read_text_lines
    from e2e.engine.restore import load_run
    from e2e.tasks.text.task import TextTask

    task = TextTask()
    cfg, model, info, _ = load_run(task, args.run, args.device, command=args.command)
    texts = args.texts or read_text_lines(None)
    with warnings.catch_warnings(record=True) as caught, torch.no_grad():
        warnings.simplefilter("always")
        answers = task.Serving().predict(model, texts, cfg, info, beam=args.beam)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for answer in answers:
        print(answer)
    return 0
