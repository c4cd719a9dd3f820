"""Export a trained run to ONNX (and TorchScript), checked against PyTorch, and run it back.

    e2e export RUN [--format onnx torchscript]   ->  RUN/export/NAME.onnx, NAME.ts, manifest.json
    e2e predict RUN INPUT... --backend onnx      ->  the same answers, computed by onnxruntime

An application's serving side describes its graphs with the hook
`Serving.export_specs(model, cfg, info) -> {name: ExportSpec}` (e2e.tasks.base): the graphs
that make up its model (one for a classifier; an encoder and a decoder step for a seq2seq
model), each with named example inputs. Every exported graph
is run by onnxruntime (or torch.jit.load) on random inputs and on a batch of the run's real
test data and compared with the PyTorch module; a difference above the tolerance (max abs
1e-4 by default) fails the export. The manifest records each check, the task and the data
info, so that `e2e predict --backend onnx` needs no PyTorch weights.

For prediction, the hook `Serving.from_exported(modules, cfg, info)` assembles the graphs into
what `Serving.predict` takes (by default: the one graph, as a drop-in `nn.Module`).

The graphs of the applications: vision `classifier`; speech `encoder` (waveform -> CTC
logits; decoding stays in Python); driving `policy`; text `encoder`, `memory_kv`,
`decoder_cached` (one step with a key/value cache) and the cache-free `decoder_step`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from e2e.atomic import write_atomic
from e2e.errors import E2EError
from e2e.tasks.base import ExportSpec

FORMAT = 2  # manifest format; bump when the layout changes, older exports are refused
# (2: the text decoder step reads source ids, not a mask; cached decoder graphs added)
FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".ts"}
OPSET = 17  # for the TorchScript-based exporter


def _outputs(result: Any) -> list[torch.Tensor]:
    return [result] if torch.is_tensor(result) else list(result)


def max_abs_diff(a: list[torch.Tensor], b: list[np.ndarray | torch.Tensor]) -> float:
    if len(a) != len(b):
        raise E2EError(f"the exported graph returns {len(b)} outputs, PyTorch {len(a)}")
    return max(float((x.float() - (y if torch.is_tensor(y) else torch.from_numpy(np.array(y)))
                      .float()).abs().max()) for x, y in zip(a, b))


# ---- export ----

def export_run(run: str | Path, formats: list[str] | tuple[str, ...] = ("onnx",),
               out: str | Path | None = None, tolerance: float = 1e-4,
               dynamo: bool = False, quiet: bool = False) -> dict:
    """Export RUN's best weights; returns (and writes) the manifest with every check."""
    from e2e.api import Predictor

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise E2EError(f"unknown export format(s) {unknown}; choose from {', '.join(FORMATS)}")
    pred = Predictor(run)
    task, model, info = pred.task, pred.model, pred.info
    out = Path(out) if out else pred.run.path / "export"
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *_: None) if quiet else print
    specs: dict[str, ExportSpec] = pred.serving.export_specs(model, pred.cfg, info)
    real, real_note = _real_batch(pred)

    manifest: dict[str, Any] = {"format": FORMAT, "task": task.name,
                                "run": str(pred.run.path), "checkpoint": str(pred.checkpoint),
                                "info": info.to_dict(), "tolerance": tolerance, "graphs": {}}
    if real is None:
        manifest["real_inputs"] = f"skipped: {real_note}"
        say(f"note: real-input checks skipped: {real_note}")
    for name, spec in specs.items():
        spec.module.eval()
        entry: dict[str, Any] = {
            "inputs": {k: {"dtype": str(v.dtype).removeprefix("torch."),
                           "shape": [spec.dynamic.get(k, {}).get(i, n)
                                     for i, n in enumerate(v.shape)]}
                       for k, v in spec.inputs.items()},
            "outputs": spec.outputs}
        cases = _check_inputs(spec, real)
        for fmt in formats:
            path = out / f"{name}{SUFFIX[fmt]}"
            try:
                run_graph = _export_onnx(spec, path, dynamo or spec.dynamo) if fmt == "onnx" else \
                    _export_torchscript(spec, path)
            except E2EError:
                raise
            except Exception as e:  # noqa: BLE001 - TorchScript is "where it works"
                if fmt == "onnx":
                    raise E2EError(f"ONNX export of {task.name}/{name} failed: {e}") from e
                entry[fmt] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
                say(f"{name}: torchscript export failed ({entry[fmt]['error']}); skipped")
                continue
            checks = []
            for label, inputs in cases:
                with torch.no_grad():
                    expected = _outputs(spec.module(*inputs.values()))
                diff = max_abs_diff(expected, run_graph(inputs))
                checks.append({"inputs": label, "batch": int(next(iter(inputs.values())).shape[0]),
                               "max_abs_diff": diff})
                if not diff <= tolerance:
                    raise E2EError(f"{path} differs from PyTorch by {diff:.3g} on {label} inputs "
                                   f"(tolerance {tolerance:g}); the export is not faithful")
            entry[fmt] = {"file": path.name, "checks": checks}
            say(f"{path}: " + ", ".join(f"{c['inputs']} max|diff| {c['max_abs_diff']:.2e}"
                                        for c in checks) + f" (<= {tolerance:g})")
        manifest["graphs"][name] = entry
    write_atomic(out / "manifest.json", json.dumps(manifest, indent=1))  # predict reads it
    return manifest


