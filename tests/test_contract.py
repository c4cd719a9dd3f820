"""The task contract and the engine, held to account.

1. The engine is a plain training loop: k steps of `fit` give the same weights as ten lines
   of PyTorch with the same optimizer, schedule and batches.
2. A new application is one class (plus its serving class) and one line: a task defined
   here trains, saves, reloads and predicts through the public API.
3. Hooks are stateless: no task or serving object gains attributes while it trains or
   predicts; each application's `info` comes back equal from JSON (checkpoints hold it so).
4. Nothing probes a task: no `hasattr(task...)`, no branch on an application's name outside
   its own folder, and the layers only import downwards.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import MLP, MLPModel, blobs_config, heavy_imports
from torch import nn

import e2e
from e2e.config import TrainConfig
from e2e.engine import fit
from e2e.engine.batching import TensorData
from e2e.engine.checkpoint import load_checkpoint
from e2e.engine.optim import lr_at
from e2e.tasks import TASKS
from e2e.tasks.base import Info, Serving, Splits, Task

SRC = Path(__file__).resolve().parent.parent / "src" / "e2e"


@pytest.mark.parametrize("optimizer,schedule", [("adamw", "onecycle"), ("sgd", "cosine")])
def test_fit_matches_a_plain_pytorch_loop(blobs, tmp_path, optimizer, schedule):
    cfg = blobs_config(max_steps=23, batch_size=32, optimizer=optimizer, schedule=schedule,
                       weight_decay=0.01, eval_every=10)
    fit(blobs, cfg, tmp_path / "run", quiet=True)
    engine = load_checkpoint(tmp_path / "run/checkpoints/last.pt")["model"]

    # The reference: the documented recipe, written out. Same seed before the model, the same
    # per-epoch shuffle, decay on matrices only, the LR of each step set before it.
    tc, data = cfg.train, blobs.build_data(cfg).train
    torch.manual_seed(tc.seed)
    model = MLP(MLPModel())
    groups = [{"params": [p for p in model.parameters() if p.dim() >= 2],
               "weight_decay": tc.weight_decay},
              {"params": [p for p in model.parameters() if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=tc.lr, betas=(tc.momentum, 0.999)) \
        if optimizer == "adamw" else torch.optim.SGD(groups, lr=tc.lr, momentum=tc.momentum,
                                                     nesterov=True)
    per_epoch = len(data) // tc.batch_size
    for step in range(tc.max_steps):
        epoch, i = divmod(step, per_epoch)
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(
            tc.seed * 1_000_003 + epoch))
        idx = order[i * tc.batch_size:(i + 1) * tc.batch_size]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, tc.max_steps, tc)
        loss = F.cross_entropy(model(data.tensors["x"][idx]), data.tensors["y"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()

    reference = model.state_dict()
    assert engine.keys() == reference.keys()
    for name in reference:
        diff = (engine[name] - reference[name]).abs().max().item()
        assert diff <= 1e-6, f"{name} differs from the plain loop by {diff:g}"
    # and training did move the weights (the comparison is not between two initialisations)
    torch.manual_seed(tc.seed)
    initial = MLP(MLPModel()).state_dict()
    assert max((initial[k] - reference[k]).abs().max().item() for k in initial) > 1e-2


# ---- a new application, defined here ----

@dataclass
class MajorityDataConfig:
    bits: int = 7


@dataclass
class MajorityModelConfig:
    hidden: int = 32


@dataclass(kw_only=True)
class MajorityInfo(Info):
    bits: int


class MajorityServing(Serving):
    def predict(self, model, raw, cfg, info, **options):
        return ["ones" if k else "zeros" for k in model(torch.tensor(raw).float()).argmax(1)]


class MajorityTask(Task):
    """Are most bits of a bit string ones? Raw input: the bits as a list."""

    name = "majority-test"
    DataConfig, ModelConfig = MajorityDataConfig, MajorityModelConfig
    Info, Serving = MajorityInfo, MajorityServing
    metrics = ("accuracy",)

    def default_train(self) -> TrainConfig:
        return TrainConfig(epochs=40, batch_size=16, lr=1e-2, monitor="val/accuracy",
                           device="cpu", precision="fp32", log_every=10)

    def build_data(self, cfg, info=None):
        n = cfg.data.bits
        x = ((torch.arange(2 ** n)[:, None] >> torch.arange(n)) & 1).float()
        data = TensorData(x=x, y=(x.sum(1) > n / 2).long())
        return Splits(data, data, data, MajorityInfo(bits=n))  # all strings: the function

    def build_model(self, cfg, info):
        return nn.Sequential(nn.Linear(info.bits, cfg.model.hidden), nn.ReLU(),
                             nn.Linear(cfg.model.hidden, 2))

    def loss(self, model, batch, cfg, info):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    def evaluate(self, model, split, cfg, info):
        x, y = split.tensors["x"], split.tensors["y"]
        return {"accuracy": float((model(x).argmax(1) == y).float().mean())}


def test_a_new_application_is_one_class_and_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(TASKS, "majority-test", MajorityTask)  # e2e.register, undone after
    results = e2e.train("majority-test", out=tmp_path / "run", quiet=True)
    assert results["test/accuracy"] >= 0.95, results
    model = e2e.load(tmp_path / "run")
    assert model.predict([[1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 1, 1, 1]]) \
        == ["zeros", "ones", "ones"]
    assert e2e.load_config(tmp_path / "run").data.bits == 7
    assert model.info == MajorityInfo(bits=7)  # typed, back from the checkpoint's JSON form
    # hooks it did not write have working defaults
    assert model.serving.demo_input is None and model.task.signature(model.cfg) == ""
    assert model.task.report(None, None, None, None, tmp_path, {}) == ""
    with pytest.raises(e2e.E2EError, match="does not support export"):
        model.serving.export_specs(model.model, model.cfg, model.info)


# ---- stateless hooks, typed info ----

def test_no_task_or_serving_object_gains_state_while_it_trains_or_predicts(tmp_path):
    from e2e.tasks import get_task, load_config

    task = get_task("vision")
    serving = task.Serving()
    before = (dict(vars(task)), dict(vars(serving)))
    cfg = load_config(None, "vision", ["data.source=digits", "model.widths=[8,16]",
                                       "train.max_steps=4", "train.eval_every=2",
                                       "train.batch_size=32", "train.device=cpu",
                                       "train.precision=fp32"])
    task.train(cfg, tmp_path / "run", quiet=True)
    model = e2e.load(tmp_path / "run")
    image = model.task.build_data(model.cfg).test.tensors["x"][0]
    assert serving.predict(model.model, [image], model.cfg, model.info)[0][0][0] in \
        model.info.classes
    task.evaluate(model.model, task.build_data(model.cfg).val, model.cfg, model.info)
    assert (dict(vars(task)), dict(vars(serving))) == before


def _assignments_to_self(cls_node: ast.ClassDef) -> list[str]:
    return [f"{cls_node.name}.{f.name}: self.{t.attr}"
            for f in cls_node.body if isinstance(f, ast.FunctionDef)
            for node in ast.walk(f) if isinstance(node, (ast.Assign, ast.AugAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
            and t.value.id == "self"]


def test_no_application_hook_writes_to_its_object():
    """Every Task and Serving class of the package (all applications, and the stepwise ones)
    keeps no state: none of its methods assigns to `self.<attribute>`."""
    found, writes = 0, []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(b, ast.Name) and b.id.endswith(("Task", "Serving"))
                    for b in node.bases):
                found += 1
                writes += [w for w in _assignments_to_self(node)
                           if not w.startswith("LayerwiseVisionTask.__init__")]  # its config
    assert found >= 10, found  # the four applications' task and serving classes, at least
    assert writes == [], writes


def _example(hint) -> object:
    """A value of a type hint, not its default, of the JSON kinds an Info may hold."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return [_example(args[0]), _example(args[0])]
    if origin is dict:
        return {"k": {"a": 1}}
    return {str: "x y", int: 3, float: 0.25, bool: True}.get(hint, "any")


