"""The vision commands of the `e2e` CLI: `e2e robustness RUN` (a trained run on the corruption
benchmark) and `e2e data vision-corrupted OUT` (the corrupted test sets as image folders)."""

from __future__ import annotations

import json

from e2e.errors import number


def add_parsers(sub, data_sub) -> None:
    p = sub.add_parser("robustness", help="score a vision run on its test set under every "
                       "corruption (lighting, contrast, polarity, noise, blur, position, "
                       "rotation, scale, occlusion; 3 severities each)")
    p.add_argument("run")
    p.add_argument("--seed", type=number(int, 0), default=0, help="the corruptions' random draws")
    p.add_argument("--limit", type=number(int, 0), default=0,
                   help="the first N test images; 0 = all")
    p.add_argument("--json", action="store_true", help="print the accuracies as JSON")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_robustness)

    p = data_sub.add_parser("vision-corrupted", help="write a test set under every corruption "
                            "as folders of class folders of PNGs, OUT/NAME-SEVERITY/CLASS/, "
                            "for `e2e evaluate RUN --data OUT/NAME-SEVERITY`")
    p.add_argument("out")
    p.add_argument("--source", default="fashion-mnist", help="fashion-mnist or mnist")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="this corruption only (repeatable; default: all)")
    p.add_argument("--severity", type=int, action="append", choices=(1, 2, 3),
                   help="this severity only (repeatable; default: 1, 2 and 3)")
    p.add_argument("--limit", type=number(int, 0), default=0,
                   help="the first N test images; 0 = all")
    p.add_argument("--seed", type=number(int, 0), default=0)
    p.set_defaults(handler=cmd_write_corrupted)


def cmd_robustness(args) -> int:
    from e2e.engine.restore import load_run
    from e2e.errors import E2EError
    from e2e.tasks.vision.corruptions import CORRUPTIONS, model_labels, robustness, table
    from e2e.tasks.vision.task import VisionTask

    task = VisionTask()
    cfg, net, info, _ = load_run(task, args.run, args.device, command="robustness")
    test = task.build_data(cfg, info).test
    if not hasattr(test, "tensors"):
        raise E2EError("e2e robustness needs a run trained on an in-memory source "
                       "(fashion-mnist, mnist, digits or IDX files)")
    x, y = test.tensors["x"][:args.limit or None], test.tensors["y"][:args.limit or None]
    result = robustness(model_labels(net, info, cfg.model.tta_flip), x, y, args.seed)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(f"{len(y):,} test images, each under {3 * len(CORRUPTIONS)} corruptions "
              "(e2e/tasks/vision/corruptions.py); accuracy, mean over the 3 severities:\n")
        print("\n".join(table({str(args.run): result})))
    return 0


def cmd_write_corrupted(args) -> int:
    from pathlib import Path

    from e2e.data.idx import load_idx_dataset
    from e2e.data.sources import IMAGE_SOURCES
    from e2e.errors import E2EError
    from e2e.tasks.vision.corruptions import CORRUPTIONS, SEVERITIES, corrupt, write_folder

    if args.source not in IMAGE_SOURCES:
        raise E2EError(f"--source must be one of {', '.join(IMAGE_SOURCES)}, got "
                       f"'{args.source}'")
    unknown = [n for n in args.only or [] if n not in CORRUPTIONS]
    if unknown:
        raise E2EError(f"unknown corruption {unknown[0]}; known: {', '.join(CORRUPTIONS)}")
    src = IMAGE_SOURCES[args.source]
    _, _, x, y = load_idx_dataset(src.require())
    x = x.unsqueeze(1) if x.dim() == 3 else x
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    out = Path(args.out)
    write_folder(x, y, src.classes, out / "clean")
    print(f"{out / 'clean'}: {len(y)} images (unchanged)")
    for name in args.only or CORRUPTIONS:
        for severity in args.severity or SEVERITIES:
            folder = out / f"{name}-{severity}"
            write_folder(corrupt(x, name, severity, args.seed), y, src.classes, folder)
            print(f"{folder}: {len(y)} images", flush=True)
    return 0
