"""Closed-loop driving: a policy drives whole episodes and is scored by the simulator.

Offline loss on recorded frames does not tell whether a network can drive (its own small
errors take it to states the expert never showed it), so every driving number in e2e
comes from here. Episodes run in parallel worker processes (forked, one torch thread
each: the simulator, not the network, is the cost). The same loop records the states a
policy visits, labelled by the expert, which is all DAgger needs.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from e2e.data.driving_records import episode_path, write_episode
from e2e.errors import E2EError
from e2e.tasks.driving.expert import Expert, ExpertConfig
from e2e.tasks.driving.info import DrivingInfo
from e2e.tasks.driving.sim import (
    MAX_STEPS,
    USUAL,
    WARMUP,
    Episode,
    make_env,
    off_track,
    reset_env,
    step_env,
)

STALL_STEPS = 150  # end an episode after this many steps without a new tile (car lost)
# A regression head never outputs exactly 0, and in CarRacing even brake 0.02 held every step
# slows the wheels; the expert brakes 0.1 or more when it brakes at all.
BRAKE_DEADZONE = 0.05


def one_pedal(action: np.ndarray) -> np.ndarray:
    """The network's (steer, gas, brake) as a driver applies them: one pedal at a time.

    Where the expert brakes in some frames that look alike and not in others, regression
    answers with a little of both (gas 0.6 and brake 0.13 every step: the car crawls), so the
    stronger pedal wins; a brake under BRAKE_DEADZONE is none."""
    if action[2] > action[1]:
        action[1] = 0.0
    else:
        action[2] = 0.0
    if action[2] < BRAKE_DEADZONE:
        action[2] = 0.0
    return action


class ExpertPolicy:
    """The privileged expert as a policy (it reads the simulator, not the frame)."""

    name = "expert"

    def act(self, obs: np.ndarray, expert_action: np.ndarray) -> np.ndarray:
        return expert_action


class NoisyExpertPolicy(ExpertPolicy):
    """The expert, recorded while its steering is perturbed (DART: Laskey et al., 2017).

    A slowly wandering offset (an AR(1) process, standard deviation `noise`, correlated over
    about ten steps) is added to the steering the car executes, so it drifts off the
    expert's line; the recording keeps the expert's clean action as the label. Behavior
    cloning then sees what a driver does when slightly off course, the states its own small
    errors lead to, without a network in the loop (DAgger's rounds need one)."""

    def __init__(self, noise: float, seed: int = 0):
        self.noise, self.name = noise, f"expert, steering noise {noise:g}"
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        self.rng, self.drift = np.random.default_rng(seed), 0.0

    def act(self, obs: np.ndarray, expert_action: np.ndarray) -> np.ndarray:
        keep = 0.9  # correlation from one step to the next
        self.drift = keep * self.drift + self.noise * np.sqrt(1 - keep ** 2) * \
            self.rng.standard_normal()
        action = expert_action.copy()
        action[0] = np.clip(action[0] + self.drift, -1, 1)
        return action


class NetPolicy:
    """A trained network as a policy: raw frames in, (steer, gas, brake) out.

    It keeps the episode's recent frames: the network sees the current one and
    `info.frames - 1` earlier ones, `info.frame_gap` steps apart (the first frame of the
    drive standing in for those before it), exactly as it was trained."""

    def __init__(self, model: torch.nn.Module, info: DrivingInfo | dict, name: str = "network"):
        info = DrivingInfo.from_dict(info)  # or its dict form
        self.model, self.info, self.name = model.eval(), info, name
        self.frames, self.gap = info.frames, info.frame_gap
        self.history: list[np.ndarray] = []

    def reset(self, seed: int = 0) -> None:
        self.history = []

    def check_frame(self, obs: np.ndarray) -> None:
        want = tuple(self.info.frame_shape)
        if tuple(obs.shape) != want:
            raise E2EError(f"this model was trained on {want} frames but the simulator gives "
                           f"{tuple(obs.shape)} frames; retrain it on recordings of this "
                           "simulator (`e2e data driving`)")

    @torch.inference_mode()
    def act(self, obs: np.ndarray, expert_action: np.ndarray | None = None) -> np.ndarray:
        self.history = [*self.history[-(self.frames - 1) * self.gap:], obs] \
            if self.frames > 1 else [obs]
        last = len(self.history) - 1
        stack = [self.history[max(last - k * self.gap, 0)] for k in range(self.frames)]
        x = torch.from_numpy(np.concatenate(stack, 2)).permute(2, 0, 1).unsqueeze(0)
        with torch.autocast("cpu", enabled=False):
            action = self.model(x)[0].float().numpy()
        return one_pedal(action)


class MixedPolicy:
    """DAgger's early-round driver: at each step the expert drives with probability `beta`,
    else the network (which sees every frame either way, to keep its frame history)."""

    def __init__(self, net: NetPolicy, beta: float, seed: int = 0):
        self.net, self.beta, self.name = net, beta, f"{net.name}, expert mixed in at {beta:g}"
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int = 0) -> None:
        self.net.reset()

    def act(self, obs: np.ndarray, expert_action: np.ndarray) -> np.ndarray:
        action = self.net.act(obs, expert_action)
        return expert_action if self.rng.random() < self.beta else action


