import os

import pytest
import torch

from e2e.engine.checkpoint import CorruptCheckpoint, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    state = {"w": torch.randn(3, 4), "step": 7, "nested": {"lr": 0.1, "name": "x"}}
    save_checkpoint(state, tmp_path / "a.pt")
    back = load_checkpoint(tmp_path / "a.pt")
    assert torch.equal(back["w"], state["w"]) and back["step"] == 7 and back["nested"]["lr"] == 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_corrupt_checkpoint_is_named(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint({"w": torch.randn(100)}, path)
    data = path.read_bytes()
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip":
        data = data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:]
    elif damage == "empty":
        data = b""
    else:
        data = b"not a checkpoint at all" * 10
    path.write_bytes(data)
    with pytest.raises(CorruptCheckpoint) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_failed_write_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"step": 1}, path)
    good = path.read_bytes()

    def crash(fd):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 2}, path)
    assert path.read_bytes() == good
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
