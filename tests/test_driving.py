"""Driving: the expert, recordings, behavior cloning through the engine, the drive loop.

Every test drives the real CarRacing simulator, for a few hundred steps at most.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("gymnasium")

from conftest import run_cli  # noqa: E402

from e2e import api  # noqa: E402
from e2e.data.driving_records import read_episode, write_episode  # noqa: E402
from e2e.errors import DatasetMissing, E2EError  # noqa: E402
from e2e.tasks.driving.closed_loop import ExpertPolicy, NetPolicy, run_episode  # noqa: E402
from e2e.tasks.driving.sim import WARMUP, make_env, parse_seeds  # noqa: E402

TINY = ["train.epochs=2", "train.batch_size=32", "train.device=cpu", "data.max_steps=100",
        "train.eval_every=100", "train.log_every=1",
        "data.val_seeds=500", "data.test_seeds=1000", "data.workers=1",
        "model.widths=[8,16,16]", "model.kernels=[5,5,3]", "model.strides=[2,2,1]",
        "model.hidden=[16]"]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """Two short expert episodes, recorded through the CLI on training tracks 0 and 1."""
    out = tmp_path_factory.mktemp("driving") / "rec"
    proc = run_cli("data", "driving", "--out", str(out), "--seeds", "0-1", "--max-steps", "170")
    assert "recorded 2 episodes, 240 frames" in proc.stdout
    return out


def test_expert_stays_on_road_and_makes_progress():
    env = make_env()
    env.reset(seed=3)
    from e2e.tasks.driving.expert import Expert
    from e2e.tasks.driving.sim import off_track, step_env

    expert = Expert(env)
    for t in range(300):
        action = np.zeros(3) if t < WARMUP else expert.act(env)
        *_, done, _ = step_env(env, action)
        assert not off_track(env), f"the expert left the road at step {t}"
        assert not done
    # 250 driven steps (5 s) cover over a quarter of this 271-tile track
    assert env.unwrapped.tile_visited_count > 0.25 * len(env.unwrapped.track)


@pytest.mark.slow
def test_expert_finishes_a_lap():
    ep, _ = run_episode(ExpertPolicy(), seed=3)
    assert ep.lap and ep.score > 900 and ep.offtrack_steps == 0


def test_record_read_round_trip(recordings):
    meta = json.loads((recordings / "metadata.json").read_text())
    assert meta["frame_shape"] == [96, 96, 3] and meta["warmup_steps_skipped"] == WARMUP
    for seed in (0, 1):
        frames, actions = read_episode(recordings / f"episode-{seed:06d}.npz")
        assert frames.shape == (170 - WARMUP, 96, 96, 3) and frames.dtype == np.uint8
        assert actions.shape == (len(frames), 3)
        assert actions[:, 0].min() >= -1 and actions[:, 0].max() <= 1
        assert actions[:, 1].max() == 1.0  # the expert accelerates out of the start
        assert meta["episodes"][str(seed)]["steps"] == 170
    # the frames are the simulator's: the first recorded frame is what a fresh env shows
    env = make_env()
    obs, _ = env.reset(seed=0)
    for _ in range(WARMUP):
        obs, *_ = env.step(np.zeros(3))
    assert np.array_equal(obs, read_episode(recordings / "episode-000000.npz")[0][0])


def test_bad_recordings_are_named(tmp_path):
    frames = np.zeros((4, 96, 96, 3), np.uint8)
    write_episode(tmp_path / "good.npz", frames, np.zeros((4, 3)))
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(E2EError, match="cut.npz.*truncated"):
        read_episode(tmp_path / "cut.npz")
    # training names the truncated file (cut.npz trains, good.npz is held out for val/loss)
    proc = run_cli("train", "driving", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                   check=False)
    assert proc.returncode == 1 and "cut.npz" in proc.stderr and "Traceback" not in proc.stderr
    write_episode(tmp_path / "gray.npz", np.zeros((4, 96, 96), np.uint8), np.zeros((4, 3)))
    with pytest.raises(E2EError, match=r"gray.npz: frames have shape \(96, 96\)"):
        read_episode(tmp_path / "gray.npz")


def test_missing_simulator_prints_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnasium.envs.box2d.car_racing", None)
    with pytest.raises(DatasetMissing, match=r'pip install "gymnasium\[box2d\]"'):
        make_env()


def test_seeds_parse():
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    with pytest.raises(E2EError, match="seeds"):
        parse_seeds("a-b")


def test_tiny_behavior_cloning_then_drive_with_video(recordings, tmp_path):
    out = tmp_path / "bc"
    results = api.train("driving", out=out, data=str(recordings), overrides=TINY, quiet=True)
    # the one loss fell, gradient reached every layer, and the network drove the test track
    losses = [float(r["value"]) for r in _rows(out / "metrics.csv")
              if r["metric"] == "train/loss"]
    assert losses[-1] < losses[0]
    assert all(r["status"] == "ok" for r in json.loads((out / "gradflow.json").read_text()))
    assert results["test/tiles"] > 0 and np.isfinite(results["test/score"])
    assert "val/score" in (out / "metrics.csv").read_text()
    # `e2e drive` runs the network in closed loop (two worker processes) and writes a GIF
    gif = tmp_path / "drive.gif"
    proc = run_cli("drive", str(out), "--seeds", "1000-1001", "--max-steps", "90",
                   "--video", str(gif))
    assert "on 2 tracks: mean score" in proc.stdout
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == (90 - WARMUP) // 2 and im.size == (288, 324)
    # predict: raw frame in, controls out
    frame = read_episode(recordings / "episode-000000.npz")[0][0]
    (action,) = api.load(out).predict(frame)
    assert -1 <= action["steer"] <= 1 and 0 <= action["gas"] <= 1
    # evaluating drives the test tracks again, the same way, without the recordings
    again = api.load(out).evaluate("test", data=str(tmp_path / "recordings-gone"))
    assert again["test/score"] == pytest.approx(results["test/score"], abs=1e-6)


def test_model_for_other_frame_size_refuses_to_drive(tmp_path):
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        write_episode(tmp_path / f"episode-{seed:06d}.npz",
                      rng.integers(0, 255, (64, 64, 64, 3), dtype=np.uint8),
                      rng.random((64, 3)).astype(np.float32))
    out = tmp_path / "small"
    with pytest.raises(E2EError, match=r"trained on \(64, 64, 3\) frames but the simulator "
                                       r"gives \(96, 96, 3\)"):
        api.train("driving", out=out, data=str(tmp_path), overrides=TINY, quiet=True)
    policy = NetPolicy(torch.nn.Identity(), {"frame_shape": [64, 64, 3]})
    with pytest.raises(E2EError, match="retrain it"):
        run_episode(policy, seed=0, max_steps=WARMUP + 1)


def _rows(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_dagger_round_adds_expert_labelled_states(recordings, tmp_path):
    out = tmp_path / "dagger"
    proc = run_cli("train", "driving", "--data", str(recordings), "--out", str(out),
                   "--dagger", "1", *[a for o in TINY + ["data.dagger_seeds=200",
                                                         "data.dagger_episodes=1",
                                                         "data.dagger_epochs=1"]
                                      for a in ("--set", o)])
    summary = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1] and "round 1: test/score" in \
        proc.stdout
    frames, actions = read_episode(out / "visited" / "round-1" / "episode-000200.npz")
    assert len(frames) == summary["rounds"][1]["added_frames"] > 0
    # round 1 retrained from scratch (the original DAgger) on the visited frames too
    import yaml

    cfg0, cfg = (yaml.safe_load((out / f"round-{r}" / "config.yaml").read_text()) for r in (0, 1))
    assert not cfg["model"]["init"] and cfg["train"]["epochs"] == cfg0["train"]["epochs"]
    assert cfg["data"]["more"] == [str(out / "visited" / "round-1")]


def test_drawn_controls_show_a_left_turn_left_of_centre():
    from e2e.tasks.driving.closed_loop import draw_controls

    frame = np.zeros((96, 96, 3), np.uint8)
    for steer, side in ((-1.0, -20), (1.0, 20)):
        img = draw_controls(frame, np.array([steer, 0.5, 0.0]))
        y, mid = 96 * 3 + 8, 96 * 3 // 2
        assert tuple(img[y, mid + side]) == (80, 160, 255)  # the steering bar
        assert tuple(img[y, mid - side]) != (80, 160, 255)
