"""Dataclass configs: YAML in and out, and `--set section.key=value` overrides.

A run's config has four sections: `train` (the engine, the same for every task) and
`data` / `model`, whose dataclasses belong to the task named by `task`. Every value is
type-checked; an unknown key or a wrong type is an E2EError that lists the valid keys (with
the task's own defaults) and suggests the closest key.

Every numeric value is range-checked too, before anything runs. A config dataclass declares
its ranges in a class-level table in interval notation, next to its fields:

    RANGES: ClassVar[dict[str, str]] = {"epochs": "[1, inf)", "dropout": "[0, 1)"}

"[1, inf)" means 1 or more, "(0, 1)" strictly between 0 and 1. A range applies to each item
of a tuple or list. NaN and infinities are refused everywhere. A setting that takes one of a
few words lists them the same way: `CHOICES: ClassVar = {"mode": ("max", "min")}`.

A field whose type is itself a dataclass is a nested section: `--set data.augment.p_noise=0.3`,
or in YAML a mapping under `augment:`, which changes only the keys it names.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from e2e.errors import E2EError


@dataclass
class TrainConfig:
    """The engine's settings, shared by every task."""

    epochs: int = 10
    max_steps: int = 0  # optimizer steps; 0 = run `epochs` full epochs
    batch_size: int = 256
    grad_accum: int = 1  # micro-batches per optimizer step
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 4e-3  # peak learning rate
    weight_decay: float = 0.05
    momentum: float = 0.9  # sgd momentum; adamw beta1
    schedule: str = "onecycle"  # onecycle | cosine | constant
    warmup: float = 0.25  # fraction of all steps spent warming up
    clip_grad: float = 0.0  # max global grad norm; 0 = off
    precision: str = "auto"  # auto (bf16 on CUDA and AMX CPUs, else fp32) | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    eval_every: int = 0  # optimizer steps between evaluations; 0 = once per epoch
    checkpoint_every: int = 0  # optimizer steps between `last` checkpoints; 0 = at evaluations
    monitor: str = "val/accuracy"  # metric that picks `best` and drives early stopping
    mode: str = "max"  # max | min
    patience: int = 0  # evaluations without improvement before stopping; 0 = off
    log_every: int = 50  # steps between plain log lines when output is not a terminal
    logger: str = "csv"  # csv (RUN/metrics.csv) | tensorboard (also RUN/tensorboard/)
    num_workers: int = 0  # DataLoader workers for file-backed datasets
    check_gradflow: bool = True  # fail if any parameter gets no gradient from the loss
    time_limit: float = 0.0  # seconds of training before stopping cleanly; 0 = none
    # With a time_limit: the LR schedule follows whichever runs out first, steps or time, so it
    # completes when the time does on a machine slower than planned (not bit-reproducible).
    schedule_by_time: bool = False
    # Decay of an exponential moving average of the weights, which evaluation and `best` use
    # (e2e.engine.ema); 0 = off. 0.99-0.999: averages the last 100-1000 steps.
    ema: float = 0.0
    compile: bool = False  # torch.compile the model for training (first steps compile: slower)

    RANGES: ClassVar[dict[str, str]] = {
        "epochs": "[1, inf)", "max_steps": "[0, inf)", "batch_size": "[1, inf)",
        "grad_accum": "[1, inf)", "lr": "[0, inf)", "weight_decay": "[0, inf)",
        "momentum": "[0, 1)", "warmup": "[0, 1]", "clip_grad": "[0, inf)", "seed": "[0, inf)",
        "eval_every": "[0, inf)", "checkpoint_every": "[0, inf)", "patience": "[0, inf)",
        "log_every": "[1, inf)", "num_workers": "[0, inf)", "time_limit": "[0, inf)",
        "ema": "[0, 1)"}
    # settings that take one of a few words, checked like the ranges (before anything runs)
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "optimizer": ("adamw", "sgd"), "schedule": ("onecycle", "cosine", "constant"),
        "precision": ("auto", "fp32", "bf16"), "mode": ("max", "min")}


SECTIONS = ("train", "data", "model")


@dataclass
class Config:
    task: str = "vision"
    train: TrainConfig = field(default_factory=TrainConfig)
    data: Any = None  # the task's data config dataclass
    model: Any = None  # the task's model config dataclass
    # The task's defaults this config started from, kept by `merge` (never saved): the list
    # of valid keys shows them, not the dataclasses' own (vision trains 18 epochs, not 10).
    _defaults: ClassVar[Config | None] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: Path) -> None:
        from e2e.atomic import write_atomic  # a resume or predict never reads half a file

        write_atomic(path, self.to_yaml())


