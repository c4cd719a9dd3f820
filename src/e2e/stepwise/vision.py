"""`e2e compare vision`: the CNN trained end to end from pixels vs HOG features + a linear
classifier, and vs the same CNN trained greedily, layer by layer; all on the same split and
nested subsets of its training data."""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from e2e import api
from e2e.config import with_overrides
from e2e.engine.batching import TensorData
from e2e.errors import E2EError
from e2e.stepwise.report import CompareOptions, Comparison, Row, nested_sizes
from e2e.tasks import load_config


def compare_vision(opts: CompareOptions, bar: tqdm) -> Comparison:
    from e2e.stepwise.hog import HogConfig, fit_hog_classifier, hog_accuracy
    from e2e.stepwise.layerwise import train_layerwise
    from e2e.tasks.vision.task import VisionTask

    overrides = ([f"data.source={opts.data}"] if opts.data else []) + list(opts.overrides)
    if opts.quick:
        overrides = ["train.epochs=4", *overrides]
    cfg = load_config(None, "vision", overrides)
    task = VisionTask()
    splits = task.build_data(cfg)  # the same split for both sides
    if not isinstance(splits.train, TensorData):
        raise E2EError("e2e compare vision needs an in-memory source (fashion-mnist, mnist, "
                       "digits or IDX files); image folders are not supported yet")
    train_x, train_y = splits.train.tensors["x"], splits.train.tensors["y"]
    test_x, test_y = splits.test.tensors["x"], splits.test.tensors["y"]
    sizes = nested_sizes(len(train_y), opts.fractions)
    hog_cfg = HogConfig()
    rows: list[Row] = []
    for n in sizes:
        bar.set_description(f"vision: end to end on {n} examples")
        out = opts.out / "vision" / f"e2e-{n}"
        r = api.train(config=with_overrides(cfg, f"data.limit={n}"), out=out, quiet=True)
        model = api.load(out)
        started = time.time()
        model.evaluate("test")
        infer = (time.time() - started) / len(test_y)
        rows.append(Row("end to end (CNN)", n, r["test/accuracy"], r["train_seconds"],
                        1000 * infer, f"{r['parameters']:,} parameters"))
        bar.update()
        bar.set_description(f"vision: HOG + linear on {n} examples")
        classifier, n_features, seconds = fit_hog_classifier(train_x[:n], train_y[:n], hog_cfg)
        accuracy, infer = hog_accuracy(classifier, test_x, test_y, hog_cfg)
        rows.append(Row("stepwise: HOG + logistic regression", n, accuracy, seconds,
                        1000 * infer, f"{n_features:,} features"))
        bar.update()
    bar.set_description("vision: layer-wise CNN on all examples")
    lw = train_layerwise(cfg, opts.out / "vision" / "layerwise")
    bar.set_description("vision: the three on corrupted test images")
    shown = 2000 if opts.quick else len(test_y)  # --quick: corrupt the first 2,000 only
    robust = corruption_table(api.load(out), classifier, hog_cfg, lw, splits.info,
                              test_x[:shown], test_y[:shown])
    rows.append(Row("stepwise: same CNN, layer-wise", len(train_y), lw["test/accuracy"],
                    lw["train_seconds"], float("nan"), f"{lw['parameters']:,} parameters"))
    bar.update()
    stages = ", ".join(f"after block {s['depth']}: {s['test/accuracy']:.4f}"
                       for s in lw["stages"])
    notes = (f"Data: {splits.info.source}, {len(train_y):,} training / {len(test_y):,} test "
             f"examples; quality = test accuracy. Both CNN rows train for {cfg.train.epochs} "
             f"epochs in total (layer-wise: split evenly over {len(lw['stages'])} stages; "
             f"test accuracy {stages}).")
    return Comparison(rows, notes, details=robust)


def corruption_table(e2e: api.Predictor, hog_classifier, hog_cfg, layerwise: dict,
                     info, test_x: torch.Tensor, test_y: torch.Tensor) -> str:
    """Markdown: the end-to-end model, HOG + linear and the layer-wise CNN, each trained on
    all the training images, on the test set under every corruption (corruptions.py)."""
    from e2e.stepwise.hog import hog_features
    from e2e.tasks.vision.corruptions import model_labels, robustness, table

    systems = {
        "end to end": model_labels(e2e.model, e2e.info, e2e.cfg.model.tta_flip),
        "HOG + linear": lambda x: torch.from_numpy(
            hog_classifier.predict(hog_features(x, hog_cfg))),
        "layer-wise": model_labels(layerwise["model"], info, e2e.cfg.model.tta_flip)}
    results = {name: robustness(predict, test_x, test_y) for name, predict in systems.items()}
    return "\n".join([
        "### When the picture changes", "",
        f"Robustness (`e2e robustness RUN` for one run): accuracy on {len(test_y):,} test images "
        "changed as a camera and a scene change them, 11 corruptions x 3 severities "
        "(e2e/tasks/vision/corruptions.py), mean over severities; mean corrupted = over "
        "all 33. HOG + linear and the layer-wise CNN train on clean images (no data.augment).",
        "", *table(results)])


def jobs(opts: CompareOptions) -> int:
    return 2 * len(opts.fractions) + 1
