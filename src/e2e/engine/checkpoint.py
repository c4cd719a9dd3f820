"""Atomic, checksummed checkpoints.

File layout: an 8-byte magic, the SHA-256 of the payload (32 bytes), then the payload
(a `torch.save` of a dict). Writes go to a temporary file in the same directory, are
fsync'ed, then renamed over the target, so a crash at any instant leaves either the old
file or the new one, never a torn mix. Loads verify the checksum before unpickling.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2e.errors import E2EError

MAGIC = b"E2ECKPT1"


class CorruptCheckpoint(E2EError):
    pass


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC)
            f.write(hashlib.sha256(payload).digest())
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise E2EError(f"checkpoint {path} does not exist")
    data = path.read_bytes()
    if len(data) < len(MAGIC) + 32 or data[: len(MAGIC)] != MAGIC:
        raise CorruptCheckpoint(f"{path} is not an e2e checkpoint (bad header, {len(data)} bytes); "
                                "it may be truncated. Use another checkpoint or retrain.")
    digest, payload = data[len(MAGIC): len(MAGIC) + 32], data[len(MAGIC) + 32:]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptCheckpoint(f"{path} is corrupt: its checksum does not match its contents "
                                "(truncated or modified). Use another checkpoint or retrain.")
    return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)


def rng_state() -> dict[str, Any]:
    """Every random generator the training loop touches, in a weights_only-safe form."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": _to_lists(random.getstate()),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_to_tuples(state["python"]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
