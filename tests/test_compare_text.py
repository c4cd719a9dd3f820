"""`e2e compare text`: the rule-based and extractive counterparts give sane scores on real
held-out data, the data curve's subsets are nested, and the report is written."""

import re

import pytest
from conftest import run_cli

from e2e.compare import CompareOptions
from e2e.errors import DatasetMissing, E2EError
from e2e.stepwise.rule_based import (
    apertium,
    central_sentence,
    central_summaries,
    lead_summaries,
    require_apertium,
)
from e2e.stepwise.text import config, jobs
from e2e.tasks import load_config
from e2e.tasks.text import metrics
from e2e.tasks.text.task import TextTask, read_pairs


def test_apertium_translates_held_out_verses_far_better_than_copying():
    from e2e.data.bible import read_bible, split_by_book
    from e2e.tasks.text.task import TextDataConfig

    d = TextDataConfig()
    test = split_by_book(read_bible(), list(d.val_books), list(d.test_books))[2][:80]
    sources, refs = [v.source for v in test], [v.target for v in test]
    hyps, seconds = apertium(sources)
    assert len(hyps) == len(sources) and all(hyps)
    rules, copy = metrics.score(hyps, refs), metrics.score(sources, refs)
    # Copying the English is the trivially bad baseline (shared names, punctuation).
    assert rules["chrf"] > copy["chrf"] + 10 and rules["bleu"] > copy["bleu"] + 4, (rules, copy)
    assert seconds < 30


def test_missing_apertium_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DatasetMissing, match="sudo apt-get install apertium-eng-spa"):
        require_apertium()
    with pytest.raises(DatasetMissing, match="apertium-eng-spa"):
        apertium(["In the beginning."])


def test_central_sentence_is_the_one_sharing_most_words():
    text = ("Foo is a tool. Foo converts PNG images to JPEG images.\n"
            "Foo reads PNG and JPEG images fast. Written in C.")
    assert central_sentence(text) == "Foo reads PNG and JPEG images fast."
    assert central_sentence("Only one sentence here.") == "Only one sentence here."
    assert central_sentence("") == ""


def test_summary_baselines_beat_a_mismatched_summary():
    cfg = load_config(None, "text", ["data.source=debian-descriptions"])
    test = read_pairs(cfg.data)[2][:300]
    sources, refs = [s for s, _ in test], [t for _, t in test]
    lead = metrics.score(lead_summaries(sources), refs)["rougeL"]
    central = metrics.score(central_summaries(sources), refs)["rougeL"]
    # Another package's lead sentence: fluent Debian prose, the wrong package.
    wrong = metrics.score(lead_summaries(sources[1:] + sources[:1]), refs)["rougeL"]
    assert lead > wrong + 10 and central > wrong + 5, (lead, central, wrong)


def test_text_subsets_are_nested_and_disjoint_from_test():
    base = ["data.source=debian-descriptions", "data.vocab_size=300"]
    small = TextTask().build_data(load_config(None, "text", [*base, "data.limit=50"]))
    large = TextTask().build_data(load_config(None, "text", [*base, "data.limit=150"]))
    assert len(small.train) == 50 and len(large.train) == 150
    assert small.train.sources == large.train.sources[:50]
    assert small.train.targets == large.train.targets[:50]
    assert small.test.sources == large.test.sources  # every size is scored on the same pairs
    assert not set(large.train.sources) & set(large.test.sources)


def test_options_pick_the_counterparts(tmp_path):
    opts = CompareOptions(out=tmp_path, fractions=(0.1, 0.3, 1.0))
    assert jobs(opts) == 4  # default corpus: 3 sizes + apertium
    opts.data = "debian-descriptions"
    assert jobs(opts) == 5  # 3 sizes + lead + central
    opts.quick = True
    cfg, setting = config(opts)
    assert setting.metric == "rougeL" and cfg.train.time_limit > 0 and cfg.train.max_steps > 0
    assert cfg.data.test_limit > 0
    opts.overrides = ["train.time_limit=7"]
    assert config(opts)[0].train.time_limit == 7  # the user's --set wins over the preset
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("a\tb\n")
    opts.data = str(tsv)
    with pytest.raises(E2EError, match="not for .*pairs.tsv"):
        config(opts)


