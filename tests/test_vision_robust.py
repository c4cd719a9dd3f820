"""Vision when the picture changes: the corruption benchmark, training-time augmentation, and
a trained model scored on a folder of changed images."""

import math

import pytest
import torch
from conftest import run_cli
from PIL import Image

import e2e
from e2e.config import valid_keys, with_overrides
from e2e.data.sources import IMAGE_SOURCES
from e2e.errors import E2EError
from e2e.tasks import load_config
from e2e.tasks.vision.augment import augment
from e2e.tasks.vision.config import VisionAugmentConfig
from e2e.tasks.vision.corruptions import (
    CORRUPTIONS,
    Robustness,
    corrupt,
    model_labels,
    robustness,
    table,
    write_folder,
)
from e2e.tasks.vision.info import VisionInfo
from e2e.tasks.vision.task import VisionTask


def images(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Garment-like test images: a bright blob with texture on a black ground."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 8:20] = 0.5 + 0.4 * torch.rand(n, 1, 16, 12, generator=g)
    return (x * 255).round().to(torch.uint8)


def constant(value: int, n: int = 8) -> torch.Tensor:
    return torch.full((n, 1, 28, 28), value, dtype=torch.uint8)


def centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    """N x 2 (row, column) of each image's brightness."""
    w = x.float()[:, 0]
    grid = torch.arange(w.shape[-1], dtype=torch.float32)
    total = w.sum(dim=(1, 2))
    return torch.stack([(w.sum(2) * grid).sum(1) / total, (w.sum(1) * grid).sum(1) / total], 1)


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_is_deterministic_uint8_and_grows_with_severity(name):
    x = images()
    first = [corrupt(x, name, s, seed=3) for s in (1, 2, 3)]
    again = [corrupt(x, name, s, seed=3) for s in (1, 2, 3)]
    for a, b in zip(first, again):
        assert a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b)
    # a subset of the images changes the same way as in the whole batch
    change = [(c.float() - x.float()).abs().mean() for c in first]
    if name != "inversion":  # inversion is strongest at severity 1 (the full flip)
        assert 0 < change[0] < change[1] < change[2], change


def test_photometric_corruptions_have_their_documented_strength():
    black, grey = constant(0), constant(200)
    assert corrupt(black, "brightness", 3).unique().tolist() == [115]  # 0.45 x 255
    assert corrupt(grey, "darkness", 2).unique().tolist() == [100]
    assert corrupt(black, "contrast", 1).unique().tolist() == [51]  # (0 - .5) x .6 + .5 = .2
    assert corrupt(black, "contrast", 3).unique().tolist() == [96]  # .375
    assert corrupt(black, "inversion", 1).unique().tolist() == [255]
    assert corrupt(black, "inversion", 3).unique().tolist() == [153]
    mid = constant(128, n=50)
    noise = (corrupt(mid, "gaussian_noise", 2).float() - 128) / 255
    assert noise.std() == pytest.approx(0.16, rel=0.05)
    assert corrupt(black, "shot_noise", 3).unique().tolist() == [0]  # no light, no photons
    assert corrupt(constant(128, n=50), "shot_noise", 3).float().std() / 255 == \
        pytest.approx(math.sqrt(0.5 * 10) / 10, rel=0.1)


def test_geometric_corruptions_move_turn_zoom_and_cover_as_documented():
    x = torch.zeros(32, 1, 28, 28, dtype=torch.uint8)
    x[:, :, 12:16, 12:16] = 255  # a small square in the middle
    moved = centre_of_mass(corrupt(x, "shift", 3)) - centre_of_mass(x)
    assert moved.norm(dim=1).mean() == pytest.approx(4, abs=0.3)
    bar = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    bar[:, :, 13:15, 4:24] = 255  # a horizontal bar: rotation tilts it
    turned = corrupt(bar, "rotation", 2).float()[:, 0]
    rows = torch.arange(28.0)
    left = (turned[:, :, 6:9].sum(2) * rows).sum(1) / turned[:, :, 6:9].sum((1, 2))
    right = (turned[:, :, 19:22].sum(2) * rows).sum(1) / turned[:, :, 19:22].sum((1, 2))
    degrees = torch.rad2deg(torch.atan((right - left).abs() / 13))
    assert degrees.mean() == pytest.approx(20, abs=3)
    short = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    short[:, :, 13:15, 8:20] = 255  # 12 px long: 7.8 after a zoom of 0.65, 18.5 after 1 / 0.65
    widths = (corrupt(short, "scale", 3)[:, 0, 14] > 127).sum(1)
    assert set(widths.tolist()) <= {7, 8, 9, 18, 19, 20} and len(set(widths.tolist())) == 2
    covered = corrupt(constant(0, n=64), "occlusion", 2)
    sides = (covered[:, 0] > 0).sum((1, 2))
    assert (sides[sides > 0] == 11 * 11).all() and (sides > 0).float().mean() > 0.9


