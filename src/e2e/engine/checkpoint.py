"""Atomic, checksummed checkpoints.

File layout: the payload (a `torch.save` of a dict, a zip archive), then a 40-byte trailer:
an 8-byte magic and the SHA-256 of the payload. Zip readers find an archive from its end
and skip trailing bytes, so `torch.load(path, weights_only=True)` reads the file without e2e.
(Files of the first layout, magic and checksum in front, still load.) Writes go to a
temporary file in the same directory, are fsync'ed, then renamed over the target, so a crash
at any instant leaves either the old file or the new one, never a torn mix. Loads verify
the checksum before unpickling.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e2e.atomic import write_atomic
from e2e.errors import E2EError

MAGIC = b"E2ECKPT1"  # first layout: header in front
TRAILER = b"E2ECKPT2"  # this layout: trailer at the end


class CorruptCheckpoint(E2EError):
    pass


class NonFiniteWeights(E2EError):
    """A state with NaN or Inf in a tensor: never written, so a checkpoint on disk is good."""

    def __init__(self, path: Path, names: list[str]):
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        super().__init__(f"refusing to write {path}: {len(names)} tensor(s) hold NaN or Inf "
                         f"({shown})")
        self.names = names


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Names (dotted paths) of the floating-point tensors in `state` holding NaN or Inf."""
    if isinstance(state, torch.Tensor):
        ok = not (state.is_floating_point() or state.is_complex()) or bool(
            torch.isfinite(state).all())
        return [] if ok else [prefix or "tensor"]
    items = state.items() if isinstance(state, dict) else enumerate(state) \
        if isinstance(state, (list, tuple)) else ()
    return [name for k, v in items
            for name in nonfinite_tensors(v, f"{prefix}.{k}" if prefix else str(k))]


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` atomically; refuse (NonFiniteWeights) if any tensor is NaN or Inf."""
    path = Path(path)
    bad = nonfinite_tensors(state)
    if bad:
        raise NonFiniteWeights(path, bad)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    write_atomic(path, payload + TRAILER + hashlib.sha256(payload).digest())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The dict a checkpoint holds, its checksum verified (or a model.safetensors, as one)."""
    path = Path(path)
    if not path.exists():
        raise E2EError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":  # the best weights (e2e.engine.weights), as a dict
        from e2e.engine.weights import load_as_checkpoint

        return load_as_checkpoint(path, map_location)
    data = path.read_bytes()
    if len(data) >= len(TRAILER) + 32 and data[-40:-32] == TRAILER:
        digest, payload = data[-32:], data[:-40]
    elif len(data) >= len(MAGIC) + 32 and data[: len(MAGIC)] == MAGIC:
        digest, payload = data[len(MAGIC): len(MAGIC) + 32], data[len(MAGIC) + 32:]
    else:
        raise CorruptCheckpoint(f"{path} is not an e2e checkpoint (bad header, {len(data)} bytes); "
                                "it may be truncated. Use another checkpoint or retrain.")
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptCheckpoint(f"{path} is corrupt: its checksum does not match its contents "
                                "(truncated or modified). Use another checkpoint or retrain.")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, ValueError) as e:
        lines = [s.strip() for s in str(e).splitlines() if s.strip()] or [type(e).__name__]
        # torch's message is a page; its "Unsupported global: ..." line says what was refused
        reason = next((s.split(" was not", 1)[0].removeprefix("WeightsUnpickler error: ")
                       for s in lines if "Unsupported global" in s), lines[0])
        raise E2EError(f"{path} holds objects that torch.load(weights_only=True) refuses to "
                       f"load ({reason}); it was written by another program or an incompatible "
                       "version. Retrain, or use another checkpoint.") from None


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



def load_model_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path,
                     ) -> None:
    """`model.load_state_dict(state)`, or one line naming what does not fit (torch's message
    is a page): weights saved from another architecture, e.g. after a `--set model.*`."""
    own = model.state_dict()
    shapes = [f"{k} {list(v.shape)} in the file vs {list(own[k].shape)} in the model"
              for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if not (shapes or missing or unexpected):
        model.load_state_dict(state)
        return
    parts = [f"{len(shapes)} tensor(s) differ in shape (first: {shapes[0]})"] if shapes else []
    parts += [f"{len(missing)} missing (first: {missing[0]})"] if missing else []
    parts += [f"{len(unexpected)} unexpected (first: {unexpected[0]})"] if unexpected else []
    raise E2EError(f"the weights in {source} do not fit the model the config builds: "
                   f"{'; '.join(parts)}. The model.* settings (config.yaml, --set) must be "
                   "those the weights were trained with: drop the --set model.* that changed "
                   "them")
