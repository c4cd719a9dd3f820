"""Image folders in torchvision's layout: ROOT/train/<class>, ROOT/val/<class>, ROOT/test/..."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import e2e
from e2e.errors import E2EError
from e2e.tasks import default_config
from e2e.tasks.vision.task import VisionTask


def images(folder: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """PNG files of flat colour per class (class i is brighter than class i-1)."""
    rng = np.random.default_rng(seed)
    for i, (name, n) in enumerate(sorted(per_class.items())):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            pixels = np.full((12, 12), 40 + 80 * i, np.uint8) + rng.integers(0, 20, (12, 12),
                                                                              dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{k}.png")
    return folder


def splits_of(root: Path):
    cfg = default_config("vision")
    cfg.data.source, cfg.data.image_size, cfg.data.channels = str(root), 8, 1
    return VisionTask().build_data(cfg)


def names(split) -> set[str]:
    return {str(Path(f).relative_to(Path(f).parents[2])) for f in split.files}


def test_train_and_test_folders_are_splits_not_classes(tmp_path):
    images(tmp_path / "train", {"cat": 20, "dog": 20})
    images(tmp_path / "test", {"cat": 3, "dog": 4}, seed=1)
    s = splits_of(tmp_path)
    assert s.info.classes == ["cat", "dog"]  # not ["test", "train"]
    assert names(s.test) == {f"test/cat/{k}.png" for k in range(3)} | \
        {f"test/dog/{k}.png" for k in range(4)}
    # val is held out of train/ (10%), and nothing is in two splits
    assert len(s.val) == 4 and len(s.train) == 36
    assert all(n.startswith("train/") for n in names(s.val) | names(s.train))
    assert not names(s.val) & names(s.train)
    assert [s.train.labels[i] for i, f in enumerate(s.train.files) if "/cat/" in str(f)] == \
        [0] * sum("/cat/" in str(f) for f in s.train.files)


def test_val_folder_used_as_given_and_class_labels_follow_train(tmp_path):
    images(tmp_path / "train", {"a": 6, "b": 6, "c": 6})
    images(tmp_path / "valid", {"c": 2})  # a split may lack classes; labels are train's
    images(tmp_path / "test", {"a": 1, "b": 1, "c": 1})
    s = splits_of(tmp_path)
    assert len(s.train) == 18 and len(s.val) == 2 and len(s.test) == 3
    assert s.val.labels == [2, 2] and sorted(s.test.labels) == [0, 1, 2]


def test_a_run_on_a_split_folder_trains_and_evaluates(tmp_path):
    images(tmp_path / "data" / "train", {"dark": 24, "light": 24})
    images(tmp_path / "data" / "val", {"dark": 4, "light": 4}, seed=1)
    images(tmp_path / "data" / "test", {"dark": 5, "light": 5}, seed=2)
    results = e2e.train("vision", data=str(tmp_path / "data"), out=tmp_path / "run", quiet=True,
                        overrides=["train.max_steps=4", "train.batch_size=16",
                                   "data.image_size=8", "data.channels=1",
                                   "model.widths=[8,8]", "model.stem_pool=false",
                                   "train.device=cpu"])
    assert results["steps"] == 4 and 0 <= results["test/accuracy"] <= 1
    model = e2e.load(tmp_path / "run")
    assert model.info.classes == ["dark", "light"]
    assert model.evaluate()["test/accuracy"] == pytest.approx(results["test/accuracy"])


@pytest.mark.parametrize("layout, message", [
    ({"train": {"a": 3, "b": 3}, "cat": {"x": 1}}, r"mixes split folders.*\['cat'\]"),
    ({"train": {"a": 3, "b": 3}, "test": {"a": 1, "zebra": 1}}, r"\['zebra'\].*training classes"),
    ({"train": {"a": 3, "b": 3}, "val": {"a": 1}, "valid": {"b": 1}}, "two val folders"),
])
def test_inconsistent_split_folders_are_named(tmp_path, layout, message):
    for split, classes in layout.items():
        images(tmp_path / split, classes)
    with pytest.raises(E2EError, match=message):
        splits_of(tmp_path)


def test_plain_class_folders_still_hold_out_val_and_test(tmp_path):
    images(tmp_path, {"test": 10, "other": 10})  # a class may be called "test"
    s = splits_of(tmp_path)
    assert s.info.classes == ["other", "test"]
    assert len(s.train) + len(s.val) + len(s.test) == 20 and len(s.test) == 4
