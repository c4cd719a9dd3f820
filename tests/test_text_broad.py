"""The general translator (recipe `broad`): its recipe is the default but for its source, the
mix is reported in the run and as data, the scores per domain (clean and noisy) come out
right, the vocabulary is checked across processes, and the benchmark's broad section renders
the per-domain table, the targets and the specialists at the same budget."""

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

import e2e
from e2e.config import _leaves, merge
from e2e.data.text_corpus import (
    BroadSplits,
    Pair,
    corpus_mix,
    mix_summary,
    mix_table,
    read_corpus,
    sample_mix,
    sampling_shares,
)
from e2e.data.text_noise import add_noise
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks import default_config, load_config
from e2e.tasks.text.domains import (
    NOISE,
    domain_table,
    from_results,
    label,
    noisy,
    noisy_split,
    score_parts,
)

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def need(*names: str) -> None:
    """Skip (with the install command) unless each corpus is installed."""
    for name in names:
        try:
            read_corpus(name)
        except DatasetMissing as e:
            pytest.skip(f"{name} is not installed: {e.install}")


def flat(cfg) -> dict:
    return {key: getattr(obj, f.name) for key, obj, f in _leaves(cfg)}


def bench_text():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_text", ROOT / "bench" / "text.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- the recipe ----

def test_broad_differs_from_the_default_only_in_its_source():
    # So making it the default is one value (TextDataConfig.source = "broad"): the model and
    # training are the measured translator's (once it is the default, nothing differs).
    broad, default = flat(load_config("broad", "text")), flat(default_config("text"))
    assert {k for k in default if broad[k] != default[k]} <= {"data.source"}
    assert broad["data.source"] == "broad"


def test_the_benchmark_of_broad_sets_only_its_budget(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "text.py"), "--recipe", "broad",
                           "--print-config"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = flat(merge(default_config("text"), yaml.safe_load(proc.stdout), source="bench"))
    assert printed == flat(load_config("broad", "text"))


def test_the_benchmark_keeps_each_recipe_and_budget_apart():
    bench = bench_text()
    assert bench.translation_key("broad", 2) == "translate_broad"  # broad's own: 2 processes
    assert bench.translation_key("broad", 1) == "translate_broad_1proc"
    assert bench.translation_key("bible", 1) == "translate_bible"
    assert bench.translation_key("bible", 2) == "translate_bible_2proc"
    assert bench.translation_key("messages", 1) == "translate"
    keys = {"translate_broad": 0, "translate_bible_2proc": 0, "translate": 0, "speed": 0,
            "translate_bible": 0, "summarize": 0}
    assert bench.translation_keys(keys) == ["translate", "translate_bible",
                                            "translate_bible_2proc", "translate_broad"]


# ---- the mix, as data ----

def splits_of(sizes: dict[str, int], unseen: str = "") -> BroadSplits:
    """Hand-made splits: `n` training pairs per corpus in documents of 10, one test pair each."""
    def pairs(name, n, role):
        return [Pair(name, f"{role}{i // 10}", f"{name} {role} {i}", "x") for i in range(n)]
    out = BroadSplits({}, {}, {}, unseen)
    for name, n in sizes.items():
        out.train[name] = [] if name == unseen else pairs(name, n, "train")
        out.val[name] = [] if name == unseen else pairs(name, 1, "val")
        out.test[name] = pairs(name, n if name == unseen else 1, "test")
    return out


def test_the_mix_summary_reports_pairs_shares_and_passes():
    splits = splits_of({"big": 8100, "small": 100, "never": 50}, unseen="never")
    mix = sample_mix(splits.train, 0.5, seed=0)
    summary = mix_summary(splits, mix, 0.5)
    c = summary["corpora"]
    assert summary["unseen"] == "never" and summary["mix_pairs"] == len(mix) == 8200
    assert c["big"]["share"] == pytest.approx(90 / 100) and c["never"]["share"] == 0
    assert c["small"]["drawn"] == Counter(p.corpus for p in mix)["small"] == 820
    assert c["small"]["passes"] == pytest.approx(8.2) and c["never"]["drawn"] == 0
    assert (c["big"]["train"], c["big"]["val"], c["big"]["test"]) == (8100, 1, 1)
    assert c["never"]["test"] == 50 and c["big"]["documents"] == 812
    json.dumps(summary)  # kept in text-bench.json as it is
    table = mix_table(summary)
    assert len(table) == 2 + 3 and "| never (unseen) | 50 |" in table[-1]
    assert "90.0%" in table[2] and "| 8.20 |" in table[3]


