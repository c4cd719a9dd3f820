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

from conftest import read_episode_frame, run_cli  # noqa: E402

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
    # frames read from disk (for hundreds of episodes) give the very same batches
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


# ---- looks: the usual colours and randomized ones (issue 34) ----

def test_a_randomized_look_is_the_same_track_and_the_same_frames_for_the_same_seed():
    from e2e.tasks.driving.sim import RANDOM, look_seed, reset_env, step_env

    usual, a, b, other = make_env(), make_env(look=RANDOM), make_env(look=RANDOM), \
        make_env(look=RANDOM)
    frames = [reset_env(usual, 1003), reset_env(a, 1003, RANDOM), reset_env(b, 1003, RANDOM),
              reset_env(other, 1004, RANDOM)]
    # the track is the usual look's track of that seed: the colours alone differ
    assert np.array_equal(np.asarray(usual.unwrapped.track), np.asarray(a.unwrapped.track))
    assert not np.allclose(a.unwrapped.road_color, usual.unwrapped.road_color)
    assert not np.allclose(a.unwrapped.road_color, other.unwrapped.road_color)
    for t in range(WARMUP + 20):  # the same (seed, look): the same frames, step after step
        action = np.array([0.3 * np.sin(t / 4), 0.5, 0.0]) if t >= WARMUP else np.zeros(3)
        frames = [step_env(env, action)[0] for env in (usual, a, b, other)]
        assert np.array_equal(frames[1], frames[2]), f"step {t}"
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[3])
    assert look_seed(1003) != 1003 and look_seed(1003) == look_seed(1003)
    with pytest.raises(E2EError, match="make_env"):
        reset_env(usual, 1003, RANDOM)
    with pytest.raises(E2EError, match="look is one of usual, random, got 'blue'"):
        make_env(look="blue")


def test_the_experts_labels_do_not_depend_on_the_look(tmp_path):
    from e2e.tasks.driving.closed_loop import drive
    from e2e.tasks.driving.sim import RANDOM, USUAL

    episodes, _ = drive(ExpertPolicy(), [(3, USUAL), (3, RANDOM)], max_steps=160, workers=1,
                        record_dir=tmp_path)
    assert [e.look for e in episodes] == [USUAL, RANDOM]
    frames_u, labels_u = read_episode(tmp_path / "episode-000003.npz")
    frames_r, labels_r = read_episode(tmp_path / "episode-000003-random.npz")
    # the expert reads the state, and the physics ignore colours: the very same actions ...
    assert np.array_equal(labels_u, labels_r) and episodes[0].score == episodes[1].score
    # ... on other pixels
    assert frames_u.shape == frames_r.shape and (frames_u != frames_r).mean() > 0.3


def test_the_share_of_randomized_tracks_is_a_property_of_each_seed():
    from e2e.tasks.driving.sim import RANDOM, USUAL, random_look, tracks

    picked = tracks(list(range(200, 300)), 0.3)
    assert 29 <= sum(look == RANDOM for _, look in picked) <= 31
    # a seed keeps its look in any list it is part of
    assert all(tracks([s], 0.3) == [(s, look)] for s, look in picked[:20])
    assert {look for _, look in tracks(list(range(50)), 0.0)} == {USUAL}
    assert {look for _, look in tracks(list(range(50)), 1.0)} == {RANDOM}
    assert tracks([1, 2], 0.0, look=RANDOM) == [(1, RANDOM), (2, RANDOM)]
    assert not random_look(7, 0.0)


