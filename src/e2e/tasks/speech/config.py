"""The speech application's settings: the `data` and `model` sections of its config and its
training recipe. These defaults ARE the measured recipe (bench/speech.py): real voice acting
(Flight of the Amazon Queen + Warzone 2100, held-out speakers for test) mixed with synthetic
voices (espeak-ng + flite), waveform augmentation with the telephone channel, a 4-layer
conformer at 25 frames/s. Named variants are overlays in e2e/recipes/speech/. Nothing here
imports torch, so `e2e config` answers at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from e2e.config import Config, TrainConfig


@dataclass
class SpeechAugment:
    """Waveform augmentation of training batches (e2e.tasks.speech.augment): each example
    draws its own parameters from these ranges, every batch anew."""

    enabled: bool = True
    p_noise: float = 0.5  # white or pink noise ...
    snr_db: tuple[float, float] = (5.0, 30.0)  # ... at a signal-to-noise ratio from this range
    p_speed: float = 0.5
    speed: tuple[float, float] = (0.85, 1.15)  # tempo factors (pitch moves with the tempo)
    # pitch shifts (phase vocoder): off, since speed changes and many voices vary pitch already
    p_pitch: float = 0.0
    semitones: tuple[float, float] = (-3.0, 3.0)  # pitch shifts drawn from this range
    gain_db: tuple[float, float] = (-12.0, 6.0)  # every example's level, in dB
    p_telephone: float = 0.4  # band-limit to 4 kHz and mu-law code, as an 8 kHz phone line does
    p_reverb: float = 0.2  # an exponentially decaying noise impulse response

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "p_noise": "[0, 1]", "snr_db": "[-20, 100]", "p_speed": "[0, 1]", "speed": "[0.5, 2]",
        "p_pitch": "[0, 1]", "semitones": "[-12, 12]", "gain_db": "[-60, 20]",
        "p_telephone": "[0, 1]", "p_reverb": "[0, 1]"}


@dataclass
class SpeechDataConfig:
    source: str = "synth"  # synth | PATH (manifest TSV, folder of manifests, LibriSpeech-style)
    corpus: str = ""  # synth: where the corpus lives; "" = $E2E_DATA/speech-synth
    n: int = 3000  # synth: training utterances
    n_val: int = 150  # synth: validation utterances (their own voices)
    n_test: int = 150  # synth: test utterances per kind
    # synth: which kinds of text (comma-separated); `words` = one word alone (a number word, a
    # letter's name or a word of the sentence grammar), so that a one-word clip gets one word
    kinds: str = "digits,letters,sentences"
    asterisk: bool = True  # add the Asterisk human test sets (a note says how to install them)
    val_fraction: float = 0.1  # PATH sources: held out for validation
    test_fraction: float = 0.1  # PATH sources: held out for testing
    split_seed: int = 0
    skip_bad: bool = False  # skip (and count) unreadable audio files instead of failing
    augment: SpeechAugment = field(default_factory=SpeechAugment)
    flite: float = 0.2  # synth: fraction of utterances by flite voices instead of espeak-ng
    piper: float = 0.0  # synth: fraction by piper-tts's neural voice (training only)
    # Real human speech (e2e.tasks.speech.mix): a folder that `e2e data speech-real` fills
    # (extracted on first use), "auto" = $E2E_DATA/speech-real, "" = none.
    real: str = "auto"
    real_train: str = "queen,warzone"  # trained on, except held-out speakers
    real_unseen: str = "drascula"  # test only: a whole corpus never trained on
    real_val_fraction: float = 0.05  # of each training corpus's clips, by speaker
    real_test_fraction: float = 0.12
    # train on the first real_n of the real training clips in one fixed shuffle (0 = all):
    # smaller sets are nested in larger ones (`e2e compare speech`'s data curve)
    real_n: int = 0
    # train on the shortest prefix of that shuffle that holds this share of the real training
    # hours (1 = all): nested too; bench/speech.py's data curve sets it (0.25, 0.5, 1)
    real_fraction: float = 1.0
    # whole speakers of training corpora held out as test-only sets, `corpus:speaker,...`
    # (test set `<corpus>_<speaker>`): a voice and recording set never heard in training
    real_holdout: str = ""
    # training clips of a corpus seen k times per epoch, `corpus:k,...` (each copy augmented
    # anew): weight for the few real isolated words and letters among hours of sentences
    real_repeat: str = ""
    max_test: int = 200  # clips per real test set (a fixed random subset; val gets half)
    max_seconds: float = 10.0  # longer training clips are dropped (counted in report.md)

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "n": "[1, inf)", "n_val": "[1, inf)", "n_test": "[1, inf)", "val_fraction": "(0, 1)",
        "test_fraction": "(0, 1)", "split_seed": "[0, inf)",
        "flite": "[0, 1]", "piper": "[0, 1]", "real_val_fraction": "(0, 1)",
        "real_test_fraction": "(0, 1)",
        "real_n": "[0, inf)", "real_fraction": "(0, 1]", "max_test": "[1, inf)",
        "max_seconds": "(0, inf)"}


@dataclass
class SpeechModelConfig:
    encoder: str = "conformer"  # conformer | gru
    filters: int = 80  # learned front-end filters
    filter_ms: float = 8.0  # length of each learned filter
    dim: int = 144  # encoder width
    layers: int = 4  # deeper stacks leave the CTC blank plateau later
    heads: int = 4
    # filterbank frames (10 ms) per encoder frame: 4 = 25 frames/s, half the encoder's work of
    # 2 (50/s), so 4 layers cost what 2 did; CTC still has ~2 frames per character of speech
    subsample: int = 4
    conv_kernel: int = 15  # conformer depthwise convolution, in encoder frames
    dropout: float = 0.0  # augmentation regularizes; dropout's masks cost CPU time
    # SpecAugment-style masking of the front end's output in training (0 = off): bands of
    # adjacent filters and spans of time, each up to the given width. Off: at an hour's budget
    # the model is short of steps more than of regularization.
    freq_masks: int = 0
    freq_mask_width: int = 15  # filters
    time_masks: int = 0
    time_mask_fraction: float = 0.05  # of the utterance's frames (adaptive to its length)
    # intermediate CTC (conformer only): this weight of the loss is CTC on the output of
    # block `inter_ctc_layer` (0 = the middle one) through the shared head; 0 = off
    inter_ctc: float = 0.0
    inter_ctc_layer: int = 0
    beam_size: int = 8  # test-time CTC prefix beam search (1 = greedy only)
    lexicon: bool = True  # beam search spells only words seen in the training transcripts
    lm_weight: float = 0.5  # stepwise variant: word bigram LM of the training text in the beam
    word_bonus: float = 1.0  # ... and a bonus per word, against the LM's bias to short answers

    RANGES: ClassVar[dict[str, str]] = {  # checked by e2e.config (interval notation)
        "filters": "[1, inf)", "filter_ms": "(0, inf)", "dim": "[1, inf)", "layers": "[1, inf)",
        "heads": "[1, inf)", "subsample": "[1, inf)", "conv_kernel": "[1, inf)",
        "dropout": "[0, 1)", "freq_masks": "[0, inf)", "freq_mask_width": "[0, inf)",
        "time_masks": "[0, inf)", "time_mask_fraction": "[0, 1)", "inter_ctc": "[0, 1)",
        "inter_ctc_layer": "[0, inf)", "beam_size": "[1, inf)",
        "lm_weight": "[0, inf)", "word_bonus": "(-inf, inf)"}


@dataclass
class SpeechTrain(TrainConfig):
    """The training recipe: AdamW at 2e-3 on batches of 32 (the global batch: two processes
    of 16 in bench/speech.py --nproc 2), `best` picked by validation WER."""

    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.05
    clip_grad: float = 5.0
    eval_every: int = 250
    monitor: str = "val/wer"
    mode: str = "min"
    log_every: int = 25


def default_config(task: str = "speech") -> Config:
    """The whole default config (a stepwise variant of the application passes its own name)."""
    return Config(task=task, train=SpeechTrain(), data=SpeechDataConfig(),
                  model=SpeechModelConfig())
