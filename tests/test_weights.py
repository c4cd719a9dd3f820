"""Weights users can take elsewhere: RUN/model.safetensors (the run's best weights, written
once) and checkpoints plain torch can read."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import e2e
from e2e.engine.weights import FILENAME, META_FILENAME, load_weights, save_weights
from e2e.errors import E2EError

TINY = ["train.max_steps=6", "train.eval_every=3", "train.batch_size=64",
        "model.widths=[8,16]", "train.device=cpu", "train.precision=fp32"]


class Tied(nn.Module):
    """Input and output embeddings share one matrix, as the text model's do."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.out = nn.Linear(4, 5, bias=False)
        self.out.weight = self.embed.weight


def test_round_trip_with_shared_tensors_and_metadata(tmp_path):
    model = Tied()
    meta = {"task": "x", "config": {"task": "x"}, "info": {"classes": ["a", "b"]}, "step": 3}
    path = save_weights(tmp_path, model.state_dict(), meta)
    plain = load_file(path)  # safetensors alone, no e2e
    assert torch.equal(plain["embed.weight"], model.embed.weight)
    assert torch.equal(plain["out.weight"], model.embed.weight)
    state, back = load_weights(path)
    assert back["info"] == meta["info"] and back["step"] == 3
    assert json.loads((tmp_path / META_FILENAME).read_text())["task"] == "x"
    fresh = Tied()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.out.weight, model.out.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == [META_FILENAME, FILENAME]  # no temps


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_weights_are_named(tmp_path, damage):
    path = save_weights(tmp_path, {"w": torch.randn(64)}, {"task": "x", "config": {}, "info": {}})
    data = path.read_bytes()
    data = data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:] if damage == "flip" else data[:-9]
    path.write_bytes(data)
    with pytest.raises(E2EError, match="model.safetensors is corrupt"):
        load_weights(path)


def test_a_run_writes_its_best_weights_once_for_e2e_and_other_tools(tmp_path):
    from e2e.engine.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    results = e2e.train("vision", data="digits", out=run, overrides=TINY, quiet=True)
    assert not (run / "checkpoints" / "best.pt").exists()  # one file, one format
    exported = load_file(run / FILENAME)  # safetensors alone, no e2e
    meta = json.loads((run / META_FILENAME).read_text())
    assert meta["task"] == "vision" and meta["info"]["classes"] == [str(i) for i in range(10)]
    assert meta["step"] == results["best_step"]
    model = e2e.load(run)  # e2e reads the same file; the final test measured its weights
    assert model.checkpoint == run / FILENAME
    assert all(torch.equal(exported[k], v) for k, v in model.model.state_dict().items())
    assert model.evaluate()["test/accuracy"] == pytest.approx(results["test/accuracy"],
                                                               abs=1e-6)

    # A directory holding only model.safetensors loads and predicts like the whole run.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(run / FILENAME, alone / FILENAME)
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    full, only = e2e.load(run), e2e.load(alone)
    assert only.cfg.task == "vision" and only.info == full.info
    assert torch.equal(only.model(x.float()), full.model(x.float()))

    # A run whose checkpoints were deleted still loads its model.safetensors.
    shutil.rmtree(run / "checkpoints")
    assert e2e.load(run).checkpoint.name == FILENAME

    # A run of an older e2e: its best weights in checkpoints/best.pt alone still load.
    (run / "checkpoints").mkdir()
    save_checkpoint(load_checkpoint(run / FILENAME), run / "checkpoints" / "best.pt")
    (run / FILENAME).unlink()
    old = e2e.load(run)
    assert old.checkpoint.name == "best.pt" and torch.equal(old.model(x.float()),
                                                            full.model(x.float()))


def test_checkpoints_load_with_plain_torch_and_old_ones_still_load(tmp_path):
    import hashlib
    import io

    from e2e.engine.checkpoint import MAGIC, load_checkpoint, save_checkpoint

    state = {"model": {"w": torch.randn(4, 3)}, "info": {"classes": ["a", "b"]}, "step": 5}
    save_checkpoint(state, tmp_path / "new.pt")
    plain = torch.load(tmp_path / "new.pt", weights_only=True)  # the checksum trails the zip
    assert torch.equal(plain["model"]["w"], state["model"]["w"]) and plain["step"] == 5
    buffer = io.BytesIO()
    torch.save(state, buffer)  # the first layout: magic and checksum in front
    payload = buffer.getvalue()
    (tmp_path / "old.pt").write_bytes(MAGIC + hashlib.sha256(payload).digest() + payload)
    assert torch.equal(load_checkpoint(tmp_path / "old.pt")["model"]["w"], state["model"]["w"])
