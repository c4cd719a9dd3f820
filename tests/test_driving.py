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
from e2e.tasks.driving.closed_loop import ExpertPolicy, NetPolicy, one_pedal, run_episode  # noqa: E402
from e2e.tasks.driving.sim import WARMUP, make_env, parse_seeds  # noqa: E402

TINY = ["train.epochs=2", "train.batch_size=32", "train.device=cpu", "data.max_steps=100",
        "train.eval_every=100", "train.log_every=1", "data.dagger_rounds=0",
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
        # one frame per 2 steps, 80 ms each (Pillow merges identical neighbours, e.g. while
        # an untrained network stands still, into one longer frame: count the time)
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert sum(durations) == 80 * ((90 - WARMUP) // 2) and im.size == (288, 324)
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

    def dagger(rounds: int):  # one tiny track per round, tracks 200, 201, ...
        seeds = f"data.dagger_seeds=200-{199 + rounds}"
        return run_cli("train", "driving", "--data", str(recordings), "--out", str(out),
                       "--dagger", str(rounds),
                       *[a for o in TINY + [seeds, "data.dagger_episodes=1",
                                            "data.dagger_epochs=1"] for a in ("--set", o)])

    proc = dagger(1)
    summary = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in summary["rounds"]] == [0, 1] and "round 1: test/score" in \
        proc.stdout
    frames, actions = read_episode(out / "visited" / "round-1" / "episode-000200.npz")
    assert len(frames) == summary["rounds"][1]["added_frames"] > 0
    # in round 1 the expert took about half the steps (dagger_beta 0.5)
    with np.load(out / "visited" / "round-1" / "episode-000200.npz") as z:
        assert "expert mixed in at 0.5" in json.loads(str(z["meta"]))["policy"]
    # round 1 retrained from scratch (the original DAgger) on the visited frames too
    import yaml

    cfg0, cfg = (yaml.safe_load((out / f"round-{r}" / "config.yaml").read_text()) for r in (0, 1))
    assert not cfg["model"]["init"] and cfg["train"]["epochs"] == cfg0["train"]["epochs"]
    assert cfg["data"]["more"] == [str(out / "visited" / "round-1")]

    # --dagger 2 on the finished run keeps rounds 0 and 1 and adds round 2 on all the data
    kept = {r: (out / f"round-{r}" / "results.json").stat().st_mtime_ns for r in (0, 1)}
    proc = dagger(2)
    summary2 = json.loads((out / "dagger.json").read_text())
    assert [r["round"] for r in summary2["rounds"]] == [0, 1, 2]
    assert summary2["rounds"][:2] == summary["rounds"] and "round 1: kept from" in proc.stdout
    assert kept == {r: (out / f"round-{r}" / "results.json").stat().st_mtime_ns for r in (0, 1)}
    cfg2 = yaml.safe_load((out / "round-2" / "config.yaml").read_text())
    assert cfg2["data"]["more"] == [str(out / "visited" / f"round-{r}") for r in (1, 2)]
    assert (out / "visited" / "round-2" / "episode-000201.npz").exists()


def test_drawn_controls_show_a_left_turn_left_of_centre():
    from e2e.tasks.driving.closed_loop import draw_controls

    frame = np.zeros((96, 96, 3), np.uint8)
    for steer, side in ((-1.0, -20), (1.0, 20)):
        img = draw_controls(frame, np.array([steer, 0.5, 0.0]))
        y, mid = 96 * 3 + 8, 96 * 3 // 2
        assert tuple(img[y, mid + side]) == (80, 160, 255)  # the steering bar
        assert tuple(img[y, mid - side]) != (80, 160, 255)


def test_fast_render_draws_gymnasiums_frames_pixel_for_pixel():
    from e2e.tasks.driving.expert import Expert
    from e2e.tasks.driving.sim import step_env

    plain, fast = make_env(fast=False), make_env()
    a, _ = plain.reset(seed=3)
    b, _ = fast.reset(seed=3)
    expert = Expert(plain)
    for t in range(WARMUP + 60):
        # weave (so tiles get visited, change colour, and the view turns) along the road
        action = np.zeros(3) if t < WARMUP else expert.act(plain) + [0.4 * np.sin(t / 5), 0, 0]
        a, *_ = step_env(plain, action)
        b, *_ = step_env(fast, action)
        assert np.array_equal(a, b), f"frames differ at step {t}"
    assert plain.unwrapped.tile_visited_count > 5


def _tiny_pilotnet(frames: int, hud: str = "speed"):
    from e2e.tasks.driving.model import DrivingModelConfig, PilotNet

    torch.manual_seed(0)
    m = DrivingModelConfig(widths=(4, 8), kernels=(5, 5), strides=(2, 2), hidden=(8,),
                           frames=frames, frame_gap=3, hud=hud)
    return PilotNet((96, 96, 3), m).eval()


def test_policy_sees_the_frame_stacks_it_was_trained_on(tmp_path):
    from e2e.tasks.driving.task import Recordings

    rng = np.random.default_rng(0)
    for seed, n in ((0, 7), (1, 9)):
        write_episode(tmp_path / f"episode-{seed:06d}.npz",
                      rng.integers(0, 255, (n, 96, 96, 3), dtype=np.uint8),
                      rng.random((n, 3)).astype(np.float32))
    files = sorted(tmp_path.glob("*.npz"))
    data = Recordings(files, (96, 96, 3), frames=3, gap=3)
    assert len(data) == 16 and data.batch(torch.tensor([0]))["x"].shape == (1, 9, 96, 96)
    x = data.batch(torch.arange(16))["x"]
    raw = data.tensors["x"]
    # frame 12 = episode 1's 6th: itself, 3 and 6 steps back (clamped to the episode's start)
    assert torch.equal(x[12], torch.cat([raw[12], raw[9], raw[7]]))
    assert torch.equal(x[7], torch.cat([raw[7]] * 3))  # an episode's first frame, repeated
    # memory-mapped frames (for hundreds of episodes) give the very same batches
    mapped = Recordings(files, (96, 96, 3), frames=3, gap=3, in_memory=False)
    assert torch.equal(mapped.batch(torch.arange(16))["x"], x)
    assert (tmp_path / "episode-000001.frames.npy").exists() and "x" not in mapped.tensors
    again = Recordings(files, (96, 96, 3), frames=3, gap=3, in_memory=False)  # from the copy
    assert torch.equal(again.batch(torch.tensor([12]))["x"], x[12:13])
    # a policy fed the episode frame by frame builds the same stacks, so acts the same
    model = _tiny_pilotnet(3)
    policy = NetPolicy(model, {"frame_shape": [96, 96, 3], "frames": 3, "frame_gap": 3})
    policy.reset()
    frames = read_episode(files[1])[0]
    for t in range(6):
        acted = policy.act(frames[t])
    with torch.no_grad():
        want = model(x[12:13])[0].numpy()
    want = one_pedal(want)  # as the policy applies them
    np.testing.assert_allclose(acted, want, rtol=1e-5, atol=1e-6)


def test_network_reads_the_speed_bar_but_not_the_steering_bar():
    model = _tiny_pilotnet(1)
    frame = torch.full((1, 3, 96, 96), 100, dtype=torch.uint8)
    base = model(frame)
    speed, steering, score = frame.clone(), frame.clone(), frame.clone()
    speed[..., 88:93, 12:15] = 255  # the speed bar (HUD columns 12-14)
    steering[..., 86:91, 40:48] = 255  # the steering bar (HUD, around column 48)
    score[..., 86:93, 1:10] = 255  # the running score's digits
    assert not torch.allclose(model(speed), base)
    assert torch.equal(model(steering), base)
    assert torch.equal(model(score), base)
    # hud=crop: the whole HUD is gone, speed bar too
    cropped = _tiny_pilotnet(1, hud="crop")
    assert torch.equal(cropped(speed), cropped(frame))


def test_mirror_flips_the_road_negates_steering_and_keeps_the_hud():
    from e2e.tasks.driving.task import DrivingDataConfig, augment

    d = DrivingDataConfig(shift_px=0, mirror=1.0, brightness=0, contrast=0, color=0, blur=0)
    x = torch.rand(4, 6, 96, 96) * 255
    y = torch.tensor([[0.5, 1.0, 0.0]] * 4)
    out = augment(x.clone(), y, d)
    assert torch.equal(out[:, :, :84], x[:, :, :84].flip(3))
    assert torch.equal(out[:, :, 84:], x[:, :, 84:])  # the speed bar stays where it is read
    assert torch.equal(y[:, 0], torch.full((4,), -0.5)) and torch.equal(y[:, 1], torch.ones(4))
    # photometric changes keep pixels in range and change them
    d = DrivingDataConfig(shift_px=0, mirror=0, brightness=0.3, contrast=0.3, color=0.2, blur=1.0)
    out = augment(x.clone(), y.clone(), d)
    assert out.min() >= 0 and out.max() <= 255 and not torch.allclose(out, x)


def test_mixed_policy_hands_steps_to_the_expert_with_probability_beta():
    from e2e.tasks.driving.closed_loop import MixedPolicy

    net = NetPolicy(_tiny_pilotnet(1), {"frame_shape": [96, 96, 3]})
    frame = np.full((96, 96, 3), 100, np.uint8)
    label = np.array([0.7, 0.2, 0.0], np.float32)
    mixed = MixedPolicy(net, 0.5, seed=0)
    picks = [np.array_equal(mixed.act(frame, label), label) for _ in range(400)]
    assert 0.4 < np.mean(picks) < 0.6
    assert not np.array_equal(MixedPolicy(net, 0.0).act(frame, label), label)


def test_drive_refuses_a_run_of_another_task(tmp_path):
    (tmp_path / "config.yaml").write_text("task: vision\n")
    proc = run_cli("drive", str(tmp_path), "--seeds", "1000", check=False)
    assert proc.returncode != 0
    assert "is a 'vision' run; `e2e drive` needs a run of the driving application" in \
        proc.stderr + proc.stdout


class _Fixed(torch.nn.Module):
    """A 'network' that always answers the same (steer, gas, brake)."""

    def __init__(self, action):
        super().__init__()
        self.action = torch.tensor([action], dtype=torch.float32)

    def forward(self, x):
        return self.action.expand(len(x), 3)


@pytest.mark.parametrize("raw, pressed", [((0.1, 0.6, 0.13), (0.1, 0.6, 0.0)),
                                          ((0.1, 0.2, 0.5), (0.1, 0.0, 0.5)),
                                          ((0.1, 0.0, 0.03), (0.1, 0.0, 0.0))])
def test_the_network_presses_one_pedal_at_a_time(raw, pressed):
    policy = NetPolicy(_Fixed(raw), {"frame_shape": [96, 96, 3]})
    action = policy.act(np.zeros((96, 96, 3), np.uint8))
    assert np.allclose(action, pressed)


def test_noisy_expert_records_clean_labels_and_drifts_off_the_line(tmp_path):
    from e2e.tasks.driving.closed_loop import NoisyExpertPolicy

    clean, _ = run_episode(ExpertPolicy(), seed=3, max_steps=250, record=tmp_path / "clean.npz")
    noisy, _ = run_episode(NoisyExpertPolicy(0.2, seed=3), seed=3, max_steps=250,
                           record=tmp_path / "noisy.npz")
    frames_c, labels_c = read_episode(tmp_path / "clean.npz")
    frames_n, labels_n = read_episode(tmp_path / "noisy.npz")
    # the perturbed car sees other frames (it left the expert's line) ...
    assert not np.array_equal(frames_c[-1], frames_n[-1])
    # ... and the labels are the expert's own actions in those states: within [-1, 1] and
    # not the executed (noisy) steering, which wanders by ~0.2 around them
    assert np.abs(labels_n[:, 0]).max() <= 1
    policy = NoisyExpertPolicy(0.2, seed=3)
    label = np.array([0.0, 1.0, 0.0], np.float32)
    executed = np.array([policy.act(None, label)[0] for _ in range(2000)])
    assert 0.1 < executed.std() < 0.3 and abs(executed.mean()) < 0.1
    assert np.corrcoef(executed[:-1], executed[1:])[0, 1] > 0.8  # it wanders, not jitters
    # the same seed drives the same perturbation: recordings are reproducible
    a, b = NoisyExpertPolicy(0.2, seed=5), NoisyExpertPolicy(0.2, seed=5)
    assert all(a.act(None, label)[0] == b.act(None, label)[0] for _ in range(50))