def run_episode(policy, seed: int, max_steps: int = MAX_STEPS, record: Path | None = None,
                video: bool = False, expert_cfg: ExpertConfig | None = None,
                look: str = USUAL) -> tuple[Episode, list[np.ndarray]]:
    """Drive one track in `look` (sim.LOOKS); optionally record (frame, expert action) pairs
    and video frames. `expert_cfg`: the expert's settings (its defaults when None)."""
    env = make_env(look=look)
    obs = reset_env(env, seed, look)
    if isinstance(policy, ExpertPolicy) and record is None and not video:
        # the expert reads the simulator's state, never the frame: skip drawing it (~10x faster)
        env.unwrapped._render = lambda *args, **kwargs: None
    if isinstance(policy, NetPolicy):
        policy.check_frame(obs)
    if hasattr(policy, "reset"):  # a policy with state (e.g. a PD controller) starts afresh
        policy.reset(seed)
    expert = Expert(env, expert_cfg)
    frames, labels, shown = [], [], []
    score, offtrack, last_tile, tiles, lap = 0.0, 0, 0, 0, False
    t = 0
    for t in range(max_steps):
        if t < WARMUP:  # the camera zooms in; every policy waits
            action = np.zeros(3, dtype=np.float32)
        else:
            label = expert.act(env)
            action = policy.act(obs, label)
            if record is not None:
                frames.append(obs)
                labels.append(label)
            if video:
                shown.append(draw_controls(obs, action))
        obs, reward, done, info = step_env(env, action)
        score += reward
        offtrack += t >= WARMUP and off_track(env)
        if env.unwrapped.tile_visited_count > tiles:
            tiles, last_tile = env.unwrapped.tile_visited_count, t
        if done:
            lap = bool(info.get("lap_finished", False))
            break
        if t - max(last_tile, WARMUP) >= STALL_STEPS:
            # lost: no new tile can come without the car finding the road again; count the
            # remaining steps at the simulator's -0.1 each rather than simulate them
            score -= 0.1 * (max_steps - t - 1)
            break
    ep = Episode(seed=seed, score=round(score, 2), tiles=tiles,
                 track_tiles=len(env.unwrapped.track), lap=lap, steps=t + 1,
                 offtrack_steps=int(offtrack), look=look)
    env.close()
    if record is not None and frames:
        write_episode(record, np.stack(frames), np.stack(labels), **asdict(ep),
                      policy=policy.name)
    return ep, shown


# The policy reaches forked workers through this global, not through pickling.
_POLICY = None


def _worker_init() -> None:
    torch.set_num_threads(1)
    # at batch 1, plain im2col convolutions beat oneDNN's (its per-call setup dominates)
    torch.backends.mkldnn.enabled = False


