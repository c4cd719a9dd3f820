"""Text systems that learn nothing: apertium's rule-based translation and extractive summaries.

- `apertium`: English -> Spanish with apertium's eng-spa pipeline (morphological analysis,
  part-of-speech disambiguation, structural transfer with a bilingual dictionary,
  morphological generation), all hand-written rules and dictionaries. Run as one batch:
  one process for all sentences, one sentence per line.
- `lead_summaries`: the first sentence of each long description (Debian's own style guide
  asks the long description to start with what the package is).
- `central_summaries`: the sentence most similar to the rest of its description (cosine of
  word counts, English stop words left out): a classic extractive baseline, no learning.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from collections import Counter

from e2e.data.debian_descriptions import lead_sentence
from e2e.errors import DatasetMissing, E2EError

APERTIUM_INSTALL = "sudo apt-get install apertium-eng-spa"
APERTIUM_PAIR = "eng-spa"


def require_apertium(pair: str = APERTIUM_PAIR) -> None:
    """Raise DatasetMissing unless the apertium binary and the language pair are installed."""
    if shutil.which("apertium") is None:
        raise DatasetMissing("the apertium translator (no `apertium` on PATH)", APERTIUM_INSTALL)
    modes = subprocess.run(["apertium", "-l"], capture_output=True, text=True).stdout.split()
    if pair not in modes:
        raise DatasetMissing(f"apertium's {pair} language pair (`apertium -l` lists: "
                             f"{', '.join(modes) or 'none'})", APERTIUM_INSTALL)


def apertium(sources: list[str], pair: str = APERTIUM_PAIR) -> tuple[list[str], float]:
    """Translate `sources` in one apertium batch; returns (translations, wall seconds).

    `-u` leaves unknown words unmarked (no `*`), as a reader of the output would want.
    A newline inside a source would break the one-line-per-sentence contract, so it is
    folded into a space first.
    """
    require_apertium(pair)
    lines_in = [" ".join(s.split()) for s in sources]
    start = time.time()
    proc = subprocess.run(["apertium", "-u", pair], input="\n".join(lines_in) + "\n",
                          capture_output=True, text=True)
    seconds = time.time() - start
    if proc.returncode != 0:
        raise E2EError(f"apertium {pair} failed ({proc.returncode}): {proc.stderr.strip()}; "
                       f"reinstall it with {APERTIUM_INSTALL}")
    lines = proc.stdout.rstrip("\n").split("\n")
    if len(lines) != len(sources):
        raise RuntimeError(f"apertium returned {len(lines)} lines for {len(sources)} inputs")
    return lines, seconds


def lead_summaries(sources: list[str]) -> list[str]:
    return [lead_sentence(s) for s in sources]


# A sentence ends at . ! ? followed by space and a capital or "(" (as in lead_sentence), or at
# a paragraph break (Debian's ` .` lines, newlines in the long text).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|\n+")
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.-]*[a-z0-9+#]|[a-z0-9]")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _bag(sentence: str, stop: frozenset[str]) -> Counter:
    return Counter(w for w in _WORD.findall(sentence.lower()) if w not in stop)


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b[w] for w, v in a.items())
    norm = math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))
    return dot / norm if norm else 0.0


def central_sentence(text: str, stop: frozenset[str] | None = None) -> str:
    """The sentence whose words overlap most (cosine) with all the other sentences together.

    `stop`: words left out (default: scikit-learn's English stop words). Ties, and
    descriptions of one sentence, go to the earliest sentence.
    """
    stop = _stop_words() if stop is None else stop
    parts = sentences(text)
    if len(parts) < 2:
        return parts[0] if parts else ""
    bags = [_bag(s, stop) for s in parts]
    total = sum(bags, Counter())
    scores = [_cosine(bag, total - bag) for bag in bags]
    return parts[max(range(len(parts)), key=lambda i: (scores[i], -i))]


def central_summaries(sources: list[str]) -> list[str]:
    return [central_sentence(s) for s in sources]


def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)
