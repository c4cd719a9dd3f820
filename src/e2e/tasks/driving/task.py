"""Driving from pixels: camera frames in, steering, gas and brake out.

A PilotNet-style CNN (Bojarski et al., 2016) reads raw 96x96 RGB frames of gymnasium's
CarRacing, the current one stacked with an earlier one (so it sees motion), with the HUD's
speed bar visible and its steering, gyro and ABS bars blanked (they show what the last
actions did: the label), and outputs steer in [-1, 1] and gas, brake in [0, 1]. It learns
by behavior cloning from a privileged expert's recordings (`e2e data driving`), with
augmentation suited to driving: mirrored tracks, sideways shifts whose steering label is
corrected toward the road (PilotNet's recovery views), brightness, contrast, colour, blur,
sensor noise, JPEG compression, swapped colour channels.
It is *judged by driving*: `evaluate` lets it drive whole
tracks in closed loop (val/score picks the `best` checkpoint), because offline loss does
not predict driving. With `data.dagger_rounds` (`e2e train driving --dagger N`), `train`
runs DAgger on top of the engine's fit against behavior cloning's covariate shift (see
e2e.tasks.driving.dagger).

Seeds (tracks): recordings 0-199 by convention, DAgger rollouts 200-499, validation
500-599, test 1000 and up; train and test tracks never share a seed. Each track is driven
in the usual look or in randomized colours (sim.LOOKS): `data.random_looks` of the training
tracks, `data.val_random_seeds` and `data.test_random_seeds` in a randomized look.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import nn

from e2e.config import Config, TrainConfig
from e2e.data.columns import Column, ColumnSpec
from e2e.data.driving_records import read_episode, read_episode_actions, recording_files
from e2e.engine.batching import TensorData, eval_batches
from e2e.engine.progress import Ticker
from e2e.errors import E2EError
from e2e.tasks.base import Splits, Task
from e2e.tasks.driving.config import DrivingDataConfig, DrivingModelConfig, DrivingTrain
from e2e.tasks.driving.info import DrivingInfo
from e2e.tasks.driving.model import PilotNet
from e2e.tasks.driving.serving import DrivingServing
from e2e.tasks.driving.sim import HUD_ROWS, RANDOM, USUAL, parse_seeds, track_name


class DriveSplit:
    """Tracks to drive ((seed, look) pairs, or seeds: the usual look), plus optional
    recorded frames for an offline loss."""

    def __init__(self, seeds: list, max_steps: int, workers: int,
                 offline: TensorData | None = None):
        self.tracks = [(s, USUAL) if isinstance(s, int) else tuple(s) for s in seeds]
        self.max_steps, self.workers, self.offline = max_steps, workers, offline

    @property
    def seeds(self) -> list[int]:
        return [s for s, _ in self.tracks]

    def __len__(self) -> int:
        return len(self.tracks)


def split_tracks(d: DrivingDataConfig, usual: str, randomized: str) -> list[tuple[int, str]]:
    """The (seed, look) pairs of data.USUAL (usual look) and data.RANDOMIZED (randomized)."""
    pairs = []
    for key, look in ((usual, USUAL), (randomized, RANDOM)):
        text = getattr(d, key)
        if look == RANDOM and not str(text).strip():
            continue  # no randomized-look tracks
        try:
            pairs += [(s, look) for s in parse_seeds(text)]
        except E2EError as e:
            raise E2EError(f"data.{key}: {e}") from None
    return pairs


class Recordings(TensorData):
    """Recorded episodes as a split, read on first use (evaluating a run only drives
    tracks, so it works from the run directory alone). Each frame is held once; a batch
    stacks it with its `frames - 1` predecessors `gap` steps back in the same episode
    (x: uint8 N x 3F x H x W, newest first; before an episode's first frame, that frame).

    In memory (~22 MB per 800-frame episode), or with `in_memory=False` read as batches need
    them from an uncompressed copy of each episode's frames written once beside it
    (EPISODE.frames.npy), by positional reads as prepared corpora are (data/columns.py): hundreds
    of episodes train in little memory, the frames staying in the kernel's page cache."""

    def __init__(self, files: list[Path], frame_shape: tuple[int, ...], frames: int = 1,
                 gap: int = 1, in_memory: bool = True):
        self.files, self.frame_shape, self._tensors = files, frame_shape, None
        self.frames, self.gap, self.in_memory = frames, gap, in_memory
        self._maps: list[Column] | None = None

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            if self.in_memory:
                self._tensors = load_recordings(self.files, self.frame_shape)[0].tensors
            else:
                self._tensors, self._maps = open_recordings(self.files, self.frame_shape)
        return self._tensors

    def frames_at(self, index: torch.Tensor) -> torch.Tensor:
        t = self.tensors
        if self._maps is None:
            return t["x"][index]
        episode, local = t["episode"][index].tolist(), (index - t["start"][index]).tolist()
        out = np.stack([self._maps[e][i] for e, i in zip(episode, local)])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        t = self.tensors
        first = t["start"][index]
        x = torch.cat([self.frames_at(torch.maximum(index - k * self.gap, first))
                       for k in range(self.frames)], 1)
        return {"x": x, "y": t["y"][index]}


def open_recordings(files: list[Path], shape: tuple[int, ...]
                    ) -> tuple[dict[str, torch.Tensor], list[Column]]:
    """Labels in memory, frames on disk (H x W x 3 per row, one column file per episode)."""
    maps, actions, starts, episodes, n = [], [], [], [], 0
    for e, f in enumerate(files):
        cache = f.with_name(f.stem + ".frames.npy")
        if not cache.exists() or cache.stat().st_mtime < f.stat().st_mtime:
            frames, ac = read_episode(f, shape)
            tmp = cache.with_name(cache.stem + ".tmp.npy")
            np.save(tmp, frames)
            tmp.replace(cache)  # atomic: an interrupted copy is never mistaken for a whole one
        else:
            ac = read_episode_actions(f)
        frames = Column(cache, ColumnSpec("uint8", shape))
        if frames.shape != (len(ac), *shape):
            raise E2EError(f"{cache} holds frames of shape {frames.shape}, expected "
                           f"{(len(ac), *shape)}; delete it (it is rebuilt from {f.name})")
        maps.append(frames)
        actions.append(torch.from_numpy(ac))
        starts.append(torch.full((len(ac),), n, dtype=torch.long))
        episodes.append(torch.full((len(ac),), e, dtype=torch.long))
        n += len(ac)
    if not maps:
        raise E2EError("no driving recordings to load")
    return {"y": torch.cat(actions), "start": torch.cat(starts),
            "episode": torch.cat(episodes)}, maps


def load_recordings(files: list[Path], shape: tuple[int, ...] | None = None
                    ) -> tuple[TensorData, tuple[int, ...]]:
    """All episodes as one TensorData (x: uint8 N x 3 x H x W, y: N x 3, start: the index
    of each frame's episode's first frame); one frame shape."""
    frames, actions, starts, n = [], [], [], 0
    for f in files:
        fr, ac = read_episode(f, shape)  # every file must match the first one's frame shape
        shape = shape or fr.shape[1:]
        frames.append(torch.from_numpy(fr).permute(0, 3, 1, 2).contiguous())
        actions.append(torch.from_numpy(ac))
        starts.append(torch.full((len(fr),), n, dtype=torch.long))
        n += len(fr)
    if shape is None:
        raise E2EError("no driving recordings to load")
    return TensorData(x=torch.cat(frames), y=torch.cat(actions), start=torch.cat(starts)), \
        tuple(shape)


class DrivingTask(Task):
    name = "driving"
    DataConfig = DrivingDataConfig
    ModelConfig = DrivingModelConfig
    metrics = ("score", "score_min", "tiles", "laps", "offtrack", "loss", "score_usual",
               "score_random")
    channels_last = False
    Info = DrivingInfo
    Serving = DrivingServing

    def default_train(self) -> TrainConfig:
        return DrivingTrain()

    def train(self, cfg: Config, out: str | Path, resume: bool = False,
              quiet: bool = False) -> dict:
        """Behavior cloning (one fit), or with data.dagger_rounds, DAgger: rounds of fit in
        OUT/round-R (OUT/dagger.json sums them up); the results of the last round."""
        if not cfg.data.dagger_rounds:
            return super().train(cfg, out, resume, quiet)
        if resume:
            raise E2EError(f"a DAgger run ({out}) is continued by running the same command "
                           "again (finished rounds are kept), or one round with --resume "
                           f"{Path(out) / 'round-R'}")
        from e2e.tasks.driving.dagger import run_dagger

        summary = run_dagger(self, cfg, out, cfg.data.dagger_rounds, quiet)
        return {**summary["rounds"][-1], "dagger": str(Path(out) / "dagger.json")}

    # ---- data ----
    def build_data(self, cfg: Config, info: DrivingInfo | None = None) -> Splits:
        d: DrivingDataConfig = cfg.data
        test = DriveSplit(split_tracks(d, "test_seeds", "test_random_seeds"), d.max_steps,
                          d.workers)
        val_tracks = split_tracks(d, "val_seeds", "val_random_seeds")
        try:
            main = recording_files([d.source])
            more = recording_files(d.more) if d.more else []
        except E2EError as missing:
            # driving needs no recordings; training does, and build_model says so
            return Splits(TensorData(x=torch.zeros(0)), DriveSplit([], d.max_steps, d.workers),
                          test, DrivingInfo(missing=str(missing), frames=cfg.model.frames,
                                            frame_gap=cfg.model.frame_gap))
        n_val = max(0, min(d.offline_val_episodes, len(main) - 1))
        val_files = main[len(main) - n_val:] if n_val else []
        train_files = main[: len(main) - n_val]
        if d.episodes:  # a prefix of one fixed order (sorted by seed): the data curve's subsets
            train_files = train_files[: d.episodes]
        train_files += more
        shape = tuple(read_episode((val_files or train_files)[0])[0].shape[1:])
        m: DrivingModelConfig = cfg.model
        offline = Recordings(val_files, shape, m.frames, m.frame_gap) if val_files else None
        val = DriveSplit(val_tracks, d.max_steps, d.workers, offline)
        info = DrivingInfo(frame_shape=list(shape), source=str(d.source),
                           episodes=len(train_files), frames=m.frames, frame_gap=m.frame_gap)
        train = Recordings(train_files, shape, m.frames, m.frame_gap, d.in_memory)
        return Splits(train, val, test, info)

    # ---- model and loss ----
    def build_model(self, cfg: Config, info: DrivingInfo) -> nn.Module:
        # the frames it stacks are the data's (info), as the policy that drives it stacks them
        m = dataclasses.replace(cfg.model, frames=info.frames, frame_gap=info.frame_gap)
        if info.missing:
            raise E2EError(info.missing)
        if not len(m.widths) == len(m.kernels) == len(m.strides) >= 1:
            raise E2EError(f"model.widths, model.kernels and model.strides need one entry per "
                           f"conv layer; got {list(m.widths)}, {list(m.kernels)}, "
                           f"{list(m.strides)}")
        try:
            model = PilotNet(tuple(info.frame_shape), m)
        except ValueError as e:
            raise E2EError(str(e)) from None
        except RuntimeError as e:  # the convolutions shrank the frame below their kernel
            raise E2EError(f"the conv layers (kernels {list(m.kernels)}, strides "
                           f"{list(m.strides)}, pool {m.pool}) do not fit "
                           f"{info.frame_shape} frames: {e}") from None
        if m.init:
            from e2e.engine.checkpoint import load_checkpoint
            from e2e.engine.run import RunDir

            run = RunDir(m.init)
            ckpt = load_checkpoint(run.best if run.best.exists() else run.last)
            if list(ckpt["info"]["frame_shape"]) != info.frame_shape:
                raise E2EError(f"model.init={m.init} was trained on "
                               f"{ckpt['info']['frame_shape']} frames, this data has "
                               f"{info.frame_shape}")
            model.load_state_dict(ckpt["model"])
        return model

    def prepare_batch(self, batch: dict, train: bool, cfg: Config, info: DrivingInfo) -> dict:
        if not train:
            return batch
        y = batch["y"].clone()
        return {"x": augment(batch["x"].float(), y, cfg.data), "y": y}

    def loss(self, model: nn.Module, batch: dict, cfg: Config, info: DrivingInfo
             ) -> torch.Tensor:
        err = (model(batch["x"]) - batch["y"]).square().mean(0)
        m = cfg.model
        return m.steer_weight * err[0] + err[1] + m.brake_weight * err[2]

    # ---- evaluation: drive ----
    def evaluate(self, model: nn.Module, split: DriveSplit, cfg: Config, info: DrivingInfo
                 ) -> dict[str, float]:
        from e2e.tasks.driving.closed_loop import NetPolicy, drive, summarize_looks

        metrics: dict[str, float] = {}
        if split.offline is not None:
            total, n = 0.0, 0
            for b in eval_batches(split.offline, 512):
                b = {k: v.to(next(model.parameters()).device) for k, v in b.items()}
                total += float(self.loss(model, b, cfg, info)) * len(b["y"])
                n += len(b["y"])
            metrics["loss"] = total / n
        if split.tracks:
            was_training = model.training
            policy = NetPolicy(model.eval(), info)
            with Ticker(len(split.tracks), "driving", "tracks", delay=10) as ticker:  # minutes
                episodes, _ = drive(
                    policy, split.tracks, split.max_steps, split.workers,
                    progress=lambda e: ticker.update(
                        note=f"track {track_name(e.seed, e.look)}: {e.score:.0f}"))
            model.train(was_training)
            metrics = {**summarize_looks(episodes), **metrics}
            for e in episodes:  # per track (1003, random-1003): what the report's table shows
                name = track_name(e.seed, e.look)
                metrics[f"track_score/{name}"] = e.score
                metrics[f"track_tiles/{name}"] = e.tiles_fraction
                metrics[f"track_lap/{name}"] = float(e.lap)
                metrics[f"track_offtrack/{name}"] = float(e.offtrack_steps)
        return metrics

    def report(self, model: nn.Module, split: DriveSplit, cfg: Config, info: DrivingInfo,
               run_dir: Path, metrics: dict[str, float]) -> str:
        # the drives of the test evaluation that just ran: driving again would cost minutes
        rows = ["## Closed-loop test drives", "", "| track seed | score | tiles | lap | "
                "off-track steps |", "| --- | --- | --- | --- | --- |"]
        for seed, look in split.tracks:
            seed = track_name(seed, look)  # 1003, or random-1003 in a randomized look
            if f"track_score/{seed}" in metrics:
                rows.append(f"| {seed} | {metrics[f'track_score/{seed}']:.1f} | "
                            f"{100 * metrics[f'track_tiles/{seed}']:.0f}% | "
                            f"{'yes' if metrics[f'track_lap/{seed}'] else 'no'} | "
                            f"{metrics[f'track_offtrack/{seed}']:.0f} |")
        return "\n".join(rows)

def augment(x: torch.Tensor, y: torch.Tensor, d: DrivingDataConfig) -> torch.Tensor:
    """Training views of float frames N x 3F x H x W (y, N x 3, is corrected in place).

    Geometry moves only the road above the HUD, so the speed bar stays where it is read:
    mirrored tracks (steering negated) and PilotNet's recovery views (shifted sideways,
    steering corrected toward the road). Photometric changes (swapped colour channels,
    brightness, contrast, colour, blur) make the network learn the road's shape and not one
    rendering of it; then what a camera adds (sensor noise, JPEG compression). Every
    stacked frame of an example gets the same change."""
    n, _, h, w = x.shape
    road = h - HUD_ROWS
    dev = x.device

    def rand(*shape: int) -> torch.Tensor:  # uniform in [-1, 1)
        return 2 * torch.rand(n, *shape, device=dev) - 1

    if d.channel_shuffle:  # one permutation of R, G, B per example (the HUD's bars are gray)
        some = (torch.rand(n, device=dev) < d.channel_shuffle).nonzero().flatten()
        order = torch.argsort(torch.rand(len(some), 3, device=dev), 1)
        frames = x[some].view(len(some), -1, 3, h, w)
        x = x.clone()  # the caller's batch stays as it was
        x[some] = frames.gather(2, order[:, None, :, None, None].expand_as(frames)).view(
            len(some), -1, h, w)
    top = x[:, :, :road]
    if d.mirror:
        flip = torch.rand(n, device=dev) < d.mirror
        top = torch.where(flip[:, None, None, None], top.flip(3), top)
        y[:, 0] = torch.where(flip, -y[:, 0], y[:, 0])
    if d.shift_px:
        # shift the image right by dx: the road moves right of the car, so steer right
        dx = torch.randint(-d.shift_px, d.shift_px + 1, (n,), device=dev)
        cols = (torch.arange(w, device=dev)[None] - dx[:, None]).clamp(0, w - 1)
        top = top.gather(3, cols[:, None, None, :].expand_as(top))
        y[:, 0] = (y[:, 0] + d.steer_per_px * dx).clamp(-1, 1)
    x = torch.cat([top, x[:, :, road:]], 2)
    if d.blur:
        blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        x = torch.where((torch.rand(n, device=dev) < d.blur)[:, None, None, None], blurred, x)
    if d.color:  # one gain per colour channel, the same for every stacked frame
        x = (x.view(n, -1, 3, h, w) * (1 + d.color * rand(1, 3, 1, 1))).view(n, -1, h, w)
    if d.contrast:
        mean = x.mean((1, 2, 3), keepdim=True)
        x = mean + (x - mean) * (1 + d.contrast * rand(1, 1, 1))
    if d.brightness:
        x = x * (1 + d.brightness * rand(1, 1, 1))
    x = x.clamp(0, 255)
    if d.sensor_noise:  # Gaussian, std 2-10 levels, on this share of the examples
        some = (torch.rand(n, device=dev) < d.sensor_noise).nonzero().flatten()
        std = 2 + 8 * torch.rand(len(some), 1, 1, 1, device=dev)
        x[some] = (x[some] + std * torch.randn_like(x[some])).clamp(0, 255)
    if d.jpeg:
        x = jpeg(x, torch.rand(n) < d.jpeg, d.jpeg_quality)
    return x


def jpeg(x: torch.Tensor, chosen: torch.Tensor, lowest: int) -> torch.Tensor:
    """The `chosen` examples of float frames N x 3F x H x W, JPEG-compressed by Pillow at a
    quality drawn in [lowest, 90] per example (the same for its stacked frames)."""
    import io

    from PIL import Image

    x = x.clone()
    for i in chosen.nonzero().flatten().tolist():
        quality = int(torch.randint(lowest, 91, ()).item())
        frames = x[i].view(-1, 3, *x.shape[2:]).round().to(torch.uint8).permute(0, 2, 3, 1)
        for k, frame in enumerate(frames.cpu().numpy()):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            buf.seek(0)
            with Image.open(buf) as im:
                back = torch.from_numpy(np.asarray(im.convert("RGB")).copy())
            x[i, 3 * k: 3 * k + 3] = back.permute(2, 0, 1).to(x)
    return x
