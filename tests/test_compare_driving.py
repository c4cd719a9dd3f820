"""Driving, end to end vs stepwise: the modular pipeline, `e2e compare driving`, and
`e2e predict` on a driving run. Everything drives the real CarRacing simulator, briefly."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("gymnasium")

from conftest import read_episode_frame, run_cli  # noqa: E402

from e2e.compare import CompareOptions  # noqa: E402
from e2e.data.driving_records import read_episode  # noqa: E402
from e2e.errors import E2EError  # noqa: E402
from e2e.stepwise.driving import DrivingCompare, compare_driving, jobs  # noqa: E402
from e2e.stepwise.modular_driver import (  # noqa: E402
    CAR_COL,
    AdaptiveModularDriver,
    ModularDriver,
    adaptive_road_mask,
    hud_speed,
    road_centres,
    road_colour,
    road_mask,
)
from e2e.tasks import load_config  # noqa: E402
from e2e.tasks.driving.closed_loop import run_episode  # noqa: E402
from e2e.tasks.driving.expert import Expert  # noqa: E402
from e2e.tasks.driving.sim import WARMUP, make_env, step_env  # noqa: E402
from e2e.tasks.driving.task import DrivingTask  # noqa: E402

# a tiny PilotNet and short drives: a whole comparison in seconds
TINY = ["train.epochs=2", "train.batch_size=32", "train.device=cpu", "data.max_steps=100",
        "data.val_seeds=500", "data.test_seeds=1000", "data.workers=1",
        "model.widths=[8,16,16]", "model.kernels=[5,5,3]", "model.strides=[2,2,1]",
        "model.hidden=[16]"]


class Bar:
    """Counts progress steps like tqdm."""

    n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def set_description(self, text: str) -> None:
        self.text = text


def test_perception_reads_road_and_speed_from_the_frame():
    env = make_env()
    obs, _ = env.reset(seed=3)
    expert = Expert(env)
    for t in range(160):
        obs, *_ = step_env(env, np.zeros(3) if t < WARMUP else expert.act(env))
    # the car is on a straight at speed: the road is under it, the grass at the edges is not
    mask = road_mask(obs)
    assert mask.shape == (84, 96) and mask[60, 48] and not mask[:, :5].any()
    centres = road_centres(mask)
    assert abs(centres[0] - CAR_COL) < 6 and np.isfinite(centres[:30]).all()
    # the HUD's speed bar gives the simulator's speed to within a few m/s
    true_speed = float(np.linalg.norm(env.unwrapped.car.hull.linearVelocity))
    assert true_speed > 30 and abs(hud_speed(obs) - true_speed) < 5
    env.close()


def test_modular_driver_stays_on_the_road_without_privileged_state():
    driver = ModularDriver()
    ep, _ = run_episode(driver, seed=3, max_steps=300)
    # standing still scores -0.1 per step and touches no tile; the expert covers over a
    # quarter of this 271-tile track in these 250 driven steps (test_driving.py)
    assert ep.offtrack_steps == 0 and ep.tiles > 0.25 * ep.track_tiles and ep.score > 200
    # it reads the frame only: the expert's action it is handed changes nothing
    frame = read_episode_frame()
    driver.reset()
    a = driver.act(frame, np.array([1.0, 0.0, 1.0]))
    driver.reset()
    assert np.array_equal(a, driver.act(frame, None))
    with pytest.raises(E2EError, match=r"\(96, 96, 3\) CarRacing frames.*\(64, 64, 3\)"):
        driver.act(np.zeros((64, 64, 3), np.uint8))


@pytest.mark.slow
def test_compare_records_then_trains_nested_subsets_and_drives_the_same_tracks(tmp_path):
    # 3 expert episodes of 110 steps (60 frames after the zoom-in); one is held out
    opts = CompareOptions(out=tmp_path, fractions=(0.5, 1.0),
                          overrides=[*TINY[1:3], "train.epochs=1", "train.max_steps=4",
                                     "data.max_steps=110", *TINY[4:]])
    settings = DrivingCompare(episodes=3, sizes=(1, 2, 5))  # 5 > the 2 training episodes
    bar = Bar()
    result = compare_driving(opts, bar, settings)
    # record, end to end on 1 and 2 episodes, the modular pipeline and its adaptive version
    assert bar.n == jobs(opts, settings) == 5
    assert (tmp_path / "driving" / "recordings" / "episode-000002.npz").exists()
    e2e = [r for r in result.rows if r.train_examples]
    modular, adaptive = [r for r in result.rows if not r.train_examples]
    assert modular.side.startswith("stepwise:") and modular.infer_ms > 0
    assert adaptive.side.startswith("stepwise, adaptive:") and adaptive.infer_ms > 0
    assert [r.train_examples for r in e2e] == [60, 120]
    # nested: each subset is a prefix of the same episodes, none is the held-out episode
    files = []
    for k in (1, 2):
        cfg = load_config(tmp_path / "driving" / f"e2e-{k}-episodes" / "config.yaml")
        files.append(DrivingTask().build_data(cfg).train.files)
    assert files[0] == files[1][:1] and len(files[1]) == 2
    assert all(f.name != "episode-000002.npz" for f in files[1])
    # the stepwise side drives the test track: standing still scores -11 in 110 steps
    assert modular.quality > 10
    assert result.metric.higher_is_better and "| min score |" in result.notes
    assert "| usual look: mean score |" in result.notes and \
        "| randomized looks: mean score |" in result.notes
    # the full comparison trains every size for the same steps (the test's 4, not the epochs)
    assert "4 optimizer steps (batch 32) at every size" in result.notes
    # the teacher drives the same test track, and scores what it scores (never a fixed text)
    expert = next(ln for ln in result.notes.splitlines() if ln.startswith("| privileged expert"))
    assert float(expert.split("|")[2]) > 10
    # the expert reads the state: the same track in other colours, the same drive
    assert expert.split("|")[2] == expert.split("|")[6]


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """`e2e compare driving --data` on two short recordings (one held out), through the CLI."""
    root = tmp_path_factory.mktemp("cmpdrv")
    run_cli("data", "driving", "--out", str(root / "rec"), "--seeds", "0-1",
            "--max-steps", "150", "--workers", "1")
    proc = run_cli("compare", "driving", "--data", str(root / "rec"), "--out",
                   str(root / "report"),
                   *[a for o in (*TINY, "train.max_steps=6") for a in ("--set", o)])
    return root, proc


def test_compare_cli_writes_report(compared):
    root, proc = compared
    report = (root / "report" / "report.md").read_text()
    assert "## driving" in report and "mean closed-loop score (higher is better)" in report
    assert "| end to end (PilotNet, behavior cloning) | 100 |" in report
    assert "| stepwise: road mask" in report and "none (no learning)" in report
    assert "| stepwise, adaptive: road colour read from the frame" in report
    # the randomized-look column: the test track again, in other colours
    assert "| randomized looks: mean score |" in report and "again in randomized colours" in report
    assert "| min score |" in report and (root / "report" / "driving_data_curve.png").stat().st_size


def test_the_randomized_column_drives_the_usual_columns_tracks_unless_told_otherwise(tmp_path):
    from e2e.stepwise.driving import _config

    s = DrivingCompare()
    assert _config(CompareOptions(out=tmp_path), s).data.test_random_seeds == "1000-1099"
    quick = _config(CompareOptions(out=tmp_path, quick=True), s).data
    assert quick.test_random_seeds == quick.test_seeds == "1000-1001"
    for given in ("1100-1109", ""):
        opts = CompareOptions(out=tmp_path, overrides=[f"data.test_random_seeds={given}"])
        assert _config(opts, s).data.test_random_seeds == given


def test_subsets_are_nested_prefixes_disjoint_from_the_held_out_episode(compared):
    root, _ = compared
    cfg = load_config(None, "driving", [f"data.source={root / 'rec'}",
                                        "data.offline_val_episodes=0"])
    subsets = []
    for k in (1, 2):
        cfg.data.episodes = k
        subsets.append(DrivingTask().build_data(cfg).train.files)
    assert [f.name for f in subsets[1]] == ["episode-000000.npz", "episode-000001.npz"]
    assert subsets[0] == subsets[1][:1]
    cfg.data.offline_val_episodes, cfg.data.episodes = 1, 5
    assert [f.name for f in DrivingTask().build_data(cfg).train.files] == ["episode-000000.npz"]
    # one progress step per trained or driven system: e2e on 1 episode, the two modular ones
    opts = CompareOptions(out=root, data=str(root / "rec"))
    assert jobs(opts) == 3 and jobs(CompareOptions(out=root, quick=True)) == 1 + 3 + 2


def test_predict_driving_run_from_png_and_npy(compared, tmp_path):
    from PIL import Image

    from e2e import api

    root, _ = compared
    run = root / "report" / "driving" / "e2e-1-episodes"
    frame = read_episode(root / "rec" / "episode-000000.npz")[0][10]
    png, npy = tmp_path / "frame.png", tmp_path / "frame.npy"
    Image.fromarray(frame).save(png)
    np.save(npy, frame)
    answers = json.loads(run_cli("predict", str(run), str(png), str(npy), "--json").stdout)
    assert [a["input"] for a in answers] == [str(png), str(npy)]
    # PNG is lossless: the same pixels give the same controls
    assert answers[0]["steer"] == pytest.approx(answers[1]["steer"], abs=1e-6)
    assert -1 <= answers[0]["steer"] <= 1 and 0 <= answers[0]["gas"] <= 1
    model = api.load(run)
    (answer,) = model.predict([str(png)])
    assert model.serving.format_prediction(str(png), answer) == (
        f"{png}: steer {answers[0]['steer']:+.3f}  gas {answers[0]['gas']:.3f}  brake "
        f"{answers[0]['brake']:.3f}")
    # a frame of the wrong size, or a file that is no frame, is named with what to give
    Image.fromarray(frame[:64, :64]).save(tmp_path / "small.png")
    with pytest.raises(E2EError, match=r"small.png is a \(64, 64, 3\) frame.*\(96, 96, 3\)"):
        model.predict([str(tmp_path / "small.png")])
    (tmp_path / "notes.txt").write_text("not a frame")
    with pytest.raises(E2EError, match=r"notes.txt is not a readable frame.*PNG/JPEG"):
        model.predict([str(tmp_path / "notes.txt")])


def test_adaptive_pipeline_drives_a_randomized_track_the_fixed_one_leaves():
    # track 1001 in randomized colours: the fixed thresholds see no road and the car leaves it
    fixed, _ = run_episode(ModularDriver(), seed=1001, max_steps=300, look="random")
    adaptive, _ = run_episode(AdaptiveModularDriver(), seed=1001, max_steps=300, look="random")
    assert adaptive.offtrack_steps == 0 and adaptive.tiles > 0.25 * adaptive.track_tiles
    assert fixed.tiles < 0.5 * adaptive.tiles and adaptive.score > fixed.score + 200
    # in the usual look it drives as the fixed one does
    usual, _ = run_episode(AdaptiveModularDriver(), seed=1001, max_steps=300)
    assert usual.offtrack_steps == 0 and usual.tiles > 0.25 * usual.track_tiles


def test_adaptive_road_mask_finds_the_road_in_other_colours():
    env = make_env(look="random")
    from e2e.tasks.driving.sim import reset_env

    obs = reset_env(env, 1003, "random")
    expert = Expert(env)
    for t in range(160):
        obs, *_ = step_env(env, np.zeros(3) if t < WARMUP else expert.act(env))
    assert not road_mask(obs)[:60].any()  # the usual look's thresholds see no road here
    colour, spread = road_colour(obs)
    assert np.linalg.norm(colour - env.unwrapped.road_color) < 10 and spread < 10
    mask = adaptive_road_mask(obs, colour)
    # the same picture as the usual look's mask of the usual look: road under the car and
    # ahead, none at the edges, and the road's centre line starts under the car
    assert mask[60, 48] and not mask[:, :5].any()
    centres = road_centres(mask)
    assert abs(centres[0] - CAR_COL) < 6 and np.isfinite(centres[:30]).all()
    env.close()