@pytest.mark.parametrize("app", sorted(TASKS))
def test_info_comes_back_equal_from_json(app):
    from e2e.tasks import get_task

    cls = get_task(app).Info
    hints = typing.get_type_hints(cls)
    info = cls(**{f.name: _example(hints[f.name]) for f in dataclasses.fields(cls)})
    assert cls.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    # a run saved before info was typed holds the same keys as a plain dict, plus keys this
    # version no longer has
    assert cls.from_dict({**info.to_dict(), "gone": 1}) == info


# ---- no probing, no name branches, layers import downwards ----

def test_nothing_probes_a_task_or_branches_on_its_name():
    probe = re.compile(r"(hasattr|getattr)\((self\.)?(task|model\.task|pred\.task)\b")
    name_branch = re.compile(r"(task|\.name)\s*==\s*[\"'](vision|speech|text|driving)[\"']")
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert not probe.search(text), f"{path} probes a task with hasattr/getattr"
        if "tasks" not in path.relative_to(SRC).parts:
            assert not name_branch.search(text), f"{path} branches on an application's name"


def test_the_import_graph_points_only_downwards():
    script = SRC.parent.parent / "bench" / "import_graph.py"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True).stdout
    assert "arrows pointing up: 0" in out, out


def test_help_and_config_answer_without_loading_torch():
    loaded = heavy_imports("import e2e.cli; e2e.cli.build_parser(); "
                           "from e2e.tasks import TASKS, default_config; "
                           "[default_config(app).to_yaml() for app in TASKS]")
    assert loaded == [], f"e2e --help / e2e config import {loaded}"


def test_an_applications_config_module_agrees_with_its_task():
    from e2e.tasks import default_config, get_task

    for app in TASKS:
        assert default_config(app).to_yaml() == get_task(app).default_config().to_yaml(), app