def read_yaml(path: str | Path) -> dict:
    """A config file (or a run directory's config.yaml) as a dict of sections."""
    path = Path(path)
    if path.is_dir():  # a run directory: take its resolved config
        path = path / "config.yaml"
    if not path.exists():
        raise E2EError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise E2EError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise E2EError(f"{path}: expected a mapping of sections at the top level")
    return raw


def merge(cfg: Config, raw: dict, overrides: list[str] | None = None, source: str = "") -> Config:
    """Apply a YAML dict of sections, then `key=value` overrides, onto `cfg` (the task's
    defaults, from `e2e.tasks.default_config`), in that order; then check every value."""
    if cfg._defaults is None:
        cfg._defaults = copy.deepcopy(cfg)
    if raw.get("task") not in (None, cfg.task):
        raise E2EError(f"{source} is a config for task '{raw['task']}', not '{cfg.task}'")
    unknown = set(raw) - {"task", *SECTIONS}
    if unknown:
        raise E2EError(f"{source}: unknown section(s) {sorted(unknown)}; "
                       "valid sections: task, train, data, model")
    for section in SECTIONS:
        values = raw.get(section) or {}
        if not isinstance(values, dict):
            raise E2EError(f"{source}: section '{section}' must be a mapping")
        for key, value in values.items():
            _assign(cfg, section, key, value, source=source)
    for item in overrides or []:
        apply_override(cfg, item)
    validate(cfg, source)
    return cfg


def apply_override(cfg: Config, item: str) -> None:
    """Apply one `section.key=value`; the value is parsed as YAML (so 1e-3, true, [32, 64])."""
    if "=" not in item:
        raise E2EError(f"--set expects key=value, got '{item}'. Valid keys:\n{valid_keys(cfg)}")
    key, text = item.split("=", 1)
    if "." not in key:
        raise E2EError(f"--set key '{key}' needs a section, e.g. train.lr=1e-3."
                       f"{_did_you_mean(cfg, key.strip())} Valid keys:\n{valid_keys(cfg)}")
    section, name = key.strip().split(".", 1)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    if value is None and text.strip() not in ("null", "~", "none", "None"):
        value = text
    _assign(cfg, section, name, value, source="--set", text=text.strip())


def with_overrides(cfg: Config, *overrides: str) -> Config:
    """A copy of `cfg` with `section.key=value` overrides applied; `cfg` is left as it was."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def valid_keys(cfg: Config) -> str:
    """Every key with its type, the task's default and its allowed range, one per line."""
    defaults = cfg._defaults or cfg
    lines = []
    for key, obj, f in _leaves(defaults):
        ranges = getattr(type(obj), "RANGES", {})
        allowed = f", range {ranges[f.name]}" if f.name in ranges else ""
        lines.append(f"  {key} ({_type_name(f.type)}, default {getattr(obj, f.name)!r}{allowed})")
    return "\n".join(lines)


def _leaves(cfg: Config):
    """(dotted key, the dataclass holding it, its field) for every setting, nested ones too."""
    def walk(prefix: str, obj: Any):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from walk(f"{prefix}.{f.name}", value)
            else:
                yield f"{prefix}.{f.name}", obj, f
    for section in SECTIONS:
        if getattr(cfg, section) is not None:
            yield from walk(section, getattr(cfg, section))


def validate(cfg: Config, source: str = "config") -> None:
    """Refuse any numeric value outside its range (or NaN / infinite), naming key and range."""
    for key, obj, f in _leaves(cfg):
        _check_range(obj, key.rsplit(".", 1)[0], f.name, getattr(obj, f.name), source)


@dataclass(frozen=True)
class Interval:
    """An allowed range in interval notation: "[1, inf)", "(0, 1]", ..."""

    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool
    text: str

    PATTERN: ClassVar[re.Pattern] = re.compile(
        r"^([\[(])\s*([-+.\w]+)\s*,\s*([-+.\w]+)\s*([\])])$")

    @classmethod
    def parse(cls, text: str) -> Interval:
        m = cls.PATTERN.match(text.strip())
        if not m:
            raise ValueError(f"not an interval: {text!r} (write e.g. '[0, 1)' or '(0, inf)')")
        return cls(float(m[2]), float(m[3]), m[1] == "[", m[4] == "]", text.strip())

    def __contains__(self, x: float) -> bool:
        if math.isnan(x):
            return False
        above = x >= self.lo if self.lo_closed else x > self.lo
        below = x <= self.hi if self.hi_closed else x < self.hi
        return above and below and math.isfinite(x)

    def words(self) -> str:
        parts = []
        if self.lo != -math.inf:
            parts.append(f"{'>=' if self.lo_closed else '>'} {self.lo:g}")
        if self.hi != math.inf:
            parts.append(f"{'<=' if self.hi_closed else '<'} {self.hi:g}")
        return " and ".join(parts) or "a finite number"


