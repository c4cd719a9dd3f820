"""The CLI as a user runs it: train -> evaluate -> predict -> inspect, and its errors."""

import json

from conftest import run_cli
from test_vision import make_image_folder


def test_round_trip_on_a_folder_of_pngs(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=40)
    run = tmp_path / "run"
    train = run_cli("train", "vision", "--data", str(root), "--out", str(run),
                    "--set", "data.image_size=16", "--set", "data.channels=1",
                    "--set", "train.epochs=12", "--set", "train.batch_size=32",
                    "--set", "model.widths=[16,32,64]", "--set", "train.num_workers=1")
    assert "gradient flow: " in train.stderr and "test/accuracy" in train.stdout
    accuracy = float(train.stdout.split("test/accuracy:")[1].split()[0])
    assert accuracy > 0.6  # chance is 0.2

    evaluated = run_cli("evaluate", str(run))
    assert f"test/accuracy: {accuracy:.4f}" in evaluated.stdout

    images = sorted((root / "3").glob("*.png"))[:3]
    predicted = run_cli("predict", str(run), *map(str, images), "--json", "--top-k", "2")
    answers = json.loads(predicted.stdout)
    assert [a["input"] for a in answers] == list(map(str, images))
    for a in answers:
        assert len(a["top"]) == 2 and a["top"][0]["p"] >= a["top"][1]["p"]
        assert a["top"][0]["label"] in {"0", "1", "2", "3", "4"}
    assert sum(a["top"][0]["label"] == "3" for a in answers) >= 2

    inspected = run_cli("inspect", str(run))
    assert "stem.0.weight" in inspected.stdout and "gradient flow: 17/17" in inspected.stdout

    again = run_cli("train", "vision", "--config", str(run / "config.yaml"), "--out",
                    str(tmp_path / "run2"), "--set", "train.epochs=1")
    assert "test/accuracy" in again.stdout


def test_bad_set_key_lists_valid_keys(tmp_path):
    proc = run_cli("train", "vision", "--data", "digits", "--set", "train.learning_rate=1",
                   "--out", str(tmp_path / "r"), check=False)
    assert proc.returncode == 1 and "unknown key 'train.learning_rate'" in proc.stderr
    assert "train.lr (float" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_dataset_prints_install_command(tmp_path):
    proc = run_cli("train", "vision", "--out", str(tmp_path / "r"), check=False,
                   env={"E2E_FASHION_MNIST": str(tmp_path / "none")})
    assert proc.returncode == 1 and "apt-get install -y dataset-fashion-mnist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_on_missing_or_bad_image(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "vision", "--data", "digits", "--out", str(run), "--quiet",
            "--set", "train.epochs=1", "--set", "model.widths=[8,16]")
    proc = run_cli("predict", str(run), str(tmp_path / "nope.png"), check=False)
    assert proc.returncode == 1 and "nope.png does not exist" in proc.stderr
    (tmp_path / "bad.png").write_bytes(b"garbage")
    proc = run_cli("predict", str(run), str(tmp_path / "bad.png"), check=False)
    assert proc.returncode == 1 and "bad.png" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("evaluate", str(tmp_path), check=False)
    assert proc.returncode == 1 and "not a run directory" in proc.stderr