def _real_batch(pred) -> tuple[dict | None, str]:
    """8 real examples: from the test split, else the first split that holds examples
    (a driving run's test split is tracks to drive; its frames are in train)."""
    from torch.utils.data import Dataset

    from e2e.engine.batching import TensorData, eval_batches

    try:
        splits = pred.task.build_data(pred.cfg, pred.info)
    except E2EError as e:  # DatasetMissing, or a corpus not built yet: random checks only
        return None, str(e).splitlines()[0]
    for split in (splits.test, splits.val, splits.train):
        if isinstance(split, (TensorData, Dataset)) and len(split):
            return next(iter(eval_batches(split, 8, collate=pred.task.collate))), ""
    return None, "no split of this run's data holds examples"


def _check_inputs(spec: ExportSpec, real: dict | None) -> list[tuple[str, dict]]:
    g = torch.Generator().manual_seed(0)
    cases = [("random", spec.random_inputs(g)), ("random", spec.random_inputs(g))]
    if real is not None and spec.from_batch is not None:
        cases.append(("real", spec.from_batch(real)))
    return cases


def _export_onnx(spec: ExportSpec, path: Path, dynamo: bool) -> Callable:
    import onnxruntime as ort

    args = tuple(spec.inputs.values())
    dynamic = {k: v for k, v in spec.dynamic.items()}
    with warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated but exact, fast and needs no
        # onnxscript; `--dynamo` picks the torch.export-based one.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(spec.module, args, str(path), input_names=list(spec.inputs),
                          output_names=spec.outputs, dynamic_axes=dynamic,
                          opset_version=None if dynamo else OPSET,  # dynamo: its own (18+)
                          dynamo=dynamo, external_data=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda inputs: session.run(None, _to_numpy(inputs))


def _export_torchscript(spec: ExportSpec, path: Path) -> Callable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(spec.module, tuple(spec.inputs.values()))
        torch.jit.save(traced, str(path))
        loaded = torch.jit.load(str(path))

    def run(inputs):
        with torch.no_grad():
            return _outputs(loaded(*inputs.values()))
    return run


def _to_numpy(inputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in inputs.items()}


def init_run(task_name: str, info: dict | Any, out: str | Path) -> Path:
    """A run directory holding a freshly initialised model of the default config: export
    and latency need a model of the right shape, not a trained one."""
    from e2e.engine.weights import save_weights
    from e2e.tasks import default_config, get_task

    out = Path(out)
    cfg, task = default_config(task_name), get_task(task_name)
    (out / "checkpoints").mkdir(parents=True)
    cfg.save(out / "config.yaml")
    info = task.Info.from_dict(info)  # the task's Info, or its dict form
    model = task.build_model(cfg, info)
    save_weights(out, model.state_dict(), {"task": task_name, "config": cfg.to_dict(),
                                           "info": info.to_dict()})
    return out