def _worker(job: tuple) -> tuple[Episode, list[np.ndarray]]:
    seed, max_steps, record, video, look = job
    return run_episode(_POLICY, seed, max_steps, record, video, look=look)


def drive(policy, seeds: list, max_steps: int = MAX_STEPS, workers: int = 2,
          record_dir: Path | None = None, record_tag: str = "episode", video: bool = False,
          progress: Callable[[Episode], None] | None = None
          ) -> tuple[list[Episode], list[np.ndarray]]:
    """Drive every track: a seed (the usual look) or a (seed, look) pair (sim.tracks); returns
    the episodes (in the order given) and the first one's video."""
    global _POLICY
    pairs = [(s, USUAL) if isinstance(s, (int, np.integer)) else tuple(s) for s in seeds]
    jobs = [(s, max_steps, episode_path(record_dir, s, record_tag, look) if record_dir else None,
             video and i == 0, look) for i, (s, look) in enumerate(pairs)]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        results = []
        for job in jobs:
            seed, steps, record, video, look = job
            results.append(run_episode(policy, seed, steps, record, video, look=look))
            if progress:
                progress(results[-1][0])
    else:
        _POLICY = policy
        try:
            with mp.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
                results = []
                for r in pool.imap(_worker, jobs):
                    results.append(r)
                    if progress:
                        progress(r[0])
        finally:
            _POLICY = None
    return [r[0] for r in results], results[0][1] if results else []


def summarize(episodes: list[Episode]) -> dict[str, float]:
    scores = np.array([e.score for e in episodes])
    return {"score": float(scores.mean()), "score_min": float(scores.min()),
            "tiles": float(np.mean([e.tiles_fraction for e in episodes])),
            "laps": float(np.mean([e.lap for e in episodes])),
            "offtrack": float(np.mean([e.offtrack_steps / max(e.steps - WARMUP, 1)
                                       for e in episodes]))}


def summarize_looks(episodes: list[Episode]) -> dict[str, float]:
    """summarize() over every episode, plus score_LOOK and score_min_LOOK for each look
    (score_usual, score_random) when more than one was driven: what `best` is chosen on is
    the mean over all."""
    out = summarize(episodes)
    looks = sorted({e.look for e in episodes})
    for look in looks if len(looks) > 1 else []:
        part = summarize([e for e in episodes if e.look == look])
        out[f"score_{look}"], out[f"score_min_{look}"] = part["score"], part["score_min"]
    return out


def draw_controls(frame: np.ndarray, action: np.ndarray, scale: int = 3) -> np.ndarray:
    """The frame, enlarged, with the steering, gas and brake the policy chose drawn below it."""
    from PIL import Image, ImageDraw

    h, w, _ = frame.shape
    img = Image.new("RGB", (w * scale, h * scale + 36), (20, 20, 20))
    img.paste(Image.fromarray(frame).resize((w * scale, h * scale), Image.NEAREST))
    d = ImageDraw.Draw(img)
    y, mid = h * scale + 4, w * scale // 2
    steer, gas, brake = (float(v) for v in action)
    tip = mid + int(steer * (mid - 4))  # left of the centre line when steering left
    d.rectangle([min(mid, tip), y, max(mid, tip), y + 8], fill=(80, 160, 255))
    d.line([mid, y - 2, mid, y + 10], fill=(255, 255, 255))
    d.rectangle([4, y + 14, 4 + int(gas * (mid - 8)), y + 22], fill=(60, 200, 60))
    d.rectangle([mid + 4, y + 14, mid + 4 + int(brake * (mid - 8)), y + 22], fill=(220, 60, 60))
    d.text((4, y + 23), f"steer {steer:+.2f}  gas {gas:.2f}  brake {brake:.2f}",
           fill=(230, 230, 230))
    return np.asarray(img)


def save_gif(frames: list[np.ndarray], path: Path, every: int = 2) -> None:
    from PIL import Image

    if not frames:
        raise E2EError("no frames to save: the episode ended during the zoom-in")
    images = [Image.fromarray(f) for f in frames[::every]]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=40 * every, loop=0)
