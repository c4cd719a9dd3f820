import pytest

from e2e.config import apply_override
from e2e.errors import E2EError
from e2e.tasks import default_config, load_config


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
    with pytest.raises(E2EError, match="unknown task 'audio'"):
        default_config("audio")