def test_blur_spreads_a_point_by_its_sigma():
    point = torch.zeros(4, 1, 29, 29, dtype=torch.uint8)
    point[:, :, 14, 14] = 255
    blurred = corrupt(point, "blur", 3).float()[:, 0]
    profile = blurred.sum(1)[0]
    centre = torch.arange(29.0) - 14
    sigma = ((profile * centre**2).sum() / profile.sum()).sqrt()
    assert sigma == pytest.approx(1.4 * 29 / 28, rel=0.15)


def test_robustness_is_the_mean_over_every_corruption_and_severity():
    x, y = images(40), torch.arange(40) % 2
    result = robustness(lambda im: (im.float().mean((1, 2, 3)) > 60).long(), x, y)
    values = [a for accs in result.accuracy.values() for a in accs]
    assert len(values) == 3 * len(CORRUPTIONS)
    assert result.mean == pytest.approx(sum(values) / len(values))
    again = Robustness.from_dict(result.to_dict())
    assert again.mean == result.mean and again.by_family().keys() == result.by_family().keys()
    lines = table({"a": result, "b": again})
    assert lines[0] == "| family | corruption | a | b |" and "mean corrupted" in lines[-1]
    assert len(lines) == 4 + len(CORRUPTIONS)


def test_augment_keeps_shape_dtype_and_range_and_changes_every_image_when_asked():
    x = images(128)
    every = VisionAugmentConfig(p_contrast=1, p_brightness=1, p_gamma=1, p_invert=1, p_noise=1,
                                p_blur=1, p_affine=1, p_erase=1)
    out = augment(x, every)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    assert ((out.float() - x.float()).abs().mean((1, 2, 3)) > 1).all()
    assert torch.equal(augment(x, VisionAugmentConfig()), x)  # every p_* = 0: unchanged
    inverted = augment(constant(0), VisionAugmentConfig(p_invert=1))
    assert inverted.unique().tolist() == [255]
    half = augment(constant(0, n=2000), VisionAugmentConfig(p_invert=0.5)).float().mean() / 255
    assert half == pytest.approx(0.5, abs=0.05)


def test_augmentation_is_on_in_training_and_off_at_evaluation():
    cfg = load_config(None, "vision", ["data.augment.p_invert=1", "data.augment.p_noise=1",
                                       "data.crop_pad=0"])
    info = VisionInfo(classes=["a", "b"], channels=1, size=[28, 28], mean=[0.3], std=[0.3])
    batch = {"x": images(16), "y": torch.zeros(16, dtype=torch.long)}
    task = VisionTask()
    assert torch.equal(task.prepare_batch(batch, False, cfg, info)["x"], batch["x"])
    assert not torch.equal(task.prepare_batch(batch, True, cfg, info)["x"], batch["x"])


def test_augment_settings_are_a_nested_section_with_ranges():
    cfg = load_config(None, "vision", ["data.augment.p_invert=0.5",
                                       "data.augment.scale=[0.8, 1.2]"])
    assert cfg.data.augment.p_invert == 0.5 and cfg.data.augment.scale == (0.8, 1.2)
    with pytest.raises(E2EError, match=r"data.augment.p_noise must be >= 0 and <= 1"):
        with_overrides(cfg, "data.augment.p_noise=1.5")
    assert "data.augment.p_erase (float, default 0.0, range [0, 1])" in valid_keys(cfg)


