"""`RUN/model.safetensors`: the best weights in a format any tool can read.

    from safetensors.torch import load_file
    state = load_file("RUN/model.safetensors")        # no e2e, no pickle

The run's best weights, written once, each time `train.monitor` improves; `e2e.load`,
evaluate, export and serve read them, and so can any other tool. What the model needs besides
its tensors (task, resolved config, data info such as class names and normalization) rides in
the file's own metadata under the key "e2e" (JSON), so the file alone rebuilds the model,
and is copied to `RUN/model.json` for people and other tools. The metadata also holds a
SHA-256 of the whole file, header and metadata included (computed with the digest field
holding a placeholder of the same length); `load_weights` checks it, so edited class names
or an edited config are refused like flipped tensor bytes. (Format 1 covered the tensors
only; such files are refused.) The write is atomic (e2e.atomic), so a crash leaves the old
file or the new one, never a torn mix.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import torch

from e2e.atomic import write_atomic
from e2e.engine.checkpoint import NonFiniteWeights, nonfinite_tensors
from e2e.errors import E2EError

FILENAME = "model.safetensors"
META_FILENAME = "model.json"
FORMAT = "e2e-weights/2"
OLD_FORMATS = ("e2e-weights/1",)  # the checksum covered the tensors, not the metadata
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
    """Write DIRECTORY/model.safetensors (+ model.json) atomically; returns the weights path.
    Refuses (NonFiniteWeights) weights holding NaN or Inf: the file on disk stays good."""
    directory = Path(directory)
    path = directory / FILENAME
    bad = nonfinite_tensors(state_dict)
    if bad:
        raise NonFiniteWeights(path, bad)
    directory.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory (tied embeddings): store each one whole.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    meta = {"format": FORMAT, **meta}
    blob = _safetensors().save(tensors, metadata={"e2e": json.dumps(meta),
                                                  "sha256": _PLACEHOLDER})
    assert blob.count(_PLACEHOLDER.encode()) == 1
    digest = hashlib.sha256(blob).hexdigest()  # header (placeholder in), metadata, tensors
    write_atomic(path, blob.replace(_PLACEHOLDER.encode(), digest.encode()))
    write_atomic(directory / META_FILENAME, json.dumps({**meta, "sha256": digest}, indent=1)
                 + "\n")
    return path


def save_best(directory: str | Path, best: dict[str, Any], config: dict[str, Any]) -> Path:
    """DIRECTORY/model.safetensors from the best weights and what the trainer knows of them
    (a dict of model, task, info, step, metrics)."""
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
        if not isinstance(meta, dict) or not isinstance(expected, str):
            raise TypeError
    except (struct.error, ValueError, KeyError, TypeError):
        raise E2EError(f"{path} is not a model.safetensors written by e2e (its header lacks the "
                       "e2e metadata, or it is truncated); retrain, or load the run's last "
                       "checkpoint: e2e.api.Predictor(RUN, checkpoint='last')") from None
    if meta.get("format") in OLD_FORMATS:
        raise E2EError(f"{path} was written by an older e2e (weights format "
                       f"{meta['format']!r}), whose checksum does not cover its metadata "
                       "(class names, config); retrain it with this version of e2e")
    found = blob.count(expected.encode())
    unsigned = blob.replace(expected.encode(), _PLACEHOLDER.encode())
    if found != 1 or len(expected) != len(_PLACEHOLDER) or \
            hashlib.sha256(unsigned).hexdigest() != expected:
        raise E2EError(f"{path} is corrupt: its checksum does not match its contents, tensors "
                       "or metadata (truncated or modified); retrain, or load the run's last "
                       "checkpoint: e2e.api.Predictor(RUN, checkpoint='last')")
    if meta.get("format") != FORMAT:
        raise E2EError(f"{path} has weights format {meta.get('format')!r}; this e2e reads "
                       f"{FORMAT!r}")
    return _safetensors().load(blob), meta


def load_as_checkpoint(path: str | Path, map_location: str | torch.device = "cpu"
                       ) -> dict[str, Any]:
    """A model.safetensors as a dict like a checkpoint's (model, info, task, config, ...)."""
    state, meta = load_weights(path)
    return {**meta, "model": {k: v.to(map_location) for k, v in state.items()}}


def is_old_format(path: str | Path) -> bool:
    """True for a model.safetensors of an older e2e (format 1), read from its header alone."""
    try:
        with Path(path).open("rb") as f:
            header_len = struct.unpack("<Q", f.read(8))[0]
            meta = json.loads(json.loads(f.read(header_len))["__metadata__"]["e2e"])
        return meta.get("format") in OLD_FORMATS
    except (OSError, struct.error, ValueError, KeyError, TypeError, AttributeError):
        return False


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
