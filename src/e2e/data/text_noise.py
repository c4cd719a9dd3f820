"""Text as people type it: deterministic typos, casing and missing punctuation.

A robustness column for the translation benchmark needs the same noisy input on every run and
machine, so the noise of a text depends only on (seed, text): its random stream is seeded by
the pair itself (`random.Random(str)` hashes the string with SHA-512), not by a global state
or the order of texts.

The rates, each independent:
- `typo`: each letter is, with this probability, swapped with the next letter, dropped, or
  doubled (one of the three, equally likely; a letter with no letter after it is dropped or
  doubled instead of swapped). So `typo` is the expected number of edits per letter (a
  little less: the second letter of a swap gets no edit of its own);
- `lowercase`: with this probability the whole text is lower-cased (no capitals typed);
- `punctuation`: each punctuation mark (. , ; : ! ? ¡ ¿ ' ") is dropped with this probability.

Placeholders (%s, %2$d, {0}: `e2e.data.gettext_catalogs.PLACEHOLDER`) are left as they are: a
user's typo never touches the program's format string.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from e2e.data.gettext_catalogs import SCAN

PUNCTUATION = set(".,;:!?¡¿'\"")


@dataclass(frozen=True)
class Noiser:
    typo: float = 0.03
    lowercase: float = 0.5
    punctuation: float = 0.5
    seed: int = 0

    def __call__(self, text: str) -> str:
        return self.apply(text)[0]

    def apply(self, text: str) -> tuple[str, Counter]:
        """The noisy text and what was done (counts of swaps, drops, doublings,
        lowercased, punctuation dropped)."""
        rng, done = random.Random(f"{self.seed}\x00{text}"), Counter()
        kept = {i for m in SCAN.finditer(text) for i in range(m.start(), m.end())}
        lower = rng.random() < self.lowercase
        done["lowercased"] += lower
        out, i = [], 0
        while i < len(text):
            c = text[i] if i in kept or not lower else text[i].lower()
            if i in kept:
                out.append(c)
            elif c.isalpha() and rng.random() < self.typo:
                swappable = i + 1 < len(text) and text[i + 1].isalpha() and i + 1 not in kept
                kind = rng.choice(("swap", "drop", "double") if swappable else ("drop", "double"))
                if kind == "swap":
                    out += [text[i + 1].lower() if lower else text[i + 1], c]
                    done["swaps"] += 1
                    i += 2
                    continue
                if kind == "drop":
                    done["drops"] += 1
                else:
                    out += [c, c]
                    done["doublings"] += 1
            elif c in PUNCTUATION and rng.random() < self.punctuation:
                done["punctuation dropped"] += 1
            else:
                out.append(c)
            i += 1
        noisy = " ".join("".join(out).split())  # a dropped mark leaves no double space
        return noisy, +done


def add_noise(texts: list[str], typo: float = 0.03, lowercase: float = 0.5,
              punctuation: float = 0.5, seed: int = 0) -> list[str]:
    """`texts` as people might type them (see the module's rates); the same on every call."""
    noiser = Noiser(typo, lowercase, punctuation, seed)
    return [noiser(t) for t in texts]
