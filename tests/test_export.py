"""`e2e export`: ONNX and TorchScript files that compute what the PyTorch model computes
(checked by onnxruntime on random and real inputs, max abs difference <= 1e-4), and
`e2e predict --backend onnx` giving the PyTorch answers from the exported file alone:
a vision classifier, the driving policy, the speech encoder, and the text encoder plus
its decoder step (greedy decoding with onnxruntime, token for token as PyTorch's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from test_text import TINY, write_copy_tsv

import e2e
from e2e.cli import main
from e2e.errors import E2EError
from e2e.export import FORMAT, ExportedPredictor, export_run, init_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "digits"
    e2e.train("vision", data="digits", out=out, quiet=True,
              overrides=["train.epochs=2", "train.batch_size=64", "model.widths=[8,16,16]"])
    return out


@pytest.fixture(scope="module")
def exported(run) -> dict:
    return export_run(run, ["onnx", "torchscript"], quiet=True)


def test_exports_match_pytorch_on_random_and_real_inputs(run, exported):
    graph = exported["graphs"]["classifier"]
    assert graph["inputs"] == {"pixels": {"dtype": "uint8", "shape": ["batch", 1, 8, 8]}}
    for fmt in ("onnx", "torchscript"):
        checks = graph[fmt]["checks"]
        assert [c["inputs"] for c in checks] == ["random", "random", "real"]
        assert all(c["max_abs_diff"] <= 1e-4 for c in checks), checks
    onnx.checker.check_model(str(run / "export/classifier.onnx"))
    assert json.loads((run / "export/manifest.json").read_text()) == exported


def test_a_tolerance_breach_fails_the_export(run, tmp_path):
    # onnxruntime's float kernels differ from PyTorch's in the last bits: 0 is too strict.
    with pytest.raises(E2EError, match=r"differs from PyTorch by .* \(tolerance 0\)"):
        export_run(run, ["onnx"], out=tmp_path / "strict", tolerance=0.0, quiet=True)


def test_predict_runs_the_exported_model(run, exported, tmp_path, capsys):
    model = e2e.load(run)
    test_x = model.task.build_data(model.cfg).test.tensors["x"]
    images = [tmp_path / f"{i}.png" for i in range(6)]
    for i, path in enumerate(images):  # real test digits, saved as the PNGs a user would pass
        Image.fromarray(test_x[i, 0].numpy()).save(path)
    reference = model.predict([str(p) for p in images], top_k=3)
    for backend in ("onnx", "torchscript"):
        assert main(["predict", str(run), *map(str, images), "--backend", backend,
                     "--json"]) == 0
        answers = json.loads(capsys.readouterr().out)
        for answer, expected in zip(answers, reference):
            assert [t["label"] for t in answer["top"]] == [label for label, _ in expected]
            assert all(abs(t["p"] - p) <= 1e-4 for t, (_, p) in zip(answer["top"], expected))


def test_missing_or_old_exports_are_refused(run, exported, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text((run / "config.yaml").read_text())
    assert main(["predict", str(fresh), "x.png", "--backend", "onnx"]) == 1
    assert f"run `e2e export {fresh}` first" in capsys.readouterr().err

    old = tmp_path / "old"
    old.mkdir()
    (old / "config.yaml").write_text((run / "config.yaml").read_text())
    (old / "export").mkdir()
    (old / "export/manifest.json").write_text(json.dumps({**exported, "format": FORMAT - 1}))
    with pytest.raises(E2EError, match=f"this e2e reads format {FORMAT}"):
        ExportedPredictor(old)


@pytest.mark.parametrize("task_name", [
    "driving", pytest.param("speech", marks=pytest.mark.slow)])  # speech: the dynamo exporter
def test_other_applications_export_and_predict(task_name, tmp_path):
    from e2e.data.audio import VOCAB

    info = {"driving": {"frame_shape": [96, 96, 3]}, "speech": {"vocab": list(VOCAB)}}
    run = init_run(task_name, info[task_name], tmp_path / task_name)
    manifest = export_run(run, ["onnx"], quiet=True)
    (graph,) = manifest["graphs"].values()
    assert graph["onnx"]["checks"] and all(c["max_abs_diff"] <= 1e-4
                                           for c in graph["onnx"]["checks"])
    torch_model, onnx_model = e2e.load(run), ExportedPredictor(run)
    if task_name == "driving":
        frames = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
        a, b = torch_model.predict(frames), onnx_model.predict(frames)
        assert all(abs(x[k] - y[k]) <= 1e-4 for x, y in zip(a, b) for k in x)
    else:
        wave = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
        assert torch_model.predict([wave], beam=False)[0]["text"] == \
            onnx_model.predict([wave], beam=False)[0]["text"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    """A tiny copy-task run (learns in seconds), so that greedy outputs are real sentences."""
    root = tmp_path_factory.mktemp("text-export")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster
    try:
        e2e.train("text", data=str(write_copy_tsv(root / "copy.tsv")), out=root / "run",
                  overrides=TINY, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return root / "run"


def test_text_encoder_and_decoder_step_decode_like_pytorch(text_run, tmp_path, capsys):
    from e2e.tasks.text.decode import generate
    from e2e.tasks.text.task import pad

    manifest = export_run(text_run, ["onnx", "torchscript"], quiet=True)
    graphs = manifest["graphs"]
    assert graphs["encoder"]["inputs"] == {"src": {"dtype": "int64",
                                                   "shape": ["batch", "source"]}}
    assert graphs["decoder_step"]["inputs"]["tokens"]["shape"] == ["batch", "prefix"]
    assert graphs["decoder_step"]["outputs"] == ["logits"]
    for graph in graphs.values():
        for fmt in ("onnx", "torchscript"):
            checks = graph[fmt]["checks"]
            assert [c["inputs"] for c in checks] == ["random", "random", "real"]
            assert all(c["max_abs_diff"] <= 1e-4 for c in checks), checks

    # Real test sources, greedy, fp32: the same token ids from every backend.
    torch_model = e2e.load(text_run)
    test = torch_model.task.build_data(torch_model.cfg, torch_model.info).test  # its BPE
    src = pad(test.src[:8])
    reference = generate(torch_model.model, src, beam=1)
    assert sum(map(len, reference)) > 2 * len(reference)  # real outputs were compared
    texts = test.sources[:8] + ["", "moon moon fish"]
    for backend in ("onnx", "torchscript"):
        exported = ExportedPredictor(text_run, backend)
        assert generate(exported.model, src, beam=1) == reference, backend
        assert exported.predict(texts, beam=1) == torch_model.predict(texts, beam=1), backend

    # The CLI, with the run's own beam search, from a file of lines
    lines = tmp_path / "in.txt"
    lines.write_text("\n".join(texts) + "\n")
    outputs = {}
    for backend in ("torch", "onnx"):
        assert main(["predict", str(text_run), str(lines), "--backend", backend]) == 0
        outputs[backend] = capsys.readouterr().out
    assert outputs["onnx"] == outputs["torch"]
    assert outputs["onnx"].splitlines() == torch_model.predict(texts)
