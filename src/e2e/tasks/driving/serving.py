"""A trained driving network answering: camera frames in, (steer, gas, brake) out; its
exported graph; the demo page (pick a test track, watch the network drive it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2e.config import Config
from e2e.errors import E2EError
from e2e.tasks.base import ExportSpec, Serving
from e2e.tasks.driving.info import DrivingInfo
from e2e.tasks.driving.sim import parse_seeds


class DrivingServing(Serving):
    demo_input = "track"  # the demo page: pick a test track, watch the network drive

    def predict(self, model: nn.Module, raw: Any, cfg: Config, info: DrivingInfo,
                **_options) -> list[dict]:
        """Frames (H x W x 3 uint8 arrays, or PNG/JPEG/.npy files) -> [{steer, gas, brake}, ...].

        Options meant for classifiers (`e2e predict --top-k`) do not apply and are ignored."""
        items = raw if isinstance(raw, (list, tuple)) or (
            isinstance(raw, np.ndarray) and raw.ndim == 4) else [raw]
        want = tuple(info.frame_shape)
        frames = []
        for i, item in enumerate(items):
            name = str(item) if isinstance(item, (str, Path)) else f"input {i}"
            f = read_frame(item) if isinstance(item, (str, Path)) else np.asarray(item)
            if f.shape != want:
                raise E2EError(f"{name} is a {f.shape} frame; this model was trained on {want} "
                               f"frames (H x W x RGB, as CarRacing renders them, HUD included)")
            frames.append(f.astype(np.uint8))
        # a still frame: every stacked slot shows it (as at the first step of a drive)
        x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).repeat(1, info.frames, 1, 1)
        out = model(x.to(next(model.parameters()).device)).float().cpu().numpy()
        return [{"steer": float(a[0]), "gas": float(a[1]), "brake": float(a[2])} for a in out]

    def format_prediction(self, raw: Any, answer: dict[str, float]) -> str:
        return (f"{raw}: steer {answer['steer']:+.3f}  gas {answer['gas']:.3f}  "
                f"brake {answer['brake']:.3f}")

    def prediction_json(self, raw: Any, answer: dict[str, float]) -> Any:
        return {"input": str(raw), **answer}

    def export_specs(self, model: nn.Module, cfg: Config, info: DrivingInfo) -> dict:
        h, w, _ = info.frame_shape
        frames = torch.zeros(2, 3 * info.frames, h, w, dtype=torch.uint8)
        return {"policy": ExportSpec(model, {"frames": frames}, ["actions"],
                                     {"frames": {0: "batch"}, "actions": {0: "batch"}},
                                     from_batch=lambda batch: {"frames": batch["x"]})}

    def demo_page(self, cfg: Config, info: DrivingInfo) -> dict:
        return {"tracks": parse_seeds(cfg.data.test_seeds)}

    def demo_answer(self, model: nn.Module, raw: Any, cfg: Config, info: DrivingInfo) -> dict:
        """A track seed -> a GIF of the network driving its first 300 steps, and the score."""
        import base64
        import tempfile

        from e2e.tasks.driving.closed_loop import NetPolicy, run_episode, save_gif

        try:
            seed = int(raw)
        except ValueError:
            raise E2EError(f"a track is a seed number, got '{raw}'") from None
        episode, shown = run_episode(NetPolicy(model, info), seed, max_steps=300, video=True)
        with tempfile.TemporaryDirectory() as tmp:
            save_gif(shown, Path(tmp) / "drive.gif", every=4)
            gif = base64.b64encode((Path(tmp) / "drive.gif").read_bytes()).decode()
        return {"gif": f"data:image/gif;base64,{gif}",
                "note": f"track {seed}: score {episode.score:.0f} after {episode.steps} steps, "
                        f"{episode.tiles}/{episode.track_tiles} tiles"}


def read_frame(path: str | Path) -> np.ndarray:
    """A camera frame from an image file (PNG, JPEG, ...) or a .npy array, as H x W x 3."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.suffix == ".npy":
            frame = np.load(path, allow_pickle=False)
            if frame.dtype != np.uint8 and not (frame.min() >= 0 and frame.max() <= 255):
                raise E2EError(f"{path}: pixel values must lie in 0..255, got "
                               f"{frame.min()}..{frame.max()}")
            return frame
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise E2EError(f"{path} is not a readable frame ({type(e).__name__}: {e}); give a "
                       "PNG/JPEG image or a .npy array of a 96x96 RGB CarRacing frame") from None