def test_per_image_input_norm_answers_the_same_under_any_lighting():
    cfg = load_config(None, "vision", ["model.input_norm=image", "model.widths=[8,16]"])
    info = VisionInfo(classes=["a", "b"], channels=1, size=[28, 28], mean=[0.3], std=[0.3])
    model = VisionTask().build_model(cfg, info).eval()
    x = images(8)
    brighter = (x.float() * 0.5 + 60).round().to(torch.uint8)  # less contrast, more light
    with torch.no_grad():
        assert torch.allclose(model(x), model(brighter), atol=0.05)


@pytest.fixture(scope="module")
def fashion_run(tmp_path_factory):
    if not IMAGE_SOURCES["fashion-mnist"].folder().is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    run = tmp_path_factory.mktemp("fashion") / "run"
    e2e.train("vision", out=run, quiet=True, overrides=[
        "data.limit=600", "train.epochs=2", "train.batch_size=64", "model.widths=[8,16]",
        "data.augment.p_invert=0.5"])
    return run


def test_evaluate_a_fashion_mnist_run_on_a_folder_of_changed_images(fashion_run,
                                                                   tmp_path_factory):
    """`e2e data vision-corrupted` writes the changed test images as class folders (T-shirt-top/
    for 'T-shirt/top'); `e2e evaluate RUN --data FOLDER` scores them exactly as the same images
    in memory, and a folder of larger RGB photos is resized to the model's input."""
    run = fashion_run
    out = tmp_path_factory.mktemp("corrupted")
    run_cli("data", "vision-corrupted", str(out), "--only", "inversion", "--severity", "2",
            "--limit", "200")
    folder = out / "inversion-2"
    assert len(list((folder / "T-shirt-top").glob("*.png"))) > 5
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        c.replace("/", "-") for c in IMAGE_SOURCES["fashion-mnist"].classes)
    proc = run_cli("evaluate", str(run), "--data", str(folder))
    on_folder = float(proc.stdout.split("test/accuracy:")[1].split()[0])

    model = e2e.load(run)
    test = model.task.build_data(model.cfg).test
    x, y = corrupt(test.tensors["x"][:200], "inversion", 2), test.tensors["y"][:200]
    in_memory = float((model_labels(model.model, model.info, True)(x) == y).float().mean())
    assert on_folder == pytest.approx(in_memory, abs=1e-4)

    photos = tmp_path_factory.mktemp("photos")
    write_folder(x[:30], y[:30], IMAGE_SOURCES["fashion-mnist"].classes, photos)
    for png in photos.rglob("*.png"):  # larger, in colour: read back as 28 x 28 grey
        Image.open(png).convert("RGB").resize((64, 64)).save(png)
    assert 0 <= e2e.load(run).evaluate("test", data=str(photos))["test/accuracy"] <= 1
    (photos / "Hat").mkdir()
    with pytest.raises(E2EError, match="do not match the training classes"):
        e2e.load(run).evaluate("test", data=str(photos))


def test_robustness_command_prints_the_table(fashion_run):
    proc = run_cli("robustness", str(fashion_run), "--limit", "300")
    assert "| lighting | brightness |" in proc.stdout and "mean corrupted" in proc.stdout
    assert proc.stdout.startswith("300 test images, each under 33 corruptions")


def test_polarity_free_stem_answers_the_same_to_an_inverted_picture():
    info = VisionInfo(classes=list("abcd"), channels=1, size=[28, 28], mean=[0.3], std=[0.3])
    x = images(8)
    dark_on_light = ((255 - x.float()) * 0.6).round().to(torch.uint8)  # inversion, severity 3
    outputs = {}
    for free in (True, False):
        cfg = load_config(None, "vision", ["model.input_norm=image", "model.widths=[8,16]",
                                           f"model.polarity_free={str(free).lower()}"])
        torch.manual_seed(0)
        model = VisionTask().build_model(cfg, info).eval()
        with torch.no_grad():
            outputs[free] = (model(x) - model(dark_on_light)).abs().max()
    assert outputs[True] < 1e-2 < outputs[False]
