"""Speech: audio reading and corpora, the CTC guard and decoders, augmentation, bad input,
and a tiny espeak-ng corpus that trains end to end and transcribes."""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

import e2e
from e2e.data import asterisk
from e2e.data.audio import (
    VOCAB,
    Utterance,
    load_all,
    read_audio,
    read_corpus,
    read_manifest,
    resample,
)
from e2e.errors import DatasetMissing, E2EError
from e2e.tasks import get_task, load_config
from e2e.tasks.speech import synth as speech_synth
from e2e.tasks.speech.augment import augment, fft_size, telephone
from e2e.tasks.speech.config import SpeechAugment
from e2e.tasks.speech.ctc import Lexicon, beam_search, ctc_loss, encode, greedy
from tests.conftest import run_cli

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng not installed (bash setup.sh installs it)")


def tone(freq: float, rate: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, 1) if channels > 1 else x


def peak_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.argmax(spec) * rate / len(x))


# ---- audio reading, resampling, corpora ----

@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_resampling_keeps_duration_and_pitch(rate):
    x = resample(tone(440, rate), rate)
    assert len(x) == pytest.approx(8000, abs=2)  # 0.5 s at 16 kHz
    assert peak_hz(x, 16000) == pytest.approx(440, abs=4)


def test_stereo_is_downmixed_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, tone(1000, 44100, channels=2), 44100)
    x = read_audio(path)
    assert x.ndim == 1 and len(x) == pytest.approx(8000, abs=2)
    assert peak_hz(x, 16000) == pytest.approx(1000, abs=4)


def test_manifest_and_librispeech_parsing(tmp_path):
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "one.wav", tone(300, 8000), 8000)
    sf.write(tmp_path / "two.flac", tone(300, 16000), 16000)
    (tmp_path / "m.tsv").write_text("# comment\na/one.wav\tHello, World!\n\ntwo.flac\tIt's OK.\n")
    items = read_manifest(tmp_path / "m.tsv")
    assert items == [Utterance(tmp_path / "a" / "one.wav", "hello world"),
                     Utterance(tmp_path / "two.flac", "it's ok")]
    assert read_corpus(tmp_path) == items  # a folder: its manifests

    libri = tmp_path / "libri" / "19" / "198"
    libri.mkdir(parents=True)
    for uid in ("19-198-0000", "19-198-0001"):
        sf.write(libri / f"{uid}.flac", tone(200, 16000), 16000)
    (libri / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n"
                                            "19-198-0001 THIS LITTLE WORK\n")
    items = read_corpus(tmp_path / "libri")
    assert [u.text for u in items] == ["northanger abbey", "this little work"]
    assert items[1].path == libri / "19-198-0001.flac"