TINY = ["data.limit=300", "data.test_limit=40", "data.vocab_size=300", "data.val_decode=8",
        "model.d_model=32", "model.ff=64", "model.heads=2", "model.encoder_layers=1",
        "model.decoder_layers=1", "model.max_len=96", "data.max_target_tokens=24",
        "train.max_steps=6", "train.eval_every=6", "train.batch_size=16", "train.device=cpu",
        "train.precision=fp32"]


def test_compare_text_quick_writes_the_report(tmp_path):
    args = [a for o in TINY for a in ("--set", o)]
    proc = run_cli("compare", "text", "--data", "debian-descriptions", "--quick", "--out",
                   str(tmp_path), *args, env={"OMP_NUM_THREADS": "1"})
    report = (tmp_path / "report.md").read_text()
    assert "report:" in proc.stdout
    rows = [cells for cells in (line.split("|") for line in report.splitlines())
            if len(cells) == 8 and cells[1].startswith((" end to end", " stepwise"))]
    e2e_rows = [r for r in rows if r[1].startswith(" end to end (Transformer)")]
    assert [int(r[2].replace(",", "")) for r in e2e_rows] == [30, 90, 300]  # 10/30/100%
    fixed = {r[1].strip(): float(r[3]) for r in rows if "no learning" in r[2]}
    assert set(fixed) == {"stepwise: lead sentence", "stepwise: most central sentence"}
    assert fixed["stepwise: lead sentence"] > 10  # ROUGE-L on 40 held-out descriptions
    assert len(rows) == 5 and all(r[5].strip().endswith("ms") for r in rows)  # inference times
    notes = [line for line in report.splitlines() if line.startswith("| stepwise: lead")]
    assert len(notes) == 2  # the main table and the notes' BLEU / chrF / ROUGE-L table
    assert "first 40 test pairs" in report and "train.time_limit=120 s" in report
    assert re.search(r"sacrebleu: `BLEU nrefs:1\|", report)
    assert (tmp_path / "text_data_curve.png").stat().st_size > 5000
    limits = [load_config(tmp_path / "text" / f"e2e-{n}" / "config.yaml").data.limit
              for n in (30, 90, 300)]
    assert limits == [30, 90, 300]


def test_compare_text_without_apertium_is_skipped_with_the_install_command(tmp_path):
    run_cli("compare", "text", "--quick", "--out", str(tmp_path), env={"PATH": str(tmp_path)})
    report = (tmp_path / "report.md").read_text()
    assert "Skipped" in report and "sudo apt-get install apertium-eng-spa" in report
    assert not (tmp_path / "text").exists()  # nothing was trained


def test_compare_text_on_a_mix_of_corpora_scores_each_domain(tmp_path):
    from e2e.data.text_corpus import read_corpus

    for name in ("steel-sky", "tuxpaint"):
        try:
            read_corpus(name)
        except DatasetMissing as e:
            pytest.skip(f"{name} is not installed: {e.install}")
    sets = [o for o in TINY if not o.startswith("data.test_limit=")] + ["data.test_limit=20"]
    args = [a for o in sets for a in ("--set", o)]
    run_cli("compare", "text", "--data", "steel-sky+tuxpaint", "--quick", "--out",
            str(tmp_path), *args, env={"OMP_NUM_THREADS": "1"})
    report = (tmp_path / "report.md").read_text()
    assert "first 20 test pairs of each corpus" in report
    head = next(line for line in report.splitlines() if line.startswith("| test set | pairs |"))
    assert head.split("|")[3:-1] == [" end to end, 30 pairs ", " end to end, 90 pairs ",
                                     " end to end, 300 pairs ", " apertium eng-spa (rules) "]
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in report.splitlines()
            if line.startswith(("| Beneath a Steel Sky", "| Tux Paint"))}
    assert set(rows) == {"Beneath a Steel Sky dialogue (held-out stretches)",
                         "Tux Paint stamp sentences"}
    for cells in rows.values():
        assert cells[0].strip() == "20" and len(cells) == 5
        bleu, chrf = (float(x) for x in cells[-1].split("/"))  # apertium, on real sentences
        assert bleu > 5 and chrf > 20
    assert "The training mix" in report and "| steel-sky |" in report