# ---- running an export ----

class OnnxModule(nn.Module):
    """An exported graph behind the `nn.Module` call that the task's `predict` makes."""

    def __init__(self, path: Path, input_names: list[str]):
        super().__init__()
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = input_names
        # Tasks find their device from the parameters; this anchor says "cpu".
        self.anchor = nn.Parameter(torch.empty(0), requires_grad=False)

    def forward(self, *args: torch.Tensor):
        outs = self.session.run(None, _to_numpy(dict(zip(self.input_names, args))))
        tensors = [torch.from_numpy(o) for o in outs]
        return tensors[0] if len(tensors) == 1 else tuple(tensors)


def read_manifest(path: str | Path) -> tuple[Path, dict]:
    """The export folder and its manifest, from RUN, RUN/export or the folder itself."""
    path = Path(path)
    for folder in (path / "export", path):
        if (folder / "manifest.json").exists():
            break
    else:
        raise E2EError(f"no exported model in {path} (no manifest.json); "
                       f"run `e2e export {path}` first")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except json.JSONDecodeError as e:
        raise E2EError(f"{folder / 'manifest.json'} is not valid JSON ({e}); "
                       "export again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise E2EError(f"{folder / 'manifest.json'} is an export in format "
                       f"{manifest.get('format') if isinstance(manifest, dict) else '?'}, "
                       f"this e2e reads format {FORMAT}; run `e2e export RUN` again")
    return folder, manifest


def graph_file(folder: Path, name: Any) -> Path:
    """FOLDER/NAME for a file name from a manifest, refused unless it is a plain file name
    inside the export folder: a manifest must not point at `../x` or `/etc/x`."""
    path = folder / str(name)
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..") or \
            path.resolve().parent != folder.resolve():
        raise E2EError(f"{folder / 'manifest.json'} names the graph file {name!r}, which is "
                       "not a file name inside the export folder; export again")
    return path


class ExportedPredictor:
    """`Predictor.predict` with an exported model (onnxruntime or TorchScript), no weights."""

    def __init__(self, run: str | Path, backend: str = "onnx"):
        from e2e.engine.run import RunDir
        from e2e.tasks import TASKS, get_task, load_config

        if backend not in FORMATS:
            raise E2EError(f"unknown backend '{backend}'; choose torch, {', '.join(FORMATS)}")
        folder, manifest = read_manifest(run)
        self.run = RunDir(Path(run) if (Path(run) / "config.yaml").exists()
                          else Path(manifest["run"]))
        self.run.require(TASKS)
        self.cfg = load_config(self.run.config)
        if manifest["task"] != self.cfg.task:
            raise E2EError(f"{folder} holds a '{manifest['task']}' export but "
                           f"{self.run.config} is a '{self.cfg.task}' run")
        self.task = get_task(manifest["task"])
        self.serving = self.task.Serving()
        self.info = self.task.Info.from_dict(manifest["info"])
        modules: dict[str, nn.Module] = {}
        for name, graph in manifest["graphs"].items():
            entry = graph.get(backend) or {}
            if "file" not in entry:
                raise E2EError(f"{folder} has no {backend} export of '{name}'"
                               + (f" ({entry['error']})" if "error" in entry else "")
                               + f"; run `e2e export {run} --format {backend}`")
            path = graph_file(folder, entry["file"])
            if backend == "onnx":
                modules[name] = OnnxModule(path, list(graph["inputs"]))
            else:
                with warnings.catch_warnings():  # deprecated, still the way to load .ts files
                    warnings.simplefilter("ignore", DeprecationWarning)
                    modules[name] = torch.jit.load(str(path))
        self.model = self.serving.from_exported(modules, self.cfg, self.info)
        self.model.eval()

    def predict(self, raw: Any, **kwargs) -> Any:
        with torch.no_grad():
            return self.serving.predict(self.model, raw, self.cfg, self.info, **kwargs)
