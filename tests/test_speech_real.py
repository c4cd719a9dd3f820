"""Real human speech: the game-corpus readers on a handful of real clips, extraction with bad
input, the split by speaker, the word bigram LM beam, and the telephone channel's mu-law."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from e2e.data import amazon_queen, drascula, speech_real, warzone
from e2e.data.audio import Utterance, read_manifest
from e2e.errors import E2EError
from e2e.tasks.speech.augment import mu_law, telephone
from e2e.tasks.speech.ctc import BigramLM, Lexicon, beam_search
from e2e.tasks.speech.mix import split_by_speaker

needs_queen = pytest.mark.skipif(not amazon_queen.archive().exists(),
                                 reason="flight-of-the-amazon-queen not installed (setup.sh)")
needs_drascula = pytest.mark.skipif(not drascula.dat_file().exists() or
                                    not drascula.clips_dir().is_dir(),
                                    reason="drascula not installed (setup.sh)")
needs_warzone = pytest.mark.skipif(not warzone.archive().exists(),
                                   reason="warzone2100-data not installed (setup.sh)")


@needs_queen
def test_queen_table_dialogue_and_mp3_clips():
    a = amazon_queen.Archive()
    assert sum(n.endswith(".SB") for n in a.table) > 6000
    clips = a.clips()
    assert len(clips) > 3500  # the issue: ~3,620 clips matched to text through .DOG files
    by_name = {c.name: c for c in clips}
    first = by_name["020001P2"]  # AND1.DOG: Anderson taunts Joe
    assert first.speaker == "AND" and "paper bag" in first.text
    assert by_name["020006J1"].speaker == "JOE"
    # A handful of real clips decode, at 11,025 Hz, and longer lines take longer to say.
    picks = sorted(clips, key=lambda c: len(c.text))
    short, long = picks[50], picks[-50]
    (xs, rate), (xl, _) = a.audio(short.name), a.audio(long.name)
    assert rate == 11025 and 0.2 < len(xs) / rate < len(xl) / rate
    assert np.abs(xl).max() > 0.05  # speech, not silence


@needs_queen
def test_queen_cutaway_jas_and_opening_lines():
    a = amazon_queen.Archive()
    by_name = {c.name: c for c in a.clips()}
    # QUEEN2.JAS: Joe's response 5, and description 7 in two segments (split at *14)
    assert by_name["JOE00051"].text == "Why the heck would I want that?"
    assert by_name["JOE00471"].text == "There's a label that reads:"
    assert by_name["JOE00472"].text == '"Antidote for Super Soldier Serum"'
    assert by_name["JOE00472"].source == "JAS" and by_name["JOE00472"].speaker == "JOE"
    # Cutaways: object 6 of C26A (the chef), object 5 of C13D (Joe)
    chef = by_name["C26A_061"]
    assert (chef.text, chef.speaker, chef.source) == ("This is just what I need!", "CHEF", "CUT")
    assert (by_name["C13D_051"].text, by_name["C13D_051"].speaker) == ("Sorry.", "JOE")
    # A reused object ("note") speaks for several people in C41B: no certain speaker, left out
    assert "C41B_381" not in by_name
    # Dialogue files' opening and meeting-again lines
    assert by_name["04SSSSJ1"].text == "Hey, I know you don't I?"
    assert by_name["04XXXXP1"].speaker == "APE"
    assert len(a.clips()) > 6000 > len(a.clips(("DOG",)))


def test_queen_segments_split_at_stage_directions():
    assert amazon_queen.segments("Hello there*FL How are you?") == ["Hello there",
                                                                     " How are you?"]
    assert amazon_queen.segments("*XY00(237,112)Come here") == ["", "Come here"]


def test_queen_rejects_a_file_that_is_not_the_archive(tmp_path):
    bad = tmp_path / "queen.1c"
    bad.write_bytes(b"not an archive at all")
    with pytest.raises(E2EError, match="QTBL"):
        amazon_queen.Archive(bad)


@needs_drascula
def test_drascula_lines_and_raw_clips():
    texts = drascula.read_texts(drascula.dat_file())
    assert texts[""][1] == "THAT'S THE SECOND BIGGEST DOOR I'VE SEEN IN MY LIFE"
    assert texts["D"][1].startswith("HEY IGOR")
    clips = drascula.clips()
    assert len(clips) > 700 and len({c.speaker for c in clips}) >= 10
    x, rate = drascula.read_als(clips[0].path)
    assert rate == 11025 and 1.0 < len(x) / rate < 10 and x.min() >= -1 and x.max() < 1


@needs_warzone
def test_warzone_transcripts_from_cfg_and_tutorial():
    a = warzone.Archive()
    clips = {c.member.rsplit("/", 1)[-1]: c for c in a.clips()}
    assert len(clips) > 250
    assert clips["tut1.ogg"].text.startswith("In this training session")
    assert clips["pcv335.ogg"].text == "Construction Started"
    assert not any("/sfx/" in c.member for c in clips.values())
    x, rate = a.audio(clips["tut1.ogg"].member)
    assert rate > 8000 and len(x) / rate > 1.0


def _reader(items):
    """A corpus reader over the given (where, text, speaker, loader) items."""
    return lambda: iter(items)


def test_extraction_writes_wavs_manifest_and_skips_bad_input(tmp_path, monkeypatch):
    good = tmp_path / "good.wav"
    sf.write(good, 0.3 * np.sin(np.arange(11025) / 5).astype(np.float32), 11025)
    corrupt = tmp_path / "corrupt.ogg"
    corrupt.write_bytes(b"OggS" + bytes(200))

    def load(path):
        def f():
            try:
                return sf.read(str(path), dtype="float32")
            except Exception as e:  # noqa: BLE001 - soundfile's errors vary
                raise E2EError(f"{path}: does not decode ({e})") from None
        return f
    items = [("src:1", "Hello, world!", "ann", load(good)),
             ("src:2", "Room 512 please", "ann", load(good)),  # digits: outside the vocabulary
             ("src:3", "Broken clip", "bob", load(corrupt)),
             ("src:4", "Empty clip", "bob", lambda: (np.zeros(0, np.float32), 11025))]
    monkeypatch.setitem(speech_real.READERS, "warzone", _reader(items))
    with pytest.raises(E2EError, match="corrupt.ogg.*--skip-bad"):
        speech_real.extract_corpus("warzone", tmp_path / "a")  # no manifest left behind
    assert not (tmp_path / "a" / "warzone.tsv").exists()
    counts = speech_real.extract_corpus("warzone", tmp_path / "b", skip_bad=True)
    assert counts == {"kept": 1, "text": 1, "bad": 2, "short": 0}
    (kept,) = read_manifest(tmp_path / "b" / "warzone.tsv")
    assert kept.text == "hello world" and kept.speaker == "ann"
    assert sf.info(str(kept.path)).samplerate == 16000
    log = (tmp_path / "b" / "skipped.txt").read_text()
    assert "src:2" in log and "corrupt.ogg" in log and "src:4 is empty" in log


def test_split_by_speaker_keeps_voices_apart():
    items = [Utterance(Path(f"{s}{i}.wav"), "hi", s)
             for s, n in [("hero", 50), ("a", 10), ("b", 10), ("c", 10), ("d", 10), ("e", 10)]
             for i in range(n)]
    train, val, test = split_by_speaker(items, 0.1, 0.1, seed=0)
    spk = [{u.speaker for u in part} for part in (train, val, test)]
    assert "hero" in spk[0] and spk[1] and spk[2]
    assert not (spk[0] & spk[1]) and not (spk[0] & spk[2]) and not (spk[1] & spk[2])
    assert len(train) + len(val) + len(test) == len(items)
    with pytest.raises(E2EError, match="too few"):
        split_by_speaker(items[:60], 0.1, 0.1, seed=0)


def _frames(text: str, vocab: str, blur: dict[int, tuple[str, str]]) -> torch.Tensor:
    """Log-probs spelling `text` (blank between characters); at character positions in
    `blur` the two given letters are equally likely."""
    rows = []
    for i, ch in enumerate(text):
        p = torch.full((len(vocab) + 1,), 1e-4)
        if i in blur:
            for c in blur[i]:
                p[vocab.index(c) + 1] = 0.5
        else:
            p[vocab.index(ch) + 1] = 1.0
        rows.append(p)
        blank = torch.full((len(vocab) + 1,), 1e-4)
        blank[0] = 1.0
        rows.append(blank)
    return torch.stack(rows).log_softmax(-1)


def test_word_bigram_lm_settles_what_the_acoustics_leave_open():
    vocab = " abcdefghijklmnopqrstuvwxyz'"
    # "the cat" vs "the hat": the first letter of the second word is a coin toss.
    logp = _frames("the hat", vocab, {4: ("c", "h")})
    words = Lexicon(["the", "cat", "hat"])
    lm_cat = BigramLM(BigramLM.count(["the cat sleeps", "the cat"] * 5 + ["a hat"]))
    lm_hat = BigramLM(BigramLM.count(["the hat fits", "the hat"] * 5 + ["a cat"]))
    assert beam_search(logp, vocab, 8, words, lm=lm_cat) == "the cat"
    assert beam_search(logp, vocab, 8, words, lm=lm_hat) == "the hat"
    assert lm_cat.logp("the", "cat") > lm_cat.logp("the", "hat") > -math.inf


def test_telephone_channel_is_band_limited_and_mu_law_coded():
    t = torch.arange(16000) / 16000
    x = (0.3 * torch.sin(2 * math.pi * 440 * t) + 0.2 * torch.sin(2 * math.pi * 6000 * t))[None]
    y = telephone(x)
    spec = torch.fft.rfft(y[0]).abs()
    assert spec[6000] < 0.05 * spec[440]  # the 6 kHz tone is gone, 440 Hz stays
    assert len(torch.unique(mu_law(x))) <= 256  # 8 bits a sample
    err = (mu_law(x) - x).abs().max()
    assert 0 < err < 0.02  # coding noise, small at these levels


def test_a_corrupt_mp3_clip_is_named(tmp_path):
    """A QTBL archive whose one clip is not MP3: reading it names the archive and the clip."""
    import struct

    name = b"020001P1.SB".ljust(12, b"\0")
    header_len = 15 + 21
    garbage = bytes(range(256)) * 4
    data = (b"QTBL" + b"CEM10\0" + b"\0\0" + b"\x01" + struct.pack(">H", 1) +
            name + b"\x01" + struct.pack(">II", header_len, len(garbage)) + garbage)
    path = tmp_path / "queen.1c"
    path.write_bytes(data)
    a = amazon_queen.Archive(path)
    assert a.table == {"020001P1.SB": (header_len, len(garbage))}
    with pytest.raises(E2EError, match=r"queen\.1c:020001P1\.SB: MP3 clip does not decode"):
        a.audio("020001P1")


@needs_warzone
@needs_drascula
def test_real_mix_splits_by_speaker_and_keeps_the_unseen_corpus_out(tmp_path, monkeypatch):
    """The mix from real clips (the first ones of Warzone and Drascula, extracted into
    tmp_path): held-out voices only in test/val, the unseen corpus only in test."""
    from itertools import islice

    from e2e.tasks.speech.mix import real_splits
    from e2e.tasks.speech.task import SpeechDataConfig

    for name, n in (("warzone", 120), ("drascula", 12)):
        reader = speech_real.READERS[name]
        monkeypatch.setitem(speech_real.READERS, name, lambda r=reader, n=n: islice(r(), n))
    d = SpeechDataConfig(real=str(tmp_path), real_train="warzone", real_unseen="drascula",
                   real_val_fraction=0.1, real_test_fraction=0.15, max_test=50)
    train, val, tests, facts = real_splits(d)
    assert set(tests) == {"warzone_heldout", "drascula"} and len(tests["drascula"]) == 12
    spk = facts["speakers"]["warzone"]
    assert spk["test"] and spk["val"] and not set(spk["train"]) & set(spk["test"] + spk["val"])
    assert {u.speaker for u in tests["warzone_heldout"]} <= set(spk["test"])
    trained = {u.path for u in train}
    assert not trained & {u.path for u in tests["drascula"]}
    assert all("drascula" not in str(p) for p in trained) and len(train) > 40
    assert (tmp_path / "LICENSES.md").read_text().count("- ") == len(speech_real.CORPORA)
    # data.real_n: nested subsets of the same training clips (the compare's data curve)
    few, more = (real_splits(SpeechDataConfig(**{**vars(d), "real_n": k}))[0] for k in (10, 30))
    assert len(few) == 10 and few == more[:10] and {u.path for u in more} <= trained
    # ... which `e2e compare speech` trains on, the same fraction of real and synthetic
    from e2e.stepwise.report import CompareOptions
    from e2e.stepwise.speech import plan

    p = plan(CompareOptions(tmp_path / "cmp", fractions=(0.5, 1.0), overrides=[
        f"data.real={tmp_path}", "data.real_train=warzone", "data.real_unseen=drascula",
        "data.real_val_fraction=0.1", "data.real_test_fraction=0.15", "data.max_test=50",
        "data.n=100"]))
    assert p.real_clips == len(train) and p.cfg.data.real_n == 0  # the recipe's mix, in full
    assert p.parts == [(50, round(len(train) / 2)), (100, len(train))]
    assert p.sizes == [a + b for a, b in p.parts] and p.cfg.train.time_limit > 0
    with pytest.raises(E2EError, match="overlaps"):
        real_splits(SpeechDataConfig(real=str(tmp_path), real_train="warzone",
                               real_unseen="warzone"))
