"""Nested config sections: a dataclass-typed field (data.augment) is set key by key."""

from dataclasses import dataclass, field
from typing import ClassVar

import pytest

from e2e.config import Config, TrainConfig, merge, valid_keys
from e2e.errors import E2EError


@dataclass
class Augment:
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)
    RANGES: ClassVar[dict[str, str]] = {"p_noise": "[0, 1]"}


@dataclass
class Data:
    source: str = "x"
    augment: Augment = field(default_factory=Augment)


@dataclass
class Model:
    dim: int = 4


def fresh() -> Config:
    return Config(task="t", train=TrainConfig(), data=Data(), model=Model())


def test_yaml_mapping_and_set_change_only_the_keys_they_name():
    cfg = merge(fresh(), {"data": {"augment": {"p_noise": 0.25}}}, ["data.augment.snr_db=[1, 2]"])
    assert cfg.data.augment == Augment(p_noise=0.25, snr_db=(1.0, 2.0))
    cfg = merge(fresh(), {}, ["data.augment={snr_db: [3, 4]}"])
    assert cfg.data.augment == Augment(p_noise=0.5, snr_db=(3.0, 4.0))


def test_nested_keys_round_trip_through_yaml(tmp_path):
    cfg = merge(fresh(), {}, ["data.augment.p_noise=0.1"])
    path = tmp_path / "config.yaml"
    cfg.save(path)
    import yaml
    again = merge(fresh(), yaml.safe_load(path.read_text()))
    assert again.data.augment.p_noise == 0.1 and again.to_dict() == cfg.to_dict()


def test_nested_keys_are_listed_with_their_ranges():
    assert "data.augment.p_noise (float, default 0.5, range [0, 1])" in valid_keys(fresh())


@pytest.mark.parametrize("item, says", [
    ("data.augment.p_noise=2", "data.augment.p_noise must be >= 0 and <= 1"),
    ("data.augment.p_nois=0.1", "Did you mean data.augment.p_noise?"),
    ("data.augment=3", "data.augment is a section of settings"),
    ("data.source.x=1", "unknown key 'data.source.x'"),
])
def test_bad_nested_values_name_the_key(item, says):
    with pytest.raises(E2EError, match=says.replace("?", r"\?")):
        merge(fresh(), {}, [item])


def test_a_word_setting_keeps_the_word_yaml_would_read_as_a_boolean():
    from e2e.tasks import load_config
    assert load_config(task="vision", overrides=["data.flip=no"]).data.flip == "no"
    assert load_config(task="vision", overrides=["data.flip=yes"]).data.flip == "yes"
    with pytest.raises(E2EError, match="train.check_gradflow must be bool"):
        load_config(task="vision", overrides=["train.check_gradflow=maybe"])