def test_mix_alpha_sets_the_shares():
    sizes = {"a": 100, "b": 400}
    assert sampling_shares(sizes, 1.0) == {"a": 0.2, "b": 0.8}
    assert sampling_shares(sizes, 0.0) == {"a": 0.5, "b": 0.5}
    assert sampling_shares(sizes, 0.5) == pytest.approx({"a": 1 / 3, "b": 2 / 3})
    with pytest.raises(E2EError, match="data.mix_alpha"):
        load_config("broad", "text", ["data.mix_alpha=-1"])
    with pytest.raises(E2EError, match="data.unseen .*did you mean tuxpaint"):
        load_config("broad", "text", ["data.unseen=tuxpant"])  # refused before any reading
    assert load_config("broad", "text", ["data.unseen="]).data.unseen == ""  # none held out


def test_a_mix_of_corpora_reports_its_mix_and_limit():
    need("steel-sky", "tuxpaint")
    d = load_config(None, "text", ["data.source=steel-sky+tuxpaint", "data.limit=300",
                                   "data.mix_alpha=0"]).data
    parts, summary = corpus_mix(d)
    assert [name for name, *_ in parts] == ["steel-sky", "tuxpaint"]
    assert len(parts[0][1]) == 300 and parts[1][1] == []  # the mix rides on the first corpus
    drawn = {k: c["drawn"] for k, c in summary["corpora"].items()}
    assert sum(drawn.values()) == 300 and summary["unseen"] == ""  # only broad holds one out
    assert all(c["share"] == 0.5 for c in summary["corpora"].values())  # alpha 0: equal
    assert abs(drawn["steel-sky"] - drawn["tuxpaint"]) < 60  # a shuffled prefix of the mix


@pytest.mark.slow  # reads every corpus: ~15 s of one core
def test_broad_holds_out_the_configured_unseen_corpus_and_every_test_document():
    d = load_config("broad", "text", ["data.unseen=steel-sky"]).data
    parts, summary = corpus_mix(d)
    by_name = {name: (train, val, test) for name, train, val, test in parts}
    train = set(parts[0][1])
    assert summary["corpora"]["steel-sky"]["train"] == 0 and by_name["steel-sky"][1] == []
    assert not train & set(by_name["steel-sky"][2])
    held = {s for _, val, test in by_name.values() for s, _ in val + test}
    assert not {s for s, _ in train} & held  # no held-out English text in training
    shares = sampling_shares({k: c["train"] for k, c in summary["corpora"].items()}, 0.5)
    for name, c in summary["corpora"].items():
        assert c["drawn"] / summary["mix_pairs"] == pytest.approx(shares.get(name, 0), abs=1e-3)


# ---- scores per domain ----

def test_scores_per_part_and_from_results():
    need("tuxpaint")
    pairs = read_corpus("tuxpaint")[:40]
    sources, refs = [p.source for p in pairs], [p.target for p in pairs]
    parts = {"a": (0, 20), "b": (20, 40)}
    hyps = refs[:20] + sources[20:]  # a perfect half and a copied half
    scored = score_parts(hyps, refs, sources, parts)
    assert scored["a"]["bleu"] == pytest.approx(100) and scored["b"]["bleu"] < 30
    assert "placeholders" not in scored["a"]  # none in the sources
    kept = score_parts(["%s copiado", "hecho"], ["%s copiado", "x"], ["%s copied", "%d done"],
                       {"m": (0, 2)})
    assert kept["m"]["placeholders"] == 50
    results = {"test/bleu:a": 1.0, "test/chrf:a": 2.0, "test/bleu:b": 3.0, "test/chrf:b": 4.0,
               "test/placeholders:b": 99.5, "test/bleu": 9.0, "test/chrf": 8.0}
    assert from_results(results, parts) == {"a": {"bleu": 1.0, "chrf": 2.0},
                                            "b": {"bleu": 3.0, "chrf": 4.0, "placeholders": 99.5}}
    assert from_results(results, {"only": (0, 5)}) == {"only": {"bleu": 9.0, "chrf": 8.0}}


