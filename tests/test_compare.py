"""End to end vs stepwise: the counterparts run and give sane numbers; the report is written."""

import torch
from conftest import run_cli

from e2e.compare import CompareOptions, command_line, nested_sizes
from e2e.stepwise.hog import HogConfig, fit_hog_classifier, hog_accuracy
from e2e.stepwise.layerwise import GreedyStage, train_layerwise
from e2e.tasks import default_config
from e2e.tasks.vision.task import VisionTask


def digits_splits(**data):
    cfg = default_config("vision")
    cfg.data.source = "digits"
    for k, v in data.items():
        setattr(cfg.data, k, v)
    return cfg, VisionTask().build_data(cfg)


def test_hog_linear_classifier_on_digits():
    _, splits = digits_splits()
    tr, te = splits.train.tensors, splits.test.tensors
    clf, n_features, _ = fit_hog_classifier(tr["x"], tr["y"], HogConfig(cell=2, workers=1))
    accuracy, seconds = hog_accuracy(clf, te["x"], te["y"], HogConfig(cell=2, workers=1))
    assert n_features > 50 and 0.85 < accuracy <= 1.0 and seconds < 0.01


def test_layerwise_freezes_earlier_blocks_and_trains_with_the_engine(tmp_path):
    cfg, splits = digits_splits()
    cfg.train.epochs, cfg.train.batch_size, cfg.model.widths = 6, 64, (16, 32, 64)
    full = VisionTask().build_model(cfg, splits.info)
    stage = GreedyStage(full, 2, 10)
    assert not any(p.requires_grad for p in full.stem.parameters())
    assert all(p.requires_grad for p in full.stages[0].parameters())
    stage.train()
    assert not full.stem.training and full.stages[0].training  # frozen BN stats stay put
    results = train_layerwise(cfg, tmp_path)
    assert len(results["stages"]) == 3
    assert results["test/accuracy"] > 0.5  # chance is 0.1


def test_data_curve_subsets_are_nested_and_disjoint_from_test():
    assert nested_sizes(1000, (0.01, 0.1, 1.0)) == [20, 100, 1000]
    _, small = digits_splits(limit=100)
    _, large = digits_splits(limit=400)
    _, full = digits_splits()
    assert torch.equal(small.train.tensors["x"], large.train.tensors["x"][:100])
    assert torch.equal(large.train.tensors["x"], full.train.tensors["x"][:400])
    train = {bytes(x.numpy()) for x in full.train.tensors["x"]}
    test = [bytes(x.numpy()) for x in full.test.tensors["x"]]
    # digits holds a few byte-identical images; a leak would put hundreds in both
    assert sum(t in train for t in test) < 0.05 * len(test)


def test_the_report_command_names_fractions_only_when_they_are_not_the_default(tmp_path):
    full = CompareOptions(tmp_path, data="bible-en-es", fractions=(0.1, 0.3),
                          overrides=["train.time_limit=2100"])
    assert command_line(["text"], full) == ("e2e compare text --data bible-en-es --fractions "
                                            "0.1,0.3 --set train.time_limit=2100")
    assert command_line(["text"], CompareOptions(tmp_path)) == "e2e compare text"
    assert command_line(["vision"], CompareOptions(tmp_path, quick=True,
                                                   fractions=(0.1, 0.3, 1.0))) == \
        "e2e compare vision --quick"


def test_compare_quick_writes_the_report(tmp_path):
    proc = run_cli("compare", "vision", "--data", "digits", "--quick", "--out", str(tmp_path),
                   "--set", "model.widths=[16,32,64]", "--set", "train.batch_size=64")
    report = (tmp_path / "report.md").read_text()
    assert "| end to end (CNN) |" in report and "| stepwise: HOG + logistic regression |" in report
    assert "| stepwise: same CNN, layer-wise |" in report
    assert "Winner by training-set size" in report
    # the three systems on the corrupted test images, one row per corruption
    assert "| family | corruption | end to end | HOG + linear | layer-wise |" in report
    assert "| polarity | inversion |" in report and "| | **mean corrupted** |" in report
    assert (tmp_path / "vision_data_curve.png").stat().st_size > 5000
    assert "report:" in proc.stdout
    # the report names the whole command that reproduces it, settings included
    assert ("Command: `e2e compare vision --data digits --quick --set model.widths=[16,32,64] "
            "--set train.batch_size=64`") in report
    rows = [line for line in report.splitlines() if line.startswith("| end to end")]
    assert len(rows) == 3
    accuracy = [float(r.split("|")[3]) for r in rows]
    assert accuracy[-1] > 0.8