def test_manifest_errors_name_the_line(tmp_path):
    (tmp_path / "m.tsv").write_text("x.wav\tfine\ny.wav\tcall 911 now\n")
    with pytest.raises(E2EError, match=r"m\.tsv:2.*'1', '9'"):
        read_manifest(tmp_path / "m.tsv")
    (tmp_path / "m.tsv").write_text("no tab here\n")
    with pytest.raises(E2EError, match=r"m\.tsv:1.*path<TAB>transcript"):
        read_manifest(tmp_path / "m.tsv")
    (tmp_path / "libri").mkdir()
    (tmp_path / "libri" / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    with pytest.raises(E2EError, match=r"1-2\.trans\.txt:1.*1-2-0000\.flac"):
        read_corpus(tmp_path / "libri")


def test_corrupt_empty_and_missing_files(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    good = tmp_path / "good.wav"
    sf.write(good, tone(300, 16000), 16000)
    with pytest.raises(E2EError, match="notes.wav is not a readable audio file"):
        read_audio(bad)
    with pytest.raises(E2EError, match="does not exist"):
        read_audio(tmp_path / "nope.wav")
    items = [Utterance(p, "a") for p in (bad, empty, good)]
    with pytest.raises(E2EError, match="notes.wav.*data.skip_bad=true"):
        load_all(items)
    waves, kept, skipped = load_all(items, skip_bad=True)
    assert [u.path for u in kept] == [good] and len(skipped) == 2
    assert "empty.wav is empty" in skipped[1]
    assert waves[0].dtype == np.float32 and len(waves[0]) == 8000  # the one form of a clip


def test_missing_packages_print_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DatasetMissing, match="apt-get install -y espeak-ng"):
        speech_synth.build_corpus(tmp_path, 4)
    monkeypatch.setenv("E2E_ASTERISK_SOUNDS", str(tmp_path / "missing"))
    with pytest.raises(DatasetMissing, match="asterisk-core-sounds-en-wav asterisk-core-sounds-en"):
        asterisk.asterisk_set("digits")


@pytest.mark.skipif(not asterisk.installed(), reason="Asterisk prompts not installed")
def test_asterisk_sets():
    digits, letters = asterisk.asterisk_set("digits"), asterisk.asterisk_set("letters")
    assert len(letters) == 26 and {u.text for u in letters} == set("abcdefghijklmnopqrstuvwxyz")
    assert {"seven", "twenty", "thirteen", "zero"} <= {u.text for u in digits}
    assert len(read_audio(digits[0].path)) > 1000  # 8 kHz prompts come back at 16 kHz


# ---- the model ----

@pytest.mark.parametrize("subsample,fps", [(2, 50), (4, 25)])
def test_encoder_frame_rate_and_padding(subsample, fps):
    from e2e.tasks.speech.config import SpeechModelConfig
    from e2e.tasks.speech.model import SpeechRecognizer

    torch.manual_seed(0)
    model = SpeechRecognizer(len(VOCAB) + 1, SpeechModelConfig(subsample=subsample)).eval()
    x = 0.1 * torch.randn(2, 32_000)  # 2 s of audio; the first example is 1 s, then padding
    logits, lengths = model(x, torch.tensor([16_000, 32_000]))
    assert lengths.tolist() == [fps, 2 * fps] and logits.shape[1] == 2 * fps
    alone, _ = model(x[:1, :16_000], torch.tensor([16_000]))
    assert torch.allclose(alone[0], logits[0, :fps], atol=1e-4), "padding leaked in"


def test_masking_hides_whole_bands_and_spans_inside_the_utterance():
    from e2e.tasks.speech.config import SpeechModelConfig
    from e2e.tasks.speech.model import mask_bands_and_spans

    torch.manual_seed(0)
    m = SpeechModelConfig(freq_masks=2, freq_mask_width=10, time_masks=3, time_mask_fraction=0.1)
    lengths = torch.tensor([200, 100] * 32)
    zero = mask_bands_and_spans(torch.ones(64, 80, 200), lengths, m) == 0
    band, span = zero.all(2), zero.all(1)  # channels silent at every frame; frames silent
    assert torch.equal(zero, band[:, :, None] | span[:, None, :]), "a mask is not a band or span"
    assert band.sum(1).max() <= 2 * 10 and band.sum(1).float().mean() > 4
    assert span[0::2].sum(1).max() <= 3 * 20 and span[1::2].sum(1).max() <= 3 * 10
    assert not span[1::2, 100:].any(), "a span fell on padding"
    assert span.sum(1).float().mean() > 5


def test_masking_is_for_training_only():
    from e2e.tasks.speech.config import SpeechModelConfig
    from e2e.tasks.speech.model import SpeechRecognizer

    torch.manual_seed(0)
    plain = SpeechRecognizer(len(VOCAB) + 1, SpeechModelConfig(subsample=4))
    masked = SpeechRecognizer(len(VOCAB) + 1, SpeechModelConfig(subsample=4, freq_masks=2,
                                                                time_masks=2))
    masked.load_state_dict(plain.state_dict())
    x, lengths = 0.1 * torch.randn(2, 16_000), torch.tensor([16_000, 16_000])
    assert torch.equal(plain.eval()(x, lengths)[0], masked.eval()(x, lengths)[0])
    assert not torch.allclose(plain.train()(x, lengths)[0], masked.train()(x, lengths)[0])


# ---- CTC: loss guard and decoding ----

def test_ctc_length_guard_skips_instead_of_nan():
    vocab_n = len(VOCAB) + 1
    logits = torch.randn(3, 6, vocab_n, requires_grad=True)
    texts = ["hi", "hello", "abcdefg"]  # "hello" needs 6 frames (ll), "abcdefg" 7 > 6
    y = torch.nn.utils.rnn.pad_sequence([torch.tensor(encode(t, VOCAB)) for t in texts],
                                        batch_first=True)
    y_len = torch.tensor([len(t) for t in texts])
    loss, skipped = ctc_loss(logits, torch.tensor([6, 6, 6]), y, y_len)
    assert skipped == 1 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[2].abs().sum() == 0
    loss, skipped = ctc_loss(logits, torch.tensor([5, 1, 1]), y, y_len)  # "hello" no longer fits
    assert skipped == 2 and torch.isfinite(loss)
    loss, skipped = ctc_loss(logits, torch.tensor([1, 1, 1]), y, y_len)
    assert skipped == 3 and float(loss.detach()) == 0.0
    loss.backward()  # an all-skipped batch still has a graph


def test_ctc_loss_is_fp32_under_autocast():
    logits = torch.randn(2, 8, len(VOCAB) + 1).bfloat16()
    y = torch.tensor([encode("ab", VOCAB), encode("ba", VOCAB)])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = ctc_loss(logits, torch.tensor([8, 8]), y, torch.tensor([2, 2]))
    assert loss.dtype == torch.float32


def frames_for(text: str, vocab: str = VOCAB) -> torch.Tensor:
    """Peaked log-probabilities spelling `text` with a blank after every character."""
    ids = [i for c in text for i in (vocab.index(c) + 1, 0)]
    logp = torch.full((len(ids), len(vocab) + 1), -10.0)
    logp[torch.arange(len(ids)), ids] = 0.0
    return logp.log_softmax(-1)


def test_greedy_and_beam_agree_on_clear_input():
    logp = frames_for("see  you")
    assert greedy(logp[None], torch.tensor([len(logp)]), VOCAB) == ["see you"]
    assert beam_search(logp, VOCAB, beam=4) == "see you"


def test_lexicon_beam_only_spells_listed_words():
    logp = frames_for("sevan")  # a misspelling the acoustic model is sure of ...
    logp[5 * 2 - 4, VOCAB.index("e") + 1] = -1.0  # ... but "e" is its runner-up for the 'a'
    assert beam_search(logp, VOCAB, beam=8) == "sevan"
    assert beam_search(logp, VOCAB, beam=8, lexicon=Lexicon(["seven", "six"])) == "seven"


# ---- augmentation ----

def test_augmentation_shapes_and_effects():
    torch.manual_seed(0)
    x = torch.from_numpy(np.stack([tone(440, 16000, 1.0), tone(6000, 16000, 1.0)]))
    lengths = torch.tensor([16000, 12000])
    x[1, 12000:] = 0
    out, out_len = augment(x, lengths, SpeechAugment(p_speed=1.0, speed=(1.2, 1.2), p_pitch=0,
                                                     p_noise=0, p_telephone=0, p_reverb=0))
    assert out_len.tolist() == [13333, 10000] and out.shape == (2, 13333)
    assert out[1, 10000:].abs().max() == 0  # padding stays silent
    assert peak_hz(out[0, :13333].numpy(), 16000) == pytest.approx(528, abs=5)
    phone = telephone(x)
    assert phone[1].pow(2).mean() < 1e-4 * x[1].pow(2).mean()  # 6 kHz is above the line's band
    assert phone[0].pow(2).mean() == pytest.approx(float(x[0].pow(2).mean()), rel=0.01)
    noisy, _ = augment(x[:1], lengths[:1], SpeechAugment(p_speed=0, p_pitch=0, p_noise=1.0,
                                                         snr_db=(10, 10), p_telephone=0,
                                                         p_reverb=0, gain_db=(0, 0)))
    snr = 10 * math.log10(float(x[0].pow(2).sum() / (noisy[0] - x[0]).pow(2).sum()))
    assert snr == pytest.approx(10, abs=0.5)
    shifted, n = augment(x[:1], lengths[:1], SpeechAugment(p_speed=0, p_pitch=1.0,
                                                           semitones=(12, 12), p_noise=0,
                                                           p_telephone=0, p_reverb=0,
                                                           gain_db=(0, 0)))
    assert abs(int(n) - 16000) < 300  # tempo kept ...
    assert peak_hz(shifted[0].numpy(), 16000) == pytest.approx(880, abs=15)  # ... pitch doubled


def test_the_task_augments_with_the_configs_ranges():
    cfg = load_config(None, "speech", [
        "data.augment.p_noise=0", "data.augment.p_pitch=0", "data.augment.p_telephone=0",
        "data.augment.p_reverb=0", "data.augment.p_speed=1", "data.augment.speed=[1.25, 1.25]",
        "data.augment.gain_db=[0, 0]"])
    task = get_task("speech")
    x = torch.from_numpy(tone(440, 16000, 1.0).astype(np.float32))[None]  # as a batch holds it
    batch, info = {"x": x, "lengths": torch.tensor([16000])}, task.Info()
    assert task.prepare_batch(batch, True, cfg, info)["lengths"].tolist() == [12800]
    assert task.prepare_batch(batch, False, cfg, info)["lengths"].tolist() == [16000]
    cfg.data.augment.enabled = False  # the switch turns all of it off
    assert torch.equal(task.prepare_batch(batch, True, cfg, info)["x"], x)


def test_fft_sizes_are_the_smallest_5_smooth_lengths():
    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1
    for n in [*range(1, 400), 36_001, 160_003]:
        size = fft_size(n)
        assert size >= n and smooth(size)
        assert not any(smooth(m) for m in range(n, size)), n
    assert fft_size(36_001) == 36_450  # 2 * 3^6 * 5^2


# ---- end to end on a tiny espeak-ng corpus ----

@needs_espeak
def test_corpus_is_split_by_voice_and_reused(tmp_path):
    counts = speech_synth.build_corpus(tmp_path, 6, 3, 2, quiet=True)
    assert counts["rendered"] == 6 + 3 + 3 * 2
    again = speech_synth.build_corpus(tmp_path, 6, 3, 2, quiet=True)
    assert again["rendered"] == 0
    split = speech_synth.voice_split(speech_synth.variants())
    assert not set(split["test"]) & set(split["train"]) and not set(split["val"]) & \
        set(split["train"])
    jobs = speech_synth.plan(tmp_path, 6, 3, 2, seed=0)
    voices = {name: {j.voice.split("+")[1] for j, _ in items} for name, items in jobs.items()}
    assert voices["train"] <= set(split["train"]) and voices["test_digits"] <= set(split["test"])
    x, rate = sf.read(read_manifest(tmp_path / "train.tsv")[0].path)
    assert rate == 16000 and len(x) > 1600


@needs_espeak
def test_piper_voice_trains_only_and_sounds_like_several_speakers(tmp_path):
    base = speech_synth.plan(tmp_path, 40, 3, 4, seed=0, flite=0.2)
    mixed = speech_synth.plan(tmp_path, 40, 3, 4, seed=0, flite=0.2, piper=0.5)
    assert {k: v for k, v in mixed.items() if k != "train"} == \
        {k: v for k, v in base.items() if k != "train"}  # no test or validation set changes
    engine = lambda items: [j.voice.split(":")[0] if ":" in j.voice else "espeak"  # noqa: E731
                            for j, _ in items]
    assert [e == "flite" for e in engine(base["train"])] == \
        [e == "flite" for e in engine(mixed["train"])]  # flite keeps its utterances
    assert 8 <= engine(mixed["train"]).count("piper") <= 32
    assert [t for _, t in base["train"]] == [t for _, t in mixed["train"]]
    with pytest.raises(E2EError, match="at most 1"):
        speech_synth.plan(tmp_path, 4, 1, 1, seed=0, flite=0.6, piper=0.5)
    # Rendered for real: the job's pitch moves the voice's fundamental, its tempo stays.
    f0, seconds = {}, {}
    for pitch in (25, 75):
        job = speech_synth.Job(tmp_path / f"{pitch}.wav", "piper:joe", pitch, 175, "seven three")
        assert speech_synth.render(job)
        x, rate = sf.read(job.path)
        assert rate == 16000 and not list(tmp_path.glob("*.piper.wav"))
        f0[pitch], seconds[pitch] = median_f0(x, rate), len(x) / rate
    assert f0[75] > 1.25 * f0[25], f0  # 7 semitones apart: x1.5
    assert 0.3 < seconds[25] < 3 and 0.7 < seconds[75] / seconds[25] < 1.3, seconds


def median_f0(x: np.ndarray, rate: int) -> float:
    """Median autocorrelation pitch (60-400 Hz) of the louder 64 ms frames."""
    found = []
    for start in range(0, len(x) - 1024, 512):
        frame = x[start:start + 1024]
        if np.sqrt((frame ** 2).mean()) < 0.02:
            continue
        c = np.correlate(frame, frame, "full")[1023:]
        lo, hi = rate // 400, rate // 60
        found.append(rate / (lo + np.argmax(c[lo:hi])))
    return float(np.median(found))


@needs_espeak
def test_tiny_corpus_trains_and_transcribes(tmp_path):
    corpus, run = tmp_path / "corpus", tmp_path / "run"
    run_cli("data", "speech-synth", "--out", str(corpus), "--n", "32", "--n-val", "6",
            "--n-test", "6", "--kinds", "digits")
    results = e2e.train("speech", out=run, quiet=True, overrides=[
        f"data.corpus={corpus}", "data.n=32", "data.n_val=6", "data.n_test=6",
        "data.kinds=digits", "data.asterisk=false", "data.augment.enabled=false",
        "data.real=", "data.flite=0", "model.subsample=2", "model.dim=64",
        "model.layers=2", "model.filters=40", "model.beam_size=4", "train.max_steps=16",
        "train.batch_size=8", "train.eval_every=8", "train.lr=3e-3", "train.log_every=1"])
    with open(run / "metrics.csv") as f:
        losses = [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "train/loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"test/synth_digits_wer", "test/synth_digits_cer", "test/synth_digits_beam_wer"} \
        <= set(results)
    assert 0 <= results["test/synth_digits_cer"] <= 1.5
    wav = read_manifest(corpus / "test_digits.tsv")[0].path
    out = e2e.load(run).predict([str(wav), torch.zeros(16000)])
    assert set(out[0]["text"]) <= set(VOCAB) and out[0]["rtf"] > 0 and out[0]["seconds"] > 0
    assert out[1]["text"] == "" or set(out[1]["text"]) <= set(VOCAB)  # silence: no crash
    proc = run_cli("evaluate", str(run))
    assert f"test/synth_digits_wer: {results['test/synth_digits_wer']:.4f}" in proc.stdout
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....garbage")
    proc = run_cli("transcribe", str(run), str(wav), str(bad), check=False)
    assert f"{wav}: " in proc.stdout and "real-time factor" in proc.stdout
    assert proc.returncode == 1 and "bad.wav is not a readable audio file" in proc.stderr


@needs_espeak
def test_processes_rendering_one_corpus_at_once_do_not_trip_each_other(tmp_path):
    """`e2e train speech --nproc 2` on first use: every process renders the same files (each
    writes its own temporary file, then one atomic rename wins)."""
    import subprocess
    import sys

    code = ("import sys; from e2e.tasks.speech.synth import build_corpus; "
            "build_corpus(sys.argv[1], 12, 2, 2, workers=1, kinds=('words',), quiet=True)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()[-2000:]
    wavs = list((tmp_path / "wav").rglob("*.wav"))
    assert len(wavs) == 12 + 2 + 2 and not [w for w in wavs if w.name.startswith(".")]
    assert all(len(u.text.split()) == 1 for u in read_manifest(tmp_path / "train.tsv"))