def _check_range(obj: Any, section: str, name: str, value: Any, source: str) -> None:
    where = f"{source}: " if source else ""
    choices = getattr(type(obj), "CHOICES", {}).get(name)
    if choices and value not in choices:
        close = difflib.get_close_matches(str(value), choices, n=1)
        raise E2EError(f"{where}{section}.{name} must be one of {', '.join(choices)}, got "
                       f"{value!r}" + (f"; did you mean {close[0]}?" if close else ""))
    text = getattr(type(obj), "RANGES", {}).get(name)
    interval = Interval.parse(text) if text else Interval(-math.inf, math.inf, False, False,
                                                          "(-inf, inf)")
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if v not in interval:
            raise E2EError(f"{where}{section}.{name} must be {interval.words()}, got {value!r} "
                           f"(allowed range {interval.text}); fix it in the config file or "
                           f"with --set {section}.{name}=VALUE")


def _did_you_mean(cfg: Config, key: str) -> str:
    """' Did you mean train.lr?' for a misspelt key (with or without its section), or ''."""
    keys = [key for key, _, _ in _leaves(cfg)]
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.75)
    if not close:  # a right name in a wrong or missing section: optim.lr, lr, epoch
        bare = key.rsplit(".", 1)[-1]
        names = difflib.get_close_matches(bare, [k.split(".", 1)[1] for k in keys], n=2,
                                          cutoff=0.75)
        close = [k for k in keys if k.split(".", 1)[1] in names]
    return f" Did you mean {' or '.join(close)}?" if close else ""


def _assign(cfg: Config, section: str, name: str, value: Any, source: str,
            text: str | None = None) -> None:
    """Set one key; `text` is the value as typed on the command line (a word setting such as
    data.flip=no keeps it, where YAML would have read a boolean)."""
    obj = getattr(cfg, section, None) if section in SECTIONS else None
    if obj is None:
        raise E2EError(f"{source}: unknown section '{section}'."
                       f"{_did_you_mean(cfg, f'{section}.{name}')} Valid keys:\n"
                       f"{valid_keys(cfg)}")
    top, dotted = section, name
    *parents, name = name.split(".")
    for parent in parents:  # data.augment.p_noise: down into the nested section
        child = getattr(obj, parent, None)
        if not dataclasses.is_dataclass(child):
            _unknown_key(cfg, f"{section}.{parent}.{name}", source)
        obj, section = child, f"{section}.{parent}"
    fields = {f.name: f for f in dataclasses.fields(obj)}
    if name not in fields:
        _unknown_key(cfg, f"{section}.{name}", source)
    if dataclasses.is_dataclass(getattr(obj, name)):
        if not isinstance(value, dict):
            raise E2EError(f"{source}: {section}.{name} is a section of settings; give one "
                           f"of them, e.g. --set {section}.{name}."
                           f"{dataclasses.fields(getattr(obj, name))[0].name}=VALUE")
        for key, item in value.items():  # a mapping changes only the keys it names
            _assign(cfg, top, f"{dotted}.{key}", item, source)
        return
    hints = typing.get_type_hints(type(obj))
    if hints[name] is str and text is not None and isinstance(value, bool):
        value = text
    try:
        coerced = _coerce(value, hints[name])
    except (TypeError, ValueError):
        raise E2EError(f"{source}: {section}.{name} must be {_type_name(hints[name])}, "
                       f"got {value!r}. Valid keys:\n{valid_keys(cfg)}") from None
    _check_range(obj, section, name, coerced, source)
    setattr(obj, name, coerced)


def _unknown_key(cfg: Config, key: str, source: str) -> None:
    raise E2EError(f"{source}: unknown key '{key}' for task '{cfg.task}'."
                   f"{_did_you_mean(cfg, key)} Valid keys:\n{valid_keys(cfg)}")


def _coerce(value: Any, typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(typ)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg)
            except (TypeError, ValueError):
                pass
        raise TypeError
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        args = typing.get_args(typ) or (Any,)
        if origin is tuple and Ellipsis not in args and len(value) != len(args):
            raise ValueError  # tuple[float, float] holds exactly two
        items = [_coerce(v, args[0]) for v in value]
        return tuple(items) if origin is tuple else items
    if typ is Any:
        return value
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise TypeError
        return value
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads 3e-4 (no dot) as a string
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        return float(value)
    if typ is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError
        return str(value)
    raise TypeError


def _type_name(typ: Any) -> str:
    if isinstance(typ, str):
        return typ
    if typing.get_args(typ):  # tuple[float, float], not just "tuple"
        return str(typ).replace("typing.", "")
    return getattr(typ, "__name__", None) or str(typ).replace("typing.", "")
