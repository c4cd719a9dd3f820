"""Recipes: each application's default IS its benchmark's system; named recipes ship in the
package as overlays that hold only what differs; `--config NAME` and `e2e config` find them."""

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2e import recipes
from e2e.cli import main
from e2e.config import TrainConfig, _leaves, merge
from e2e.errors import E2EError
from e2e.tasks import default_config, load_config

ROOT = Path(__file__).resolve().parent.parent
APPS = ("vision", "speech", "text", "driving")
ALL = [(app, name) for app in recipes.apps() for name in recipes.names(app)]


def flat(cfg) -> dict:
    return {key: getattr(obj, f.name) for key, obj, f in _leaves(cfg)}


def bench_module(name: str):
    """bench/NAME.py as a module (bench/ is scripts, not a package)."""
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_application_ships_named_recipes():
    assert set(recipes.apps()) == set(APPS)
    assert {"bible", "messages", "summarize"} <= set(recipes.names("text"))
    assert "accurate" in recipes.names("vision")


@pytest.mark.parametrize("app,name", ALL)
def test_a_recipe_is_an_overlay_of_what_differs_from_the_default(app, name):
    path = recipes.ROOT / app / f"{name}.yaml"
    assert path.read_text().startswith("# ") and recipes.describe(path)  # what it is for
    raw = yaml.safe_load(path.read_text())
    assert raw.pop("task") == app
    default, cfg = flat(default_config(app)), flat(load_config(name, app))

    def leaves(prefix, mapping):
        for key, value in mapping.items():
            if isinstance(value, dict):
                yield from leaves(f"{prefix}{key}.", value)
            else:
                yield f"{prefix}{key}"
    for key in leaves("", raw):  # each value in the file changes the default: none repeats it
        assert cfg[key] != default[key], f"{app}/{name}.yaml repeats the default {key}"


def test_each_train_recipe_overrides_only_what_differs_from_the_engines_defaults():
    engine = TrainConfig()
    for app in APPS:
        cls = type(default_config(app).train)
        assert issubclass(cls, TrainConfig) and cls is not TrainConfig, app
        own = [f for f in dataclasses.fields(cls) if f.name in vars(cls).get("__annotations__", {})]
        assert own, app
        for f in own:  # one source of truth: a value equal to the engine's is not repeated
            assert f.default != getattr(engine, f.name), f"{app}: train.{f.name} repeats it"


def test_found_by_name_or_by_path_and_a_path_wins(tmp_path, monkeypatch):
    assert load_config("bible", "text").data.source == "bible-en-es"
    assert load_config("bible.yaml", "text") == load_config("bible", "text")
    assert load_config("bible").task == "text"  # a name of one application needs none
    monkeypatch.chdir(tmp_path)
    Path("bible").write_text("task: text\ntrain: {epochs: 3}\n")  # a file here named the same
    assert load_config("bible", "text").train.epochs == 3
    assert load_config("bible", "text").data.source == default_config("text").data.source


def test_an_unknown_recipe_lists_the_applications_and_suggests_one():
    with pytest.raises(E2EError) as err:
        load_config("bibel", "text")
    text = str(err.value)
    assert "\n" not in text and "Did you mean --config bible?" in text
    assert "text's recipes: " + ", ".join(recipes.names("text")) in text
    with pytest.raises(E2EError, match="Did you mean --config bible"):  # the old place
        load_config("configs/text/bible.yaml", "text")
    with pytest.raises(E2EError, match="no config file or vision recipe named 'bible'"):
        load_config("bible", "vision")


def test_e2e_config_list_names_every_recipe_with_its_description(capsys):
    assert main(["config", "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(ALL)
    for (app, name), line in zip(ALL, out):
        assert line.split()[:2] == [app, name]
        assert line.endswith(recipes.describe(recipes.ROOT / app / f"{name}.yaml"))


@pytest.mark.parametrize("app,name", [(app, None) for app in APPS] + ALL)
def test_e2e_config_prints_yaml_that_config_reads_back(app, name, capsys, tmp_path):
    assert main(["config", app, *(["--config", name] if name else [])]) == 0
    (tmp_path / "c.yaml").write_text(capsys.readouterr().out)
    assert load_config(tmp_path / "c.yaml") == load_config(name, app)


# ---- the default IS what the benchmark measures ----

def test_a_benchmark_may_set_only_its_budget():
    budget = bench_module("budget")
    assert budget.check("speech", ["train.time_limit=60", "data.corpus=/x"])
    for app, item in (("speech", "model.layers=6"), ("text", "train.lr=1e-3"),
                      ("text", "data.source=bible-en-es"), ("vision", "train.epochs=6")):
        with pytest.raises(SystemExit, match="changes what"):
            budget.check(app, [item])


def differences(printed: str, app: str) -> set[str]:
    """The keys whose value in a printed config differs from the application's default."""
    raw = yaml.safe_load(printed)
    assert raw["task"] == app
    ran, default = flat(merge(default_config(app), raw, source="--print-config")), \
        flat(default_config(app))
    return {k for k in default if ran[k] != default[k]}


@pytest.mark.parametrize("app", ["speech", "text", "driving"])
def test_the_benchmark_trains_the_applications_default(app, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / f"{app}.py"), "--print-config"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    budget = bench_module("budget")
    changed = differences(proc.stdout, app)
    assert changed <= set(budget.allowed(app)), f"bench/{app}.py changes {changed}"


def test_the_vision_benchmarks_default_run_is_e2e_train_vision():
    runs = bench_module("vision").RUNS
    args = runs["default"]["args"]
    assert "--config" not in args and "--data" not in args
    budget = bench_module("budget")
    sets = [a for i, a in enumerate(args) if i and args[i - 1] == "--set"]
    budget.check("vision", [*sets, "train.precision=fp32"])  # the plain column adds fp32
    assert load_config("accurate", "vision") == load_config(runs["accurate"]["args"][1], "vision")
