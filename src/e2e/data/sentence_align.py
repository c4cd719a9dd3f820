"""Sentence splitting and Gale-Church length-based sentence alignment.

Gale & Church (1993, "A program for aligning sentences in bilingual corpora"): the length in
characters of a translation is roughly proportional to its source's, with a variance that grows
with length. The best alignment of two lists of sentences is found by dynamic programming over
beads (1-1, 1-0, 0-1, 2-1, 1-2, 2-2), each costing -log(prior of its kind) - log P(lengths
match), P from a two-sided normal tail of delta = (l2 - l1 c) / sqrt(l1 s2).
"""

from __future__ import annotations

import math
import re

# Gale & Church's priors of each bead and their length model; C is Spanish/English characters,
# measured on the 1-1 paragraphs of Debian's documentation (~1.1).
BEADS = {(1, 1): 0.89, (1, 0): 0.0099 / 2, (0, 1): 0.0099 / 2, (2, 1): 0.089 / 2,
         (1, 2): 0.089 / 2, (2, 2): 0.011}
C, S2 = 1.1, 6.8

# Abbreviations after which a period does not end a sentence (English and Spanish).
ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "cf", "approx", "no", "fig", "mr", "mrs", "dr", "st",
                 "p. ej", "ej", "sr", "sra", "núm", "pág", "aprox", "ud", "uds", "vol", "ver"}
BOUNDARY = re.compile(r"(?<=[.!?…])[\"'»”)]*\s+(?=[\"'«“(¿¡]*[A-ZÁÉÍÓÚÑÜ0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of one paragraph: cut after . ! ? before a capital, not after an
    abbreviation ("e.g.", "p. ej.") or a lone initial ("J. Smith")."""
    out, start = [], 0
    for m in BOUNDARY.finditer(text):
        before = text[start:m.start()].rstrip("\"'»”)")
        word = re.search(r"(\S+)$", before)
        last = word[1].rstrip(".").lower() if word else ""
        if (last in ABBREVIATIONS or before.lower().endswith("p. ej.")
                or re.fullmatch(r"[a-z]", last)):
            continue
        out.append(text[start:m.start()].strip())
        start = m.end()
    out.append(text[start:].strip())
    return [s for s in out if s]


def _match_cost(l1: int, l2: int) -> float:
    """-log P(a source of l1 characters translates into l2) under Gale & Church's model."""
    if l1 == 0 and l2 == 0:
        return 0.0
    mean = (l1 + l2 / C) / 2
    delta = (l2 - l1 * C) / math.sqrt(max(mean, 1e-9) * S2)
    p = math.erfc(abs(delta) / math.sqrt(2))  # two-sided normal tail: 2 (1 - Phi(|delta|))
    return -math.log(max(p, 1e-300))


def align(source: list[str], target: list[str]) -> list[tuple[list[int], list[int]]]:
    """Gale-Church alignment: beads of (source indices, target indices), in order."""
    n, m = len(source), len(target)
    ls, lt = [len(s) for s in source], [len(t) for t in target]
    inf = float("inf")
    cost = [[inf] * (m + 1) for _ in range(n + 1)]
    back: list[list[tuple[int, int] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    cost[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if cost[i][j] == inf:
                continue
            for (di, dj), prior in BEADS.items():
                a, b = i + di, j + dj
                if a > n or b > m:
                    continue
                c = cost[i][j] - math.log(prior) + _match_cost(sum(ls[i:a]), sum(lt[j:b]))
                if c < cost[a][b]:
                    cost[a][b], back[a][b] = c, (di, dj)
    beads, i, j = [], n, m
    while i or j:
        di, dj = back[i][j]
        beads.append((list(range(i - di, i)), list(range(j - dj, j))))
        i, j = i - di, j - dj
    return beads[::-1]


def plausible(source: str, target: str, low: float = 0.5, high: float = 2.0) -> bool:
    """Whether the character length ratio target/source is one a translation can have
    (lengths padded by 10, so short pairs like "Yes." / "Sí." pass)."""
    return low <= (len(target) + 10) / (len(source) + 10) <= high


def sentence_pairs(source: str, target: str) -> list[tuple[str, str]]:
    """A paragraph and its translation as aligned sentence pairs (1-1, 2-1, 1-2 and 2-2 beads
    joined into one pair each; unmatched sentences left out)."""
    src, tgt = split_sentences(source), split_sentences(target)
    if len(src) == 1 and len(tgt) == 1:
        return [(src[0], tgt[0])]
    return [(" ".join(src[k] for k in a), " ".join(tgt[k] for k in b))
            for a, b in align(src, tgt) if a and b]