def test_the_domain_table_marks_the_unseen_domain_and_each_verdict():
    parts = {
        "docs": {"pairs": 1200, "ours": {"bleu": 30.0, "chrf": 55.0},
                 "apertium": {"bleu": 20.0, "chrf": 50.0},
                 "noisy": {"ours": {"bleu": 25.0, "chrf": 50.0},
                           "apertium": {"bleu": 26.0, "chrf": 49.0}}},
        "tuxpaint": {"pairs": 801, "ours": {"bleu": 10.0, "chrf": 52.0},
                     "apertium": {"bleu": 14.0, "chrf": 51.0}}}
    rows = domain_table(parts, unseen="tuxpaint")
    assert len(rows) == 4 and rows[0].count("noisy:") == 4
    assert rows[2].startswith("| Debian manuals") and rows[2].endswith("yes; noisy: **no** |")
    assert "never trained on" in rows[3] and rows[3].endswith("| - | - | - | - |  | **no** |")
    assert label("tuxpaint") == "Tux Paint stamp sentences"


def test_noise_is_the_same_in_every_process():
    texts = ["Die, villain, die!", "The file %s could not be opened.", "A brown hat."]
    code = ("import json, sys; from e2e.tasks.text.domains import noisy; "
            f"print(json.dumps(noisy({texts!r})))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1 and json.loads(outs.pop()) == noisy(texts)
    assert noisy(texts) == add_noise(texts, NOISE.typo, NOISE.lowercase, NOISE.punctuation,
                                     NOISE.seed)
    assert "%s" in noisy(texts)[1]


# ---- a tiny run of a mix: the report, the noisy split, the benchmark's section ----

TINY = ["data.source=steel-sky+tuxpaint", "data.limit=200", "data.test_limit=12",
        "data.vocab_size=300", "data.val_decode=8", "model.d_model=32", "model.ff=64",
        "model.heads=2", "model.encoder_layers=1", "model.decoder_layers=1", "model.beam=1",
        "train.max_steps=4", "train.eval_every=4", "train.batch_size=16",
        "train.precision=fp32", "train.device=cpu"]


@pytest.fixture(scope="module")
def mix_run(tmp_path_factory):
    need("steel-sky", "tuxpaint")
    out = tmp_path_factory.mktemp("broad") / "run"
    return out, e2e.train("text", out=out, overrides=TINY, quiet=True)


def test_a_run_reports_its_mix_and_scores_each_corpus(mix_run):
    out, results = mix_run
    assert {"test/bleu:steel-sky", "test/chrf:tuxpaint"} <= set(results)
    report = (out / "report.md").read_text()
    assert "## Training mix (shares by n^0.5; 200 pairs drawn" in report
    assert "| steel-sky |" in report and "| tuxpaint |" in report


def test_the_noisy_split_types_the_sources_and_keeps_the_rest(mix_run):
    model = e2e.load(mix_run[0])
    test = model.task.build_data(model.cfg, model.info).test
    typed = noisy_split(test, model.cfg, model.info)
    assert typed.targets == test.targets and typed.parts == test.parts == {
        "steel-sky": (0, 12), "tuxpaint": (12, 24)}
    assert typed.sources == noisy(test.sources) and typed.sources != test.sources
    assert typed.src != test.src and len(typed) == len(test)
    with torch.no_grad():
        scores = model.task.evaluate(model.model.eval(), typed, model.cfg, model.info)
    assert set(from_results(scores, typed.parts, prefix="")) == {"steel-sky", "tuxpaint"}


def test_the_benchmark_renders_the_broad_section(mix_run):
    out, results = mix_run
    bench = bench_text()
    scored, mix = bench.score_translation(out, results, noisy=True)
    assert set(scored) == {"steel-sky", "tuxpaint"} and mix["mix_pairs"] == 200
    assert all({"ours", "apertium", "noisy"} <= set(p) for p in scored.values())
    assert scored["tuxpaint"]["apertium"]["bleu"] > 5  # apertium translates the real sentences
    broad = {"run": str(out), "overrides": ["train.max_steps=4"], "signature": "sig",
             "results": {**results, "train_seconds": 3600.0}, "parts": scored, "mix": mix,
             "processes": 2, "noise": {"typo": 0.03, "lowercase": 0.5, "punctuation": 0.5,
                                       "seed": 0}, "command": "CMD"}
    # the specialists: broad's test sets under their names, at two budgets
    specialist = {"run": str(out), "overrides": [], "signature": "sig", "processes": 2,
                  "results": {**results, "train_seconds": 3500.0},
                  "parts": {"messages-en-es": {"pairs": 12, "ours": {"bleu": 1.0, "chrf": 2.0},
                                               "apertium": {"bleu": 0, "chrf": 0,
                                                            "sents_per_s": 9}}}}
    broad["parts"]["messages"] = {**scored["tuxpaint"],
                                  "ours": {"bleu": 2.5, "chrf": 3.0, "placeholders": 98.0}}
    report = {"translate_broad": broad, "translate_2proc": specialist,
              "translate": {**specialist, "processes": 1}, "machine": "m"}
    text = bench.render(report, "CMD")
    section = text[text.index("### Translation, one general translator"):]
    assert "| Tux Paint stamp sentences | 12 |" in section  # not broad: no unseen corpus here
    assert "noisy: e2e BLEU" in section and "typos at 3% of the letters" in section
    assert "| steel-sky | " in section  # the mix table
    assert "Placeholders kept on the messages >= 99%: 98.0%, **missed**" in section
    rows = [line for line in section.splitlines() if "`messages` (Bible + messages)" in line]
    assert len(rows) == 2
    assert rows[0].endswith("| +1.50 | another budget: not judged |")  # 1 process
    assert rows[1].endswith("| +1.50 | met |")  # the same budget: 2 processes, ~60 minutes
    assert "### Translation, English -> Spanish, on 2 cores (2 processes)" in text


def test_compare_options_for_the_broad_corpus(tmp_path):
    from e2e.compare import CompareOptions
    from e2e.stepwise.text import config, jobs

    opts = CompareOptions(out=tmp_path, data="broad", quick=True, fractions=(0.1, 0.3, 1.0))
    cfg, setting = config(opts)
    assert setting.quick == "compare-broad-quick" and setting.metric == "bleu"
    assert cfg.data.source == "broad" and cfg.data.test_limit == 100 and jobs(opts) == 4
    opts.data, opts.quick = "wesnoth+docs", False  # some of its corpora: the broad presets
    cfg, setting = config(opts)
    assert cfg.data.source == "wesnoth+docs" and setting.full == "compare-broad"
    assert cfg.train.time_limit == 540


# ---- several processes learn one vocabulary ----

def _rank(rank: int, folder: str, texts: list[str]) -> None:
    import torch.distributed as dist

    from e2e.tasks.text.task import same_on_every_rank

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank,
                            world_size=2)
    try:
        same_on_every_rank(texts[rank])
        Path(folder, f"rank{rank}").write_text("same")
    except E2EError as e:
        Path(folder, f"rank{rank}").write_text(str(e))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("texts, same", [(["vocab", "vocab"], True),
                                         (["vocab", "other"], False)])
def test_processes_with_different_vocabularies_stop(tmp_path, texts, same):
    torch.multiprocessing.spawn(_rank, args=(str(tmp_path), texts), nprocs=2, join=True)
    answers = [(tmp_path / f"rank{r}").read_text() for r in (0, 1)]
    if same:
        assert answers == ["same", "same"]
    else:
        assert all("different vocabularies" in a for a in answers)
