"""`RUN/model.safetensors`: the best weights in a format any tool can read.

    from safetensors.torch import load_file
    state = load_file("RUN/model.safetensors")        # no e2e, no pickle

Written beside the checkpoints every time `best` is. What the model needs besides its
tensors (task, resolved config, data info such as class names and normalization) rides in
the file's own metadata under the key "e2e" (JSON), so the file alone rebuilds the model,
and is copied to `RUN/model.json` for people and other tools. The metadata also holds the
SHA-256 of the tensor bytes; `load_weights` checks it. The write is atomic (temp file,
fsync, rename), so a crash leaves the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

from e2e.errors import E2EError

FILENAME = "model.safetensors"
META_FILENAME = "model.json"
FORMAT = "e2e-weights/1"
# Same length as a hex SHA-256, so putting the real digest in keeps the header's size.
_PLACEHOLDER = "sha256-pending-" + "0" * 49


def _safetensors():
    try:
        import safetensors.torch
    except ImportError:
        raise E2EError("reading or writing model.safetensors needs the safetensors package: "
                       "pip install safetensors") from None
    return safetensors.torch


def save_weights(directory: str | Path, state_dict: dict[str, torch.Tensor],
                 meta: dict[str, Any]) -> Path:
    """Write DIRECTORY/model.safetensors (+ model.json) atomically; returns the weights path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory (tied embeddings): store each one whole.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    meta = {"format": FORMAT, **meta}
    blob = _safetensors().save(tensors, metadata={"e2e": json.dumps(meta),
                                                  "sha256": _PLACEHOLDER})
    header_len = struct.unpack("<Q", blob[:8])[0]
    header, data = blob[8:8 + header_len], blob[8 + header_len:]
    digest = hashlib.sha256(data).hexdigest()
    assert header.count(_PLACEHOLDER.encode()) == 1
    blob = blob[:8] + header.replace(_PLACEHOLDER.encode(), digest.encode()) + data
    path = directory / FILENAME
    _atomic_write(path, blob)
    _atomic_write(directory / META_FILENAME,
                  (json.dumps({**meta, "sha256": digest}, indent=1) + "\n").encode())
    return path


def save_best(directory: str | Path, best: dict[str, Any], config: dict[str, Any]) -> Path:
    """model.safetensors from the dict that `best.pt` holds (model, task, info, step, metrics)."""
    return save_weights(directory, best["model"], {
        "task": best["task"], "config": config, "info": best["info"],
        **{k: best[k] for k in ("step", "metrics") if k in best}})


def load_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, meta) of a model.safetensors written by `save_weights`, checksum verified."""
    path = Path(path)
    if not path.exists():
        raise E2EError(f"{path} does not exist")
    blob = path.read_bytes()
    try:
        header_len = struct.unpack("<Q", blob[:8])[0]
        header = json.loads(blob[8:8 + header_len])
        meta_raw = header["__metadata__"]
        meta = json.loads(meta_raw["e2e"])
        expected = meta_raw["sha256"]
    except (struct.error, ValueError, KeyError, TypeError):
        raise E2EError(f"{path} is not a model.safetensors written by e2e (its header lacks the "
                       "e2e metadata, or it is truncated); export it again from a run") from None
    if hashlib.sha256(blob[8 + header_len:]).hexdigest() != expected:
        raise E2EError(f"{path} is corrupt: its checksum does not match its contents "
                       "(truncated or modified). Use the run's checkpoints or retrain.")
    if meta.get("format") != FORMAT:
        raise E2EError(f"{path} has weights format {meta.get('format')!r}; this e2e reads "
                       f"{FORMAT!r}")
    return _safetensors().load(blob), meta


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; follow the umask like open()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_as_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                       ) -> dict[str, Any]:
    """A model.safetensors in the shape of a `best.pt` dict (model, info, task, config, ...)."""
    state, meta = load_weights(path)
    return {**meta, "model": {k: v.to(map_location) for k, v in state.items()}}


def exported_config(directory: str | Path) -> dict[str, Any] | None:
    """The config saved inside DIRECTORY/model.safetensors, or None if there is no such file."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        return None
    with path.open("rb") as f:  # the header only; load_weights verifies the tensors later
        try:
            header_len = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(json.loads(f.read(header_len))["__metadata__"]["e2e"])
            return meta["config"]
        except (struct.error, ValueError, KeyError, TypeError):
            raise E2EError(f"{path} is not a model.safetensors written by e2e (no e2e "
                           "metadata in its header)") from None
