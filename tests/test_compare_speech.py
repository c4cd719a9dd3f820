"""Speech, end to end vs stepwise: the MFCC front end option, the MFCC + DTW isolated-word
recognizer, nested subsets, and `e2e compare speech` writing its report."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from conftest import run_cli

import e2e
from e2e.compare import CompareOptions
from e2e.data import asterisk
from e2e.data.audio import load_all, read_manifest
from e2e.errors import E2EError
from e2e.export import export_run
from e2e.stepwise.mfcc import CHANNELS, MfccFrontend, MfccSpeechTask, mfcc_features
from e2e.tasks import load_config
from e2e.tasks.speech import synth as speech_synth
from e2e.tasks.speech.info import SpeechInfo
from e2e.tasks.speech.model import LearnedFilterbank

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (bash setup.sh installs it)")
needs_asterisk = pytest.mark.skipif(not asterisk.installed(),
                                    reason="Asterisk prompts not installed (bash setup.sh)")


def test_mfcc_front_end_matches_the_learned_frame_rate_and_has_no_parameters():
    x = 0.1 * torch.randn(2, 24000)
    lengths = torch.tensor([24000, 16000])
    feats, frames = MfccFrontend()(x, lengths)
    learned = LearnedFilterbank(8, 8.0)(x, lengths)[1]
    assert feats.shape[1] == CHANNELS == 39
    assert (frames - learned).abs().max() <= 2  # both 100 frames/s
    assert feats[1, :, frames[1]:].abs().max() == 0  # padding stays zero
    assert torch.allclose(feats[1, :, :frames[1]],
                          torch.from_numpy(mfcc_features(x[1, :16000].numpy()).T))
    assert len(list(MfccFrontend().parameters())) == 0
    cfg = load_config(None, "speech-mfcc", ["model.dim=64"])
    model = MfccSpeechTask().build_model(cfg, SpeechInfo(vocab="x" * 28))
    assert not any(n.startswith("front.") for n, _ in model.named_parameters())
    logits, out_len = model(x, lengths)
    assert logits.shape[:2] == (2, int(out_len.max()))


def test_the_end_to_end_model_has_no_mfcc_front_end_key():
    with pytest.raises(E2EError, match="unknown key 'model.frontend'"):
        load_config(None, "speech", ["model.frontend=mfcc"])


@needs_espeak
def test_mfcc_model_trains_through_the_engine_and_refuses_export(tmp_path):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    results = e2e.train("speech-mfcc", out=run, quiet=True, overrides=[
        f"data.corpus={corpus}", "data.n=32", "data.n_val=4", "data.n_test=4",
        "data.kinds=digits", "data.asterisk=false", "data.augment.enabled=false",
        "data.real=", "data.flite=0", "model.subsample=2", "model.layers=2",
        "model.dim=64", "model.beam_size=1", "train.max_steps=16",
        "train.batch_size=8", "train.eval_every=16", "train.lr=3e-3", "train.log_every=1"])
    with open(run / "metrics.csv") as f:
        losses = [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "train/loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert (run / "gradflow.json").exists() and 0 <= results["test/cer"] <= 1.5
    with pytest.raises(E2EError, match="speech-mfcc model cannot be exported"):
        export_run(run)


@needs_espeak
@needs_asterisk
def test_dtw_recognizer_beats_chance_on_held_out_voices_and_a_human(tmp_path):
    from e2e.stepwise.mfcc_dtw import WORDS, DtwRecognizer, single_words, word_jobs

    train = single_words(tmp_path, "words_train", 2 * len(WORDS), "train")
    test = single_words(tmp_path, "words_test", len(WORDS), "test")
    assert [u.text for u in train[:3]] == WORDS[:3] and len({u.path for u in train}) == 112
    split = speech_synth.voice_split(speech_synth.variants())
    voices = {name: {j.voice.split("+")[1] for j, _ in word_jobs(tmp_path, name, 112, pool)}
              for name, pool in (("words_train", "train"), ("words_test", "test"))}
    assert voices["words_train"] <= set(split["train"])  # templates: training voices only
    assert voices["words_test"] <= set(split["test"])
    assert word_jobs(tmp_path, "words_train", 56, "train") == \
        word_jobs(tmp_path, "words_train", 112, "train")[:56]  # nested template subsets
    waves, kept, _ = load_all(train)
    recognizer = DtwRecognizer.fit(waves, [u.text for u in kept])
    test_waves, test_kept, _ = load_all(test)
    hyps, seconds = recognizer.transcribe(test_waves)
    errors = np.mean([h != u.text for h, u in zip(hyps, test_kept)])
    assert errors < 0.6  # chance is 55/56
    human = asterisk.asterisk_set("digits") + asterisk.asterisk_set("letters")
    human_waves, human_kept, _ = load_all(human)
    hyps, _ = recognizer.transcribe(human_waves)
    assert np.mean([h != u.text for h, u in zip(hyps, human_kept)]) < 0.95
    assert seconds < 1.0


@needs_espeak
def test_training_subsets_are_nested_prefixes(tmp_path):
    from e2e.stepwise.speech import plan

    small = speech_synth.plan(tmp_path, 20, 2, 2, seed=0)
    large = speech_synth.plan(tmp_path, 60, 2, 2, seed=0)
    assert small["train"] == large["train"][:20]
    assert {j.path for j, _ in large["train"]}.isdisjoint(
        {j.path for j, _ in large["val"] + large["test_digits"]})
    p = plan(CompareOptions(tmp_path, quick=True, fractions=(0.1, 0.3, 1.0),
                            overrides=[f"data.corpus={tmp_path}"]))
    assert p.sizes == p.template_sizes == [60, 180, 600]  # all three meet at each size
    assert p.cfg.train.time_limit > 0 and p.cfg.train.max_steps > 0


@needs_espeak
@needs_asterisk
def test_compare_speech_writes_the_report(tmp_path):
    corpus = tmp_path / "corpus"
    proc = run_cli("compare", "speech", "--quick", "--out", str(tmp_path / "report"),
                   "--set", f"data.corpus={corpus}", "--set", "data.n=40",
                   "--set", "data.n_val=4", "--set", "data.n_test=4",
                   "--set", "data.augment.enabled=false", "model.subsample=2",
                   "--set", "model.dim=32",
                   "--set", "model.layers=1", "--set", "model.beam_size=2",
                   "--set", "train.max_steps=2", "--set", "train.batch_size=8")
    report = (tmp_path / "report" / "report.md").read_text()
    for side in ("end to end (learned front end + conformer)", "stepwise: MFCC + same conformer",
                 "stepwise: MFCC + DTW templates"):
        assert f"| {side} |" in report
    assert "WER, asterisk digits+letters (lower is better)" in report
    from e2e.stepwise import pocketsphinx
    from e2e.stepwise.speech import POCKETSPHINX

    if pocketsphinx.installed():  # beside them, on the same clips, nothing trained
        assert f"| {POCKETSPHINX} | none (no learning) |" in report
    assert "Winner by training-set size" in report and "synth single words" in report
    assert (tmp_path / "report" / "speech_data_curve.png").stat().st_size > 5000
    assert "report:" in proc.stdout
    rows = [line.split("|") for line in report.splitlines()
            if line.startswith("| stepwise: MFCC + DTW")]
    main, notes = [r for r in rows if len(r) == 8], [r for r in rows if len(r) > 8]
    assert [r[2].strip() for r in main] == ["20", "40"]  # the same sizes as the networks
    # The notes table: WER on synthetic single words from held-out voices, 40 templates
    # (one per word for 40 of the 56 words); chance is 55/56.
    assert float(notes[-1][5]) < 0.8
    assert all(0 <= float(r[3]) for r in main)
    assert len(read_manifest(corpus / "train.tsv")) == 40


def test_pocketsphinx_is_a_row_of_the_comparison_on_the_same_word_sets(monkeypatch):
    """Its row: no training examples (pretrained elsewhere), WER on the Asterisk words from
    the transcripts pocketsphinx gave for those very clips."""
    from types import SimpleNamespace

    from e2e.stepwise import pocketsphinx
    from e2e.stepwise.speech import POCKETSPHINX, SETS, WordSets, score_pocketsphinx

    answers = {800: "one", 1600: "three", 2400: "a", 3200: "b"}  # by clip length

    def fake(clips, cache):
        return pocketsphinx.Result([answers[len(c)] for c in clips], 0.0,
                                   0.01 * len(clips), len(clips))
    monkeypatch.setattr(pocketsphinx, "transcribe_cached", fake)
    tests = WordSets.__new__(WordSets)
    z = lambda n: np.zeros(n, np.float32)  # noqa: E731
    tests.sets = {SETS[1]: ([z(800), z(1600)], ["one", "two"]), SETS[2]: ([z(2400)], ["a"]),
                  SETS[3]: ([z(3200)], ["c"])}
    row, scores, results = score_pocketsphinx(SimpleNamespace(real_clips=0), tests)
    assert (row.side, row.train_examples) == (POCKETSPHINX, 0)
    assert row.quality == pytest.approx(1 / 3) == scores[SETS[0]]  # "two" heard as "three"
    assert scores[SETS[3]] == 1.0 and results == {}
    assert row.infer_ms == pytest.approx(1000 * 0.03 / 3)  # decoding per Asterisk word
