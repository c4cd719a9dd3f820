"""The driving application's settings: the `data` and `model` sections of its config and its
training recipe. These defaults ARE the measured recipe (bench/driving.py: behavior cloning,
then DAgger rounds, each chosen on 10 validation tracks with EMA weights); named variants are
overlays in e2e/recipes/driving/. Nothing here imports torch, so `e2e config` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from e2e.config import Config, TrainConfig
from e2e.tasks.driving.sim import MAX_STEPS

# Std of the steering perturbation while the expert records (`e2e data driving --noise`,
# bench/driving.py): enough drift that the data shows recoveries, too little to crash it.
STEERING_NOISE = 0.1


@dataclass
class DrivingDataConfig:
    source: str = "runs/driving-data"  # folder of recordings made by `e2e data driving`
    more: list[str] = field(default_factory=list)  # further recordings (DAgger adds rounds)
    offline_val_episodes: int = 1  # recorded episodes held out for the offline loss
    in_memory: bool = True  # False: read frames from disk as batches need them (many episodes)
    episodes: int = 0  # train on the first N of the other recorded episodes (0 = all)
    val_seeds: str = "500-509"  # tracks driven at each evaluation to pick `best`
    test_seeds: str = "1000-1003"  # unseen tracks driven for the final test numbers
    # Looks (e2e.tasks.driving.sim): this share of the recorded tracks (`e2e data driving
    # --random-looks`, bench/driving.py) and of DAgger's tracks is drawn in randomized
    # colours (the simulator's domain_randomize); the expert reads the state, so its labels
    # are the same in every look. 0 = the usual look only.
    random_looks: float = 0.0
    # tracks also driven in a randomized look at each evaluation ("" = none): `best` is
    # chosen on the mean over these and val_seeds together (val/score_usual and
    # val/score_random show each look alone)
    val_random_seeds: str = ""
    test_random_seeds: str = ""  # the same for the final test drives
    max_steps: int = MAX_STEPS  # per closed-loop episode
    workers: int = 2  # processes driving episodes in parallel
    shift_px: int = 4  # augmentation: sideways shift of up to this many pixels ...
    steer_per_px: float = 0.03  # ... with this steering correction per pixel, toward the road
    mirror: float = 0.5  # augmentation: this share of frames mirrored, their steering negated
    brightness: float = 0.25  # augmentation: scale pixel values by 1 +- this ...
    contrast: float = 0.2  # ... stretch them about their mean by 1 +- this ...
    color: float = 0.1  # ... scale each of R, G, B by 1 +- this ...
    blur: float = 0.2  # ... and blur this share of frames (3x3 box)
    # What else a camera does to a frame, each on this share of frames: sensor noise
    # (Gaussian, std 2-10 of 255 levels), JPEG compression (Pillow, quality jpeg_quality-90),
    # and the colour channels in another order (a green road on red grass: colours that
    # neither look has, so the network leans on shapes)
    sensor_noise: float = 0.0
    jpeg: float = 0.0
    jpeg_quality: int = 30
    channel_shuffle: float = 0.0
    # Rounds of DAgger after behavior cloning (e2e.tasks.driving.dagger): round r lets the
    # round r-1 network drive, has the expert label what it saw, and retrains (0 = cloning
    # only; `e2e train driving --dagger N` sets it). Runs go to OUT/round-0 ... round-N.
    # Three: the crashes of rounds 0-2 on unseen tracks were gone only after the third.
    dagger_rounds: int = 3
    dagger_seeds: str = "200-499"  # tracks DAgger rolls out on (disjoint from the others)
    dagger_episodes: int = 10  # rollouts per DAgger round
    # In round r the expert, not the network, takes each step with probability beta^r:
    # early rounds visit states near the expert's (a weak first network would mostly teach
    # crashes), later rounds the network's own.
    dagger_beta: float = 0.5
    # Each DAgger round retrains from scratch on all data so far (as in the original
    # algorithm); with dagger_finetune it fine-tunes the previous round's network instead,
    # for dagger_epochs (cheaper; on CarRacing it drove worse: see bench/RESULTS.md).
    dagger_finetune: bool = False
    dagger_epochs: int = 2

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "offline_val_episodes": "[0, inf)", "episodes": "[0, inf)", "max_steps": "[1, inf)",
        "workers": "[1, inf)", "shift_px": "[0, inf)", "steer_per_px": "[0, inf)",
        "brightness": "[0, 1)", "mirror": "[0, 1]",
        "contrast": "[0, 1)", "color": "[0, 1)", "blur": "[0, 1]", "dagger_beta": "[0, 1]",
        "random_looks": "[0, 1]", "sensor_noise": "[0, 1]", "jpeg": "[0, 1]",
        "jpeg_quality": "[1, 90]", "channel_shuffle": "[0, 1]",
        "dagger_rounds": "[0, inf)",
        "dagger_episodes": "[1, inf)", "dagger_epochs": "[1, inf)"}


@dataclass
class DrivingModelConfig:
    pool: int = 2  # average-pool the cropped frame by this factor first (84x96 -> 42x48)
    widths: tuple[int, ...] = (24, 36, 48, 64, 64)  # PilotNet's five conv layers ...
    kernels: tuple[int, ...] = (5, 5, 3, 3, 3)  # ... their kernel sizes ...
    strides: tuple[int, ...] = (2, 2, 1, 1, 1)  # ... and strides
    hidden: tuple[int, ...] = (100, 50, 10)  # its fully connected layers
    dropout: float = 0.2
    steer_weight: float = 2.0  # steering matters most: weight its squared error
    # Braking is rare (a few bends a lap) but a missed brake ends the lap: without this
    # weight the network never braked harder than 0.1 where the expert braked 0.8
    brake_weight: float = 4.0
    init: str = ""  # start from this driving run's best weights (DAgger's later rounds)
    # Temporal context: the network sees the current frame and `frames - 1` earlier ones,
    # `frame_gap` simulator steps apart (50 per second), so it can tell how fast the road
    # moves; 1 = the current frame alone.
    frames: int = 2
    frame_gap: int = 3
    # The HUD (bottom 12 rows): "speed" keeps its speed bar and blanks the rest (the
    # steering and gyro bars show the wheel angle the last actions set: the label, copied);
    # "crop" drops all of it (the network then sees no speedometer).
    hud: str = "speed"

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "pool": "[1, inf)", "widths": "[1, inf)", "kernels": "[1, inf)", "strides": "[1, inf)",
        "hidden": "[1, inf)", "dropout": "[0, 1)", "steer_weight": "[0, inf)",
        "brake_weight": "[0, inf)",
        "frames": "[1, inf)", "frame_gap": "[1, inf)"}


@dataclass
class DrivingTrain(TrainConfig):
    """The training recipe: AdamW at 1e-3 for 8 epochs, `best` picked by driving."""

    epochs: int = 8
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip_grad: float = 1.0
    eval_every: int = 500  # optimizer steps between drives of the validation tracks
    monitor: str = "val/score"
    # EMA weights: neighbouring checkpoints' driving scores swung by hundreds without it
    ema: float = 0.998


def default_config(task: str = "driving") -> Config:
    """The whole default config (a stepwise variant of the application passes its own name)."""
    return Config(task=task, train=DrivingTrain(), data=DrivingDataConfig(),
                  model=DrivingModelConfig())