def test_e2e_data_driving_records_a_share_in_randomized_looks(tmp_path):
    out = tmp_path / "rec"
    run_cli("data", "driving", "--out", str(out), "--seeds", "4", "--max-steps", "70",
            "--workers", "1", "--random-looks", "1")
    assert [f.name for f in out.glob("*.npz")] == ["episode-000004-random.npz"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["random_looks"] == 1.0 and meta["episodes"]["random-4"]["look"] == "random"
    proc = run_cli("data", "driving", "--out", str(out), "--seeds", "4", "--random-looks", "2",
                   check=False)
    assert proc.returncode != 0 and "--random-looks: must be in [0, 1], got 2" in proc.stderr
    proc = run_cli("drive", "expert", "--seeds", "4", "--look", "blue", check=False)
    assert proc.returncode != 0 and "invalid choice: 'blue'" in proc.stderr


def test_camera_augmentation_noise_jpeg_and_swapped_channels():
    import dataclasses

    from e2e.tasks.driving.task import DrivingDataConfig, augment

    off = DrivingDataConfig(shift_px=0, mirror=0, brightness=0, contrast=0, color=0, blur=0)
    torch.manual_seed(0)
    x = torch.rand(16, 6, 96, 96) * 200 + 20
    y = torch.zeros(16, 3)
    assert torch.equal(augment(x.clone(), y, off), x)  # every change off: the frames as they were
    noisy = augment(x.clone(), y, dataclasses.replace(off, sensor_noise=1.0))
    assert 2 <= (noisy - x).std() <= 10 and noisy.min() >= 0 and noisy.max() <= 255
    frame = torch.from_numpy(read_episode_frame()).permute(2, 0, 1).float()
    jpg = augment(frame.repeat(4, 2, 1, 1), y[:4], dataclasses.replace(off, jpeg=1.0,
                                                                       jpeg_quality=30))
    diff = (jpg - frame.repeat(4, 2, 1, 1)).abs()
    assert 0 < diff.mean() < 8 and jpg.min() >= 0 and jpg.max() <= 255  # lossy, not ruined
    # swapped channels: each example's channels are a permutation of its own, the same one for
    # every stacked frame, and the labels stay
    red = torch.zeros(32, 6, 96, 96)
    red[:, 0] = red[:, 3] = 255
    labels = torch.rand(32, 3)
    out = augment(red.clone(), labels.clone(), dataclasses.replace(off, channel_shuffle=1.0))
    lit = out.view(32, 2, 3, 96, 96).amax((3, 4)) > 0
    assert (lit.sum(2) == 1).all() and torch.equal(lit[:, 0], lit[:, 1])
    assert lit[:, 0, 1:].any()  # some red roads became green or blue


def test_validation_and_test_drive_both_looks_and_best_is_their_mean(recordings, tmp_path):
    out = tmp_path / "both"
    looks = ["data.val_random_seeds=501", "data.test_random_seeds=1000",
             "data.random_looks=0.5", "train.epochs=1"]
    results = api.train("driving", out=out, data=str(recordings), overrides=TINY + looks,
                        quiet=True)
    assert {"test/track_score/1000", "test/track_score/random-1000"} <= set(results)
    assert results["test/score"] == pytest.approx(
        (results["test/score_usual"] + results["test/score_random"]) / 2)
    vals = {r["metric"]: float(r["value"]) for r in _rows(out / "metrics.csv")
            if r["metric"].startswith("val/score")}
    assert vals["val/score"] == pytest.approx((vals["val/score_usual"] +
                                               vals["val/score_random"]) / 2)
    assert "| random-1000 |" in (out / "report.md").read_text()


def test_bad_look_settings_are_named_before_anything_runs(recordings):
    from e2e.tasks import load_config
    from e2e.tasks.driving.task import DrivingTask

    with pytest.raises(E2EError, match=r"data.random_looks.*\[0, 1\]"):
        load_config(None, "driving", ["data.random_looks=1.5"])
    with pytest.raises(E2EError, match=r"data.jpeg_quality.*\[1, 90\]"):
        load_config(None, "driving", ["data.jpeg_quality=95"])
    cfg = load_config(None, "driving", [f"data.source={recordings}",
                                        "data.val_random_seeds=510-x"])
    with pytest.raises(E2EError, match=r"data.val_random_seeds: seeds must look like "
                                       r"0-19 or 1,5,7-8, got '510-x'"):
        DrivingTask().build_data(cfg)
    cfg = load_config("varied", "driving", [f"data.source={recordings}"])
    split = DrivingTask().build_data(cfg).val
    assert split.tracks == [*((s, "usual") for s in range(500, 510)),
                            *((s, "random") for s in range(510, 520))]


@pytest.mark.slow
def test_dagger_rolls_out_in_randomized_looks(recordings, tmp_path):
    out = tmp_path / "dagger-looks"
    run_cli("train", "driving", "--data", str(recordings), "--out", str(out), "--dagger", "1",
            *[a for o in TINY + ["data.dagger_seeds=200", "data.dagger_episodes=1",
                                 "data.random_looks=1", "train.epochs=1"] for a in ("--set", o)])
    assert (out / "visited" / "round-1" / "episode-000200-random.npz").exists()


# ---- the benchmark's arithmetic (bench/driving.py), on numbers made up here ----

def _bench():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "bench"))
    spec = importlib.util.spec_from_file_location("bench_driving", root / "bench" / "driving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, root


def test_bench_noise_is_the_spread_over_validation_sized_subsets():
    bench, _ = _bench()
    rng = np.random.default_rng(0)
    parts = {"usual": {"scores": list(920 + rng.normal(0, 5, 100))},
             "random": {"scores": list(np.where(rng.random(100) < 0.1, 200.0, 900.0))}}
    small = bench.subset_spread(parts, {"usual": 10, "random": 10})
    large = bench.subset_spread(parts, {"usual": 20, "random": 20})
    assert 0 < large < small  # more tracks, less noise
    # a mean of 20 tracks with about 10% crashes of 700 points: std ~ 700*0.3/sqrt(20)/2 ~ 23
    assert 12 < small < 35
    same = {"usual": {"scores": [920.0] * 100}}
    assert bench.subset_spread(same, {"usual": 10, "random": 0}) == 0
    assert np.isnan(bench.subset_spread(same, {"usual": 200}))
    before = {"usual": {"scores": [900.0, 910.0, 920.0]}}
    now = {"usual": {"scores": [910.0, 920.0, 930.0]}}
    assert bench.paired(now, before, "usual") == "+10.0 ± 0.0"
    assert bench.paired(now, before, "random") == "-"


def test_bench_reads_both_looks_of_a_round_and_summarizes_repeats(tmp_path):
    bench, _ = _bench()
    results = {"test/track_score/1000": 900.0, "test/track_score/1001": 920.0,
               "test/track_lap/1000": 1.0, "test/track_lap/1001": 1.0,
               "test/track_score/random-1000": 500.0, "test/track_score/random-1001": 700.0,
               "test/track_lap/random-1000": 0.0, "test/track_lap/random-1001": 1.0}
    parts = bench.round_parts(results, {"usual": [1000, 1001], "random": [1000, 1001]})
    assert parts["usual"]["scores"] == [900.0, 920.0] and parts["random"]["summary"]["laps"] == 0.5
    assert bench.row("x", parts).startswith("| x | 910.0 | 910.0 | 900.0 | 100% | 600.0 |")
    for i, shift in enumerate((0.0, 10.0)):
        d = tmp_path / f"rep{i}"
        d.mkdir()
        shifted = {look: {"scores": [s + shift for s in p["scores"]], "summary": p["summary"]}
                   for look, p in parts.items()}
        (d / "bench.json").write_text(json.dumps({
            "seed": i, "command": f"bench {i}", "expert": shifted,
            "rounds": [{"round": 0, "parts": shifted}]}))
    body = bench.summarize_repeats([tmp_path / "rep0", tmp_path / "rep1"], dry_run=True)
    assert "| network: behavior cloning (round 0) | 2 | 915.0 (spread 10.0: 910.0, 920.0) | " \
           "900.0 | 605.0 (spread 10.0: 600.0, 610.0) | 500.0 |" in body
    with pytest.raises(SystemExit, match="rep9/bench.json does not exist"):
        bench.summarize_repeats([tmp_path / "rep9"], dry_run=True)


@pytest.mark.parametrize("args, seed, config", [
    ([], 0, None), (["--config", "varied"], 0, "varied"),
    (["--config", "varied", "--seed", "1"], 1, "varied")])
def test_bench_print_config_is_the_recipe_plus_its_budget(args, seed, config, tmp_path):
    import subprocess

    import yaml

    from e2e.tasks import load_config

    _, root = _bench()
    proc = subprocess.run([sys.executable, str(root / "bench" / "driving.py"), *args,
                           "--print-config"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = yaml.safe_load(proc.stdout)
    name = "-".join(["driving", *([config] if config else []), *([f"seed{seed}"] if
                                                                  "--seed" in args else [])])
    want = load_config(config, "driving", [
        f"data.source=bench/runs/{name}/data", "data.test_seeds=1000-1099",
        "data.test_random_seeds=1000-1099", "data.workers=2", f"train.seed={seed}"])
    assert printed == yaml.safe_load(want.to_yaml())
