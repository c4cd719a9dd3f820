"""The second round of real speech sources on their installed files: Beneath a Steel Sky (RNC-1
unpacking, the Huffman-coded text in English and Spanish), Tux Paint, Hedgewars and KTuberling
(a few clips each, bad files counted), and pocketsphinx, the recognizer users would pick
instead."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from e2e.data import asterisk, hedgewars, ktuberling, speech_real, steel_sky, tuxpaint
from e2e.data.audio import Utterance, read_audio, read_samples, write_manifest, write_wav
from e2e.errors import E2EError
from e2e.stepwise import pocketsphinx

needs_sky = pytest.mark.skipif(not (steel_sky.game_dir() / "sky.dsk").exists(),
                               reason="beneath-a-steel-sky not installed (setup.sh)")
needs_tuxpaint = pytest.mark.skipif(not tuxpaint.stamps_dir().is_dir(),
                                    reason="tuxpaint-stamps-default not installed (setup.sh)")
needs_hedgewars = pytest.mark.skipif(not hedgewars.voices_dir().is_dir(),
                                     reason="hedgewars-data not installed (setup.sh)")
needs_ktuberling = pytest.mark.skipif(not (ktuberling.sounds_dir() / "en.soundtheme").exists(),
                                      reason="ktuberling-data not installed (setup.sh)")
needs_pocketsphinx = pytest.mark.skipif(
    not pocketsphinx.installed() or not asterisk.installed(),
    reason="pocketsphinx, pocketsphinx-en-us or the Asterisk prompts not installed (setup.sh)")


@pytest.fixture(scope="module")
def sky() -> steel_sky.Disk:
    return steel_sky.Disk()


@needs_sky
def test_steel_sky_text_in_english_and_spanish(sky):
    en, es = sky.texts(steel_sky.ENGLISH), sky.texts(steel_sky.SPANISH)
    assert en[8200] == "OUTRAGEOUS! I've not been notified!"
    assert es[8200] == "¡QUE ULTRAJE! ¡No he sido notificado!"
    assert en[4380] == "Who the HELL is `OVERMANN'?"
    assert es[4380] == '¿Quién DEMONIOS es "OVERMANN"?'  # the font's + is é, ` a quote
    assert es[8395] == 'Está en la posición de "ENCENDIDO"...'  # < is á, 0x88 ó
    pairs = {t: (e, s) for t, e, s in steel_sky.translations(sky)}
    assert len(pairs) > 4000 and pairs[8200][1].startswith("¡QUE")


@needs_sky
def test_steel_sky_speech_unpacks_with_matching_crc(sky):
    clips = {c.text_no: c for c in sky.clips()}
    assert len(clips) > 3000 and len({c.speaker for c in clips.values()}) == 8
    c = clips[22]
    assert (c.text, c.file_no, steel_sky.text_of_speech(c.file_no)) == (
        "I'd know it ANYWHERE!", 50022, 22)
    raw, _ = sky.raw(c.file_no)
    (total,) = struct.unpack("<H", raw[12:14])
    x, rate = sky.audio(22)  # rnc_unpack checks both CRC-16s and the unpacked length
    assert rate == 11025 and len(x) == total - steel_sky.HEADER
    assert 0.8 < len(x) / rate < 3 and np.abs(x).max() > 0.2 and abs(float(x.mean())) < 0.05
    # A flipped byte in the packed bits is caught by the packed data's CRC
    packed = bytearray(raw[steel_sky.HEADER:])
    packed[100] ^= 0xFF
    with pytest.raises(E2EError, match="CRC-16"):
        steel_sky.rnc_unpack(bytes(packed), "file 50022")
    assert steel_sky.spoken_text("Who the HELL is `OVERMANN'?").split() == [
        "Who", "the", "HELL", "is", "OVERMANN", "?"]


def test_steel_sky_missing_is_named(tmp_path):
    with pytest.raises(E2EError, match="sky.dnr"):
        steel_sky.Disk(tmp_path)


@needs_tuxpaint
def test_tuxpaint_letters_digits_and_descriptions():
    clips = tuxpaint.clips()
    by_text = {(c.speaker, c.text): c for c in clips}
    assert {c.speaker for c in clips} == {"en_gb", "en", "desc"}
    assert sum(c.speaker == "en_gb" and len(c.text) == 1 for c in clips) == 26  # a..z, once
    assert ("en", "Seven.") in by_text and ("en_gb", "Seven.") in by_text
    owl = next(c for c in clips if c.path.name == "owl_desc.ogg")
    assert owl.text == "An owl."
    for c in (by_text[("en_gb", "a")], by_text[("en", "Seven.")], owl):
        x, rate = read_samples(c.path)
        assert 0.2 < len(x) / rate < 4 and np.abs(x).max() > 0.05


@needs_hedgewars
def test_hedgewars_phrases_from_file_names():
    clips = hedgewars.clips()
    assert len({c.speaker for c in clips}) == 10 and len(clips) > 400
    texts = {(c.speaker, c.path.stem): c.text for c in clips}
    assert texts[("british", "Illgetyou")] == "I'll get you"
    assert not any(c.path.stem.startswith(("Ow", "Jump", "Laugh")) for c in clips)
    x, rate = read_samples(next(c.path for c in clips if c.path.stem == "Takecover"))
    assert 0.3 < len(x) / rate < 4


@needs_ktuberling
def test_ktuberling_words():
    clips = ktuberling.clips()
    words = {c.text for c in clips}
    assert len(clips) >= 65 and {"palm tree", "broccoli", "umbrella"} <= words
    assert "ufo" not in words
    x, rate = read_samples(next(c.path for c in clips if c.text == "umbrella"))
    assert 0.3 < len(x) / rate < 3


@needs_hedgewars
def test_extraction_counts_a_corrupt_voice_clip(tmp_path, monkeypatch):
    pack = tmp_path / "voices" / "British"
    pack.mkdir(parents=True)
    shutil.copy(hedgewars.voices_dir() / "British" / "Hello.ogg", pack / "Hello.ogg")
    (pack / "Coward.ogg").write_bytes(b"OggS" + bytes(300))  # named like a phrase, not audio
    (pack / "Laugh.ogg").write_bytes(b"not a phrase: never read")
    monkeypatch.setenv("E2E_HEDGEWARS", str(tmp_path / "voices"))
    with pytest.raises(E2EError, match="Coward.ogg.*--skip-bad"):
        speech_real.extract_corpus("hedgewars", tmp_path / "a")
    counts = speech_real.extract_corpus("hedgewars", tmp_path / "b", skip_bad=True)
    assert counts == {"kept": 1, "text": 0, "bad": 1, "short": 0}
    assert "Coward.ogg" in (tmp_path / "b" / "skipped.txt").read_text()
    wav = tmp_path / "b" / "hedgewars" / "british" / "Hello.wav"
    assert sf.info(str(wav)).samplerate == 16000
    # A rerun after an interruption keeps what was written (the manifest is written last)
    (tmp_path / "b" / "hedgewars.tsv").unlink()
    stamp = wav.stat().st_mtime_ns
    speech_real.extract_corpus("hedgewars", tmp_path / "b", skip_bad=True)
    assert wav.stat().st_mtime_ns == stamp


def test_corpora_without_voices_to_hold_out_train_whole(tmp_path):
    """KTuberling has one voice; Steel Sky's "speakers" are parts of the game, each with the
    hero in it: neither yields a held-out set free of training voices."""
    from e2e.tasks.speech.config import SpeechDataConfig
    from e2e.tasks.speech.mix import real_splits

    for corpus, speakers in (("ktuberling", ["en"] * 3), ("steelsky", ["s0", "s1", "s2"])):
        (tmp_path / corpus).mkdir()
        items = []
        for i, (word, who) in enumerate(zip(["ball", "hat", "nose"], speakers)):
            write_wav(tmp_path / corpus / f"{i}.wav", np.zeros(4000, np.float32))
            items.append(Utterance(tmp_path / corpus / f"{i}.wav", word, who))
        write_manifest(tmp_path / f"{corpus}.tsv", items)
    d = SpeechDataConfig()
    d.real, d.real_train, d.real_unseen = str(tmp_path), "ktuberling,steelsky", ""
    train, val, tests, facts = real_splits(d)
    assert [u.text for u in train] == ["ball", "hat", "nose"] * 2 and not val and not tests
    assert facts["speakers"]["steelsky"]["train"] == ["s0", "s1", "s2"]


def test_pocketsphinx_hypothesis_lines():
    hyp = "three (u000001 -3862)\n<s> one(2) [noise] </s> (u000000 -4100)\n"
    assert pocketsphinx.read_hypotheses(hyp, 3) == ["one", "three", ""]
    assert pocketsphinx.score(["one two"], [""]) == {"wer": 1.0, "cer": 1.0}


@needs_pocketsphinx
def test_pocketsphinx_transcribes_asterisk_number_words():
    folder = asterisk.sounds_dir() / "digits"
    waves = [read_audio(folder / f"{n}.wav") for n in ("3", "20")]
    r = pocketsphinx.transcribe(waves)
    assert r.texts == ["three", "twenty"]
    assert 0 < r.rtf < 2 and r.audio_seconds == pytest.approx(sum(map(len, waves)) / 16000)


def test_speech_real_knows_every_new_corpus():
    assert {"steelsky", "tuxpaint", "hedgewars", "ktuberling"} <= set(speech_real.CORPORA)
    assert set(speech_real.READERS) == set(speech_real.CORPORA)
    licenses = speech_real.licenses()
    assert all(f"- {name}:" in licenses for name in speech_real.CORPORA)


def test_pocketsphinx_transcripts_are_cached_by_samples_and_model(tmp_path, monkeypatch):
    """A clip decoded once is not decoded again; a new clip or another model is; a torn last
    line of the cache (a killed run) is decoded again, not an error."""
    decoded: list[int] = []

    def fake(clips):
        decoded.append(len(clips))
        texts = [f"clip {'x' * (len(c) // 1600)}" for c in clips]
        return pocketsphinx.Result(texts, 1.0, 0.5 * sum(map(len, clips)) / 16000,
                                   sum(map(len, clips)) / 16000)
    monkeypatch.setattr(pocketsphinx, "transcribe", fake)
    monkeypatch.setattr(pocketsphinx, "installed", lambda: True)
    monkeypatch.setattr(pocketsphinx, "fingerprint", lambda: "model-a")
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(1600 * k)).astype(np.float32) for k in (1, 2, 3)]
    cache = tmp_path / "cache" / "transcripts.jsonl"
    first = pocketsphinx.transcribe_cached(waves, cache)
    assert decoded == [3] and first.reused == 0 and first.texts[2] == "clip xxx"
    again = pocketsphinx.transcribe_cached(waves[::-1], cache)
    assert decoded == [3] and again.reused == 3 and again.texts == first.texts[::-1]
    assert again.rtf == pytest.approx(0.5)  # each clip keeps its share of the decoding time
    with open(cache, "a") as f:
        f.write('{"key": "torn')
    more = pocketsphinx.transcribe_cached(waves + [np.zeros(8000, np.float32)], cache)
    assert decoded == [3, 1] and more.reused == 3
    monkeypatch.setattr(pocketsphinx, "fingerprint", lambda: "model-b")
    pocketsphinx.transcribe_cached(waves[:1], cache)
    assert decoded == [3, 1, 1]  # another recognizer: its own transcripts
