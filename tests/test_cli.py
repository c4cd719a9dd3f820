"""The CLI as a user runs it: train -> evaluate -> predict -> inspect, and its errors."""

import json

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image
from test_vision import make_image_folder


def test_round_trip_on_a_folder_of_pngs(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=40)
    run = tmp_path / "run"
    train = run_cli("train", "vision", "--data", str(root), "--out", str(run),
                    "--set", "data.image_size=16", "data.channels=1",  # several after one --set
                    "--set", "train.epochs=12", "--set", "train.batch_size=32",
                    "--set", "model.widths=[16,32,64]", "train.num_workers=1",
                    # fp32 on every machine: bf16 autocast (auto on AMX CPUs) leaves this
                    # 150-image model at twice the test loss, and the round trip is the point
                    "train.precision=fp32")
    assert "gradient flow: " in train.stderr and "test/accuracy" in train.stdout
    config = (run / "config.yaml").read_text()
    assert "image_size: 16" in config and "channels: 1" in config and "num_workers: 1" in config
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


# ---- every command on every run: the run's application is checked, predict works for all ----

def cli(capsys, *args: str) -> tuple[int, str, str]:
    from e2e.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def fresh_runs(tmp_path_factory):
    """Runs of two applications with freshly initialised default models: what a command does
    with a run of the wrong application does not depend on training."""
    from e2e.data.audio import VOCAB
    from e2e.export import init_run

    root = tmp_path_factory.mktemp("runs")
    vision = init_run("vision", {"classes": [str(i) for i in range(10)], "channels": 1,
                                 "size": [28, 28], "mean": [0.3], "std": [0.3], "flip": False,
                                 "source": "test"}, root / "vision")
    speech = init_run("speech", {"vocab": list(VOCAB)}, root / "speech")
    return {"vision": vision, "speech": speech, "root": root}


def test_a_command_for_another_application_says_so(fresh_runs, capsys):
    png = fresh_runs["root"] / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(png)
    for command, needs in ((["transcribe", str(fresh_runs["vision"]), str(png)], "speech"),
                           (["translate", str(fresh_runs["speech"]), "hello"], "text"),
                           (["drive", str(fresh_runs["speech"]), "--seeds", "1000"], "driving")):
        code, _, err = cli(capsys, *command)
        assert code == 1, command
        assert f"needs a run of the {needs} application" in err and "Traceback" not in err


def test_predict_answers_for_a_speech_run(fresh_runs, capsys):
    import soundfile

    wav = fresh_runs["root"] / "a.wav"
    soundfile.write(wav, 0.1 * np.sin(np.arange(16000) / 5).astype(np.float32), 16000)
    code, out, err = cli(capsys, "predict", str(fresh_runs["speech"]), str(wav))
    assert code == 0, err
    assert out.startswith(f"{wav}: ")  # an untrained model's transcript: any text, no traceback
    code, out, _ = cli(capsys, "predict", str(fresh_runs["speech"]), str(wav), "--json")
    answer = json.loads(out)[0]
    assert answer["input"] == str(wav) and {"text", "seconds", "rtf"} <= set(answer)
    assert answer["seconds"] == pytest.approx(1.0)


def test_version_bare_command_did_you_mean_and_exit_codes(capsys):
    from e2e.cli import main

    with pytest.raises(SystemExit) as version:
        main(["--version"])
    assert version.value.code == 0 and capsys.readouterr().out.startswith("e2e ")
    code, out, _ = cli(capsys)  # a bare `e2e` shows what it can do
    assert code == 0 and "train" in out and "transcribe" in out and "COMMAND" in out
    with pytest.raises(SystemExit) as usage:  # a wrong command line: exit 2, did you mean
        main(["trian", "vision"])
    assert usage.value.code == 2 and "did you mean 'train'" in capsys.readouterr().err
    code, _, err = cli(capsys, "train", "visoin")  # a command that ran and failed: exit 1
    assert code == 1 and "did you mean 'vision'" in err
    with pytest.raises(SystemExit) as usage:  # the data curve's sizes are shares of the data
        main(["compare", "text", "--fractions", "0.1,1.5"])
    assert usage.value.code == 2 and "1.5 is not a share of the data" in capsys.readouterr().err


def test_config_prints_the_applications_own_defaults(capsys):
    import yaml

    from e2e.tasks import default_config

    for app in ("vision", "driving"):
        code, out, _ = cli(capsys, "config", app)
        assert code == 0
        printed = yaml.safe_load(out)
        assert printed["train"]["epochs"] == default_config(app).train.epochs
        assert printed["train"]["monitor"] == default_config(app).train.monitor
