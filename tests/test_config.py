import math
import typing

import pytest

from e2e.config import Interval, _leaves, apply_override, validate
from e2e.errors import E2EError
from e2e.tasks import TASKS, default_config, load_config


def test_defaults_round_trip_through_yaml(tmp_path):
    cfg = default_config("vision")
    cfg.train.lr = 1e-3
    cfg.model.widths = (8, 16)
    cfg.save(tmp_path / "c.yaml")
    back = load_config(tmp_path / "c.yaml")
    assert back == cfg


def test_set_parses_types():
    cfg = default_config("vision")
    for item in ["train.lr=3e-4", "train.epochs=7", "train.check_gradflow=false",
                 "model.widths=[8, 16, 32]", "data.source=digits", "train.clip_grad=1"]:
        apply_override(cfg, item)
    assert cfg.train.lr == 3e-4 and cfg.train.epochs == 7 and cfg.train.check_gradflow is False
    assert cfg.model.widths == (8, 16, 32) and cfg.data.source == "digits"
    assert cfg.train.clip_grad == 1.0 and isinstance(cfg.train.clip_grad, float)


@pytest.mark.parametrize("item, fragment", [
    ("train.lrr=1", "unknown key 'train.lrr'"),
    ("train.epochs=many", "train.epochs must be int"),
    ("train.epochs=2.5", "train.epochs must be int"),
    ("model.widths=8", "model.widths must be"),
    ("model.widths=[8, x]", "model.widths must be tuple[int, ...]"),
    ("lr=1", "needs a section"),
    ("optim.lr=1", "unknown section"),
    ("train.lr", "expects key=value"),
])
def test_bad_overrides_name_the_key_and_list_valid_keys(item, fragment):
    with pytest.raises(E2EError) as err:
        apply_override(default_config("vision"), item)
    assert fragment in str(err.value)
    assert "train.batch_size" in str(err.value)  # the list of valid keys


def test_bad_yaml_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: [1,\n")
    with pytest.raises(E2EError, match="not valid YAML"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("trian:\n  epochs: 1\n")
    with pytest.raises(E2EError, match="unknown section"):
        load_config(tmp_path / "c.yaml")


def test_unknown_task():
    with pytest.raises(E2EError, match="unknown application 'audio'"):
        default_config("audio")


@pytest.mark.parametrize("item, key, allowed", [
    ("train.epochs=-3", "train.epochs", "[1, inf)"),
    ("train.epochs=0", "train.epochs", "[1, inf)"),
    ("train.batch_size=0", "train.batch_size", "[1, inf)"),
    ("train.batch_size=-8", "train.batch_size", "[1, inf)"),
    ("train.lr=nan", "train.lr", "[0, inf)"),
    ("train.lr=.inf", "train.lr", "[0, inf)"),
    ("train.lr=-1e-3", "train.lr", "[0, inf)"),
    ("train.warmup=1.5", "train.warmup", "[0, 1]"),
    ("train.grad_accum=0", "train.grad_accum", "[1, inf)"),
    ("train.time_limit=-1", "train.time_limit", "[0, inf)"),
    ("model.widths=[8, 0]", "model.widths", "[1, inf)"),
    ("model.dropout=1", "model.dropout", "[0, 1)"),
    ("data.val_fraction=1.5", "data.val_fraction", "(0, 1)"),
])
def test_out_of_range_values_are_refused_with_key_and_range(item, key, allowed):
    with pytest.raises(E2EError) as err:
        load_config(None, "vision", [item])
    first = str(err.value).splitlines()[0]
    assert key in first and f"allowed range {allowed}" in first


def test_out_of_range_value_in_a_yaml_file_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 0\n")
    with pytest.raises(E2EError, match=r"c.yaml: train.epochs must be >= 1, got 0"):
        load_config(tmp_path / "c.yaml", "vision")


def test_validate_catches_values_set_in_python():
    cfg = default_config("vision")
    cfg.train.lr = float("nan")
    with pytest.raises(E2EError, match="train.lr must be >= 0, got nan"):
        validate(cfg)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_numeric_value_of_every_task_has_a_range_its_default_obeys(task):
    cfg = default_config(task)
    validate(cfg)  # the defaults themselves are in range
    for key, obj, f in _leaves(cfg):  # nested sections (data.augment.*) too
        hints = typing.get_type_hints(type(obj))
        numeric = {int, float} & {hints[f.name], *typing.get_args(hints[f.name])}
        if numeric and hints[f.name] is not bool:
            assert f.name in type(obj).RANGES, f"{task}: {key} has no range"
        for text in type(obj).RANGES.values():
            Interval.parse(text)  # each range is well written


def test_interval_notation():
    closed, open_ = Interval.parse("[0, 1]"), Interval.parse("(0, 1)")
    assert 0 in closed and 1 in closed and 0 not in open_ and 1 not in open_ and 0.5 in open_
    assert math.nan not in Interval.parse("(-inf, inf)")
    assert math.inf not in Interval.parse("[0, inf)")
    with pytest.raises(ValueError):
        Interval.parse("0..1")


def test_valid_keys_show_the_tasks_defaults_and_a_suggestion():
    with pytest.raises(E2EError) as err:
        load_config(None, "vision", ["train.epoch=3"])
    text = str(err.value)
    assert "Did you mean train.epochs?" in text.splitlines()[0]
    assert "train.epochs (int, default 18, range [1, inf))" in text  # vision's, not 10
    with pytest.raises(E2EError, match="Did you mean train.lr"):
        load_config(None, "vision", ["lr=1e-3"])
    with pytest.raises(E2EError, match="Did you mean train.lr"):
        load_config(None, "vision", ["optim.lr=1e-3"])


def test_words_are_checked_against_their_choices():
    with pytest.raises(E2EError, match="train.schedule must be one of onecycle, cosine, "
                                       "constant, got 'cosin'; did you mean cosine"):
        load_config(None, "vision", ["train.schedule=cosin"])


def test_a_pair_takes_exactly_two_values():
    cfg = default_config("speech")
    apply_override(cfg, "data.augment.semitones=[0, 4]")
    assert cfg.data.augment.semitones == (0.0, 4.0)
    for bad in ("[1]", "[1, 2, 3]"):
        with pytest.raises(E2EError,
                           match=r"data.augment.semitones must be tuple\[float, float\]"):
            apply_override(cfg, f"data.augment.semitones={bad}")
    with pytest.raises(E2EError, match="data.augment.semitones must be >= -12"):
        apply_override(cfg, "data.augment.semitones=[0, 20]")
