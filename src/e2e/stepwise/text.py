"""`e2e compare text`: the Transformer, trained end to end, against systems that learn nothing.

- translation (`--data bible-en-es`, the default): KJV English -> Reina-Valera 1909 Spanish on
  the held-out books; the stepwise side is apertium's rule-based eng-spa pipeline. Quality is
  BLEU.
- summarization (`--data debian-descriptions`): long package description -> one-line summary
  on the held-out package-name stems; the stepwise side is the lead sentence and the most
  central sentence (`rule_based.py`). Quality is ROUGE-L.
- the general translator (`--data broad`): English -> Spanish over every corpus of
  e2e.data.text_corpus, against apertium; quality is BLEU over all test pairs, and the notes
  hold BLEU / chrF per domain (each corpus's held-out documents, and tuxpaint, never trained
  on) at every size, with the training mix.

The end-to-end side trains through `e2e.api.train` on nested prefixes of the training pairs
(`data.limit`), every size with the same wall-clock budget (`train.time_limit`) and step
budget (`train.max_steps`), so the curve shows what more data buys at a fixed cost. All rows
are scored by the same `e2e.tasks.text.metrics.score` on the same test pairs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from e2e import api
from e2e.config import Config, with_overrides
from e2e.errors import E2EError
from e2e.stepwise.report import CompareOptions, Comparison, Metric, Row, nested_sizes
from e2e.stepwise.rule_based import apertium, central_summaries, lead_summaries, require_apertium
from e2e.tasks import load_config
from e2e.tasks.text import metrics
from e2e.tasks.text.domains import from_results, label, score_parts
from e2e.tasks.text.task import read_corpora

# What the comparison trains, per corpus: named recipes (e2e/recipes/text/compare-*.yaml) sized
# to fit the budget on a CPU. Each size gets `train.time_limit` seconds and at most
# `train.max_steps`; on 2 CPU cores the time limit is what usually stops it, and the LR
# schedule follows the clock (train.schedule_by_time) so that it completes within the time
# either way.
# The corpus compared without --data: the Bible has a rule-based twin (apertium); the default
# recipe's two-domain mix has no single one.
SOURCE = "bible-en-es"


@dataclass(frozen=True)
class Setting:
    """How one corpus is compared."""

    metric: str  # the quality column: bleu or rougeL (as metrics.score names them)
    label: str  # its name in the report
    full: str  # named recipe for the full comparison (5 sizes, ~60 minutes)
    quick: str  # named recipe for --quick (3 sizes, ~12 minutes)


SETTINGS = {
    "bible-en-es": Setting("bleu", "test BLEU", "compare-bible", "compare-bible-quick"),
    "debian-descriptions": Setting("rougeL", "test ROUGE-L", "compare-summarize",
                                   "compare-summarize-quick"),
    "broad": Setting("bleu", "test BLEU", "compare-broad", "compare-broad-quick"),
}


def translates(source: str) -> bool:
    """Whether apertium is the counterpart: the Bible, the broad corpus or some of its
    corpora joined by "+" (compared with the broad presets, scored per corpus)."""
    from e2e.data.text_corpus import is_corpus_source

    return source == "bible-en-es" or is_corpus_source(source)
INFER_SAMPLE = 100  # test sources decoded once more, alone, to time the Transformer


def config(opts: CompareOptions) -> tuple[Config, Setting]:
    """The end-to-end config (preset, then the user's --data and --set) and its corpus setting."""
    source = compared_source(opts)
    # any of the broad corpus's corpora, or several joined by "+": the broad presets
    source_key = "broad" if translates(source) and source != "bible-en-es" else source
    if source_key not in SETTINGS:
        raise E2EError(f"e2e compare text has stepwise counterparts for {', '.join(SETTINGS)}"
                       f", not for '{source}' (a TSV of your own has no known rule-based or "
                       f"extractive twin); train on it with `e2e train text --data {source}`")
    setting = SETTINGS[source_key]
    preset = setting.quick if opts.quick else setting.full
    cfg = load_config(preset, "text", [f"data.source={source}", *opts.overrides])
    return cfg, setting


def compared_source(opts: CompareOptions) -> str:
    """--data, else a --set data.source, else SOURCE."""
    return opts.data or load_config(None, "text", [f"data.source={SOURCE}",
                                                   *opts.overrides]).data.source


def stepwise_systems(source: str) -> list[tuple[str, str, object]]:
    """(row name, size, function sources -> outputs) of the systems that learn nothing."""
    if translates(source):
        return [("stepwise: apertium eng-spa (rules)",
                 "hand-written rules + dictionaries", None)]
    return [("stepwise: lead sentence", "no parameters", lead_summaries),
            ("stepwise: most central sentence", "no parameters", central_summaries)]


def jobs(opts: CompareOptions) -> int:
    return len(opts.fractions) + len(stepwise_systems(compared_source(opts)))


def compare_text(opts: CompareOptions, bar: tqdm) -> Comparison:
    cfg, setting = config(opts)
    d = cfg.data
    if translates(d.source):
        require_apertium()  # before any training: a missing pair skips the whole comparison
    bar.set_description(f"text: reading {d.source}")
    mix: dict = {}
    corpora = read_corpora(d, mix)
    train = [pair for _, part, _, _ in corpora for pair in part]
    n_train = min(len(train), d.limit or len(train))  # the user's data.limit caps the curve
    # what TextTask.build_data keeps (the first data.test_limit of each corpus), so all rows
    # agree; a mix of corpora is scored on each one too
    tests = [(name, part[:d.test_limit or None]) for name, _, _, part in corpora]
    test = [pair for _, part in tests for pair in part]
    parts, start = {}, 0
    for name, part in tests:
        parts[name], start = (start, start + len(part)), start + len(part)
    sources, refs = [s for s, _ in test], [t for _, t in test]
    domains: dict[str, dict] = {}  # system -> corpus -> scores, for a mix of corpora
    sizes = nested_sizes(n_train, opts.fractions)
    rows, scores, steps = [], {}, {}

    for n in sizes:
        bar.set_description(f"text: end to end on {n:,} pairs")
        out = Path(opts.out) / "text" / f"e2e-{n}"
        r = api.train(config=with_overrides(cfg, f"data.limit={n}"), out=out, quiet=True)
        infer_ms = _transformer_ms(out, sources[:INFER_SAMPLE])
        name = "end to end (Transformer)"
        scores[f"{name}, {n:,} pairs"] = {k: r[f"test/{k}"] for k in ("bleu", "chrf", "rougeL")}
        steps[n] = (r["steps"], r["epochs"])
        if len(parts) > 1:
            domains[f"end to end, {n:,} pairs"] = from_results(r, parts)
        rows.append(Row(name, n, r[f"test/{setting.metric}"], r["train_seconds"], infer_ms,
                        f"{r['parameters']:,} parameters"))
        bar.update()
    bar.update(len(opts.fractions) - len(sizes))  # sizes that coincided on a tiny corpus

    for name, size, system in stepwise_systems(d.source):
        bar.set_description(f"text: {name}")
        if system is None:
            hyps, seconds = apertium(sources)
        else:
            started = time.time()
            hyps = system(sources)
            seconds = time.time() - started
        s = metrics.score(hyps, refs)
        scores[name] = s
        if len(parts) > 1:
            domains[name.removeprefix("stepwise: ")] = score_parts(hyps, refs, sources, parts)
        rows.append(Row(name, 0, s[setting.metric], 0.0, 1000 * seconds / len(sources), size))
        bar.update()
    text = notes(cfg, opts, n_train, len(test), rows, scores, steps)
    if domains:
        text += "\n\n" + "\n".join(domain_notes(domains, parts, mix))
    return Comparison(rows, text, Metric(setting.label, higher_is_better=True))


def domain_notes(domains: dict[str, dict], parts: dict[str, tuple[int, int]], mix: dict
                 ) -> list[str]:
    """BLEU / chrF of every system (columns) on every corpus's test pairs (rows), then the
    training mix of the broad corpus."""
    from e2e.data.text_corpus import mix_table

    unseen = mix.get("unseen", "")
    lines = ["Per domain, BLEU / chrF on each corpus's test pairs"
             + (f" ({unseen}: never trained on)" if unseen else "") + ":", "",
             "| test set | pairs | " + " | ".join(domains) + " |",
             "| --- | ---: |" + " ---: |" * len(domains)]
    for name, (a, b) in parts.items():
        cells = [f"{s[name]['bleu']:.2f} / {s[name]['chrf']:.2f}" for s in domains.values()]
        lines.append(f"| {label(name, unseen)} | {b - a:,} | " + " | ".join(cells) + " |")
    if mix:
        lines += ["", f"The training mix (shares by n^{mix['alpha']:g}; drawn for the largest "
                  "size, each smaller one trains on a prefix of it):", "", *mix_table(mix)]
    return lines


def _transformer_ms(run: Path, sources: list[str]) -> float:
    """Milliseconds per example to decode `sources` with the trained run (its test beam)."""
    model = api.load(run)
    started = time.time()
    model.predict(sources)
    return 1000 * (time.time() - started) / len(sources)


def notes(cfg: Config, opts: CompareOptions, n_train: int, n_test: int,
          rows: list[Row], scores: dict[str, dict], steps: dict[int, tuple]) -> str:
    d, m, t = cfg.data, cfg.model, cfg.train
    if translates(d.source) and d.source != "bible-en-es":
        unseen = d.unseen if d.source == "broad" else ""
        what = ("the broad corpus" if d.source == "broad" else
                "the corpora " + ", ".join(d.source.split("+")))
        data = (f"Data: English -> Spanish, {what} "
                f"(e2e.data.text_corpus), every corpus split by whole documents and sampled by "
                f"n^{d.mix_alpha:g}; {n_train:,} training pairs; the test pairs are each "
                f"corpus's held-out documents"
                + (f" and the whole of {unseen} (never trained on)" if unseen else "")
                + f", {n_test:,} of them")
        stepwise = ("Stepwise: apertium's eng-spa pipeline (morphological analysis, "
                    "part-of-speech tagging, rule-based structural transfer with a bilingual "
                    "dictionary, morphological generation), run as one batch over the test "
                    "sentences; its inference time is the batch wall time per sentence.")
    elif d.source == "bible-en-es":
        data = (f"Data: the Bible, KJV English -> Reina-Valera 1909 Spanish, by verse; "
                f"{n_train:,} training verses; the test verses are whole held-out books "
                f"({', '.join(d.test_books)}), {n_test:,} of them")
        stepwise = ("Stepwise: apertium's eng-spa pipeline (morphological analysis, "
                    "part-of-speech tagging, rule-based structural transfer with a bilingual "
                    "dictionary, morphological generation), run as one batch over the test "
                    "verses; its inference time is the batch wall time per verse.")
    else:
        data = (f"Data: Debian package descriptions, long description -> one-line summary; "
                f"{n_train:,} training pairs; test packages are held out by name stem "
                f"(no sibling package in training), {n_test:,} of them")
        stepwise = ("Stepwise: the lead sentence (first sentence of the long description) and "
                    "the most central sentence (the one whose words, stop words left out, have "
                    "the highest cosine similarity with the rest of the description); neither "
                    "learns anything.")
    if d.test_limit:
        data += (f" (only the first {d.test_limit:,} test pairs"
                 + (" of each corpus" if translates(d.source) and d.source != "bible-en-es"
                    else "")
                 + ": data.test_limit"
                 + (", set by --quick)" if opts.quick else ")"))
    budget = (f"End to end: an encoder-decoder Transformer (d_model {m.d_model}, "
              f"{m.encoder_layers}+{m.decoder_layers} layers, byte-level BPE of "
              f"{d.vocab_size:,} learned from each subset), trained through `e2e.api.train` "
              f"on nested prefixes of the training pairs (`data.limit`); every size gets the "
              f"same budget: train.time_limit={t.time_limit:g} s and train.max_steps="
              f"{t.max_steps} of {t.batch_size} pairs (whichever comes first"
              + ("; the LR schedule follows the clock" if t.schedule_by_time else "")
              + "), then "
              f"{'greedy decoding' if m.beam == 1 else f'beam {m.beam}'} on the test pairs. "
              f"Its inference time is decoding the first {min(INFER_SAMPLE, n_test)} test "
              f"sources again, alone.")
    cost = ("With its preset budgets (no --set) the quick comparison (`--quick`: a smaller "
            "model, 3 sizes) takes about 12 minutes on 2 CPU cores." if opts.quick else
            "With its preset budgets (no --set) the full comparison takes about an hour on 2 "
            "CPU cores.")
    e2e_rows = [r for r in rows if r.train_examples]
    fixed = [r for r in rows if not r.train_examples]
    best_e2e, best_fixed = max(e2e_rows, key=lambda r: r.quality), max(fixed,
                                                                      key=lambda r: r.quality)
    largest = max(steps)
    trained = (f"On {'all ' if largest == n_train else ''}{largest:,} pairs the budget bought "
               f"{steps[largest][0]} steps ({steps[largest][1]:g} passes over the data)."
               + ("" if largest == n_train else f" The largest size is {largest / n_train:.0%} "
                  f"of the {n_train:,} training pairs (--fractions)."))
    if best_e2e.quality > best_fixed.quality:
        verdict = (f"At this budget the end-to-end Transformer wins: {best_e2e.quality:.2f} "
                   f"({best_e2e.train_examples:,} pairs) against {best_fixed.quality:.2f} for "
                   f"{best_fixed.side[10:]}. {trained}")
    else:
        verdict = (f"At this budget the end-to-end side loses: its best is "
                   f"{best_e2e.quality:.2f} ({best_e2e.train_examples:,} pairs) against "
                   f"{best_fixed.quality:.2f} for {best_fixed.side[10:]}, which learns nothing. "
                   f"{trained}" + (" A Transformer of this size needs many passes over "
                   "the data before it translates or summarizes at all; a few minutes of CPU "
                   "buy far less (bench/text.py trains for 30-35 minutes), so this shows the "
                   "cost of learning everything from raw text, not its limit."
                   if 0 < t.time_limit < 1200 else ""))
    table = ["| system | BLEU | chrF | ROUGE-L |", "| --- | --- | --- | --- |"]
    table += [f"| {name} | {s['bleu']:.2f} | {s['chrf']:.2f} | {s['rougeL']:.2f} |"
              for name, s in scores.items()]
    signature = metrics.score(["-"], ["-"])["signature"]
    return "\n".join([f"{data}. {budget} {stepwise} {cost}", "", verdict, "",
                      f"All metrics on the same test pairs (sacrebleu: `{signature}`; "
                      f"ROUGE-L: rouge-score F-measure x 100):", "", *table])
