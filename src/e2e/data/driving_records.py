"""Driving recordings: camera frames and the actions that labelled them, one file per episode.

A recording folder holds `episode-SEED.npz` files (numpy, zlib-compressed: `frames` uint8
T x 96 x 96 x 3 exactly as the simulator rendered them, HUD included; `actions` float32
T x 3 = steer, gas, brake) and `metadata.json` (who drove, seeds, scores, frame shape).
Reading checks every file and names the one that is truncated or has the wrong shape.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from e2e.errors import E2EError

FRAME_SHAPE = (96, 96, 3)


def episode_path(folder: Path, seed: int, tag: str = "episode", look: str = "usual") -> Path:
    """FOLDER/episode-000012.npz, or episode-000012-random.npz for a track in another look."""
    return Path(folder) / (f"{tag}-{seed:06d}.npz" if look == "usual" else
                           f"{tag}-{seed:06d}-{look}.npz")


def write_episode(path: Path, frames: np.ndarray, actions: np.ndarray, **meta) -> None:
    """Write atomically (temp file, then rename) so an interrupted recording leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, frames=np.asarray(frames, dtype=np.uint8),
                        actions=np.asarray(actions, dtype=np.float32),
                        meta=np.array(json.dumps(meta)))
    tmp.replace(path)


def read_episode(path: Path, frame_shape: tuple[int, ...] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(frames T x H x W x 3 uint8, actions T x 3 float32), checked; `frame_shape` if given."""
    try:
        with np.load(path) as z:
            frames, actions = z["frames"], z["actions"]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise E2EError(f"{path} is not a readable driving recording ({type(e).__name__}: {e}); "
                       "it may be truncated. Delete it and record it again with "
                       "`e2e data driving`") from None
    shape = tuple(frames.shape[1:])
    if frames.dtype != np.uint8 or len(shape) != 3 or shape[2] != 3 or \
            (frame_shape is not None and shape != tuple(frame_shape)):
        want = tuple(frame_shape) if frame_shape is not None else "H x W x 3"
        raise E2EError(f"{path}: frames have shape {shape} ({frames.dtype}); expected {want} "
                       "uint8 RGB frames like the other recordings (CarRacing renders "
                       f"{FRAME_SHAPE})")
    if actions.shape != (len(frames), 3):
        raise E2EError(f"{path}: actions have shape {tuple(actions.shape)}; expected "
                       f"({len(frames)}, 3) = one (steer, gas, brake) per frame")
    return frames, actions


def read_episode_actions(path: Path) -> np.ndarray:
    """Only the actions (T x 3) of a recording: cheap, the frames stay compressed."""
    try:
        with np.load(path) as z:
            actions = z["actions"]
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise E2EError(f"{path} is not a readable driving recording ({type(e).__name__}: {e}); "
                       "it may be truncated. Delete it and record it again with "
                       "`e2e data driving`") from None
    if actions.ndim != 2 or actions.shape[1] != 3:
        raise E2EError(f"{path}: actions have shape {tuple(actions.shape)}; expected (T, 3)")
    return actions


def recording_files(sources: list[str | Path]) -> list[Path]:
    """Episode files from folders and/or single .npz files, in a stable order."""
    files: list[Path] = []
    for src in sources:
        p = Path(src).expanduser()
        if p.is_dir():
            found = sorted(p.glob("*.npz"))
            found = [f for f in found if not f.name.endswith(".tmp.npz")]
            if not found:
                raise E2EError(f"{p} holds no driving recordings (*.npz); make some with "
                               f"`e2e data driving --out {p} --episodes 20 --seeds 0-19`")
            files += found
        elif p.suffix == ".npz" and p.exists():
            files.append(p)
        else:
            raise E2EError(f"driving recording '{src}' does not exist; make one with "
                           "`e2e data driving --out DIR --episodes 20 --seeds 0-19`")
    return files


def write_metadata(folder: Path, meta: dict) -> None:
    path = Path(folder) / "metadata.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    episodes = {**old.get("episodes", {}), **meta.pop("episodes", {})}
    path.write_text(json.dumps({**old, **meta, "episodes": episodes}, indent=1))
