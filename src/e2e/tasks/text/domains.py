"""Scores per domain: a translator and apertium on the held-out part of every corpus of a mix,
on the text as written and on the same text as people type it (e2e.data.text_noise).

The broad recipe's table (bench/text.py --recipe broad) and `e2e compare text --data broad`
read their numbers through here, so both name, noise and score the domains alike.
"""

from __future__ import annotations

from e2e.data.gettext_catalogs import placeholder_kept
from e2e.data.text_noise import Noiser
from e2e.tasks.text import metrics

# The noisy column: every text of a test set through one fixed noiser (typos at 3% of the
# letters, half the texts lower-cased, half the punctuation dropped), the same on every run.
NOISE = Noiser(typo=0.03, lowercase=0.5, punctuation=0.5, seed=0)

LABELS = {
    "bible": "Bible (held-out books)", "bible-en-es": "Bible (held-out books)",
    "messages": "software messages (held-out packages)",
    "messages-en-es": "software messages (held-out packages)",
    "descriptions": "package descriptions (held-out packages)",
    "wesnoth": "Wesnoth campaigns (held-out campaigns)",
    "steel-sky": "Beneath a Steel Sky dialogue (held-out stretches)",
    "docs": "Debian manuals (held-out pages)",
    "tuxpaint": "Tux Paint stamp sentences",
}


def label(name: str, unseen: str = "") -> str:
    """A test set's name in a table; the unseen corpus says so."""
    text = LABELS.get(name, name)
    return f"{text}, **never trained on**" if name and name == unseen else text


def noisy(texts: list[str], noiser: Noiser = NOISE) -> list[str]:
    """`texts` as people might type them: the same output for the same text and noiser."""
    return [noiser(t) for t in texts]


def noisy_split(split, cfg, info, noiser: Noiser = NOISE):
    """A test split (e2e.tasks.text.task.TextPairs) with its sources typed noisily, encoded
    with the run's own vocabulary; references and parts unchanged."""
    from e2e.tasks.text.task import TextPairs

    out = TextPairs(noisy(split.sources, noiser), split.targets, info.bpe, cfg.data, split.role)
    out.parts = dict(split.parts)
    return out


def score_parts(hyps: list[str], refs: list[str], sources: list[str],
                parts: dict[str, tuple[int, int]]) -> dict[str, dict[str, float]]:
    """BLEU, chrF and (where the sources have placeholders) placeholders kept, per part."""
    out = {}
    for name, (a, b) in parts.items():
        s = metrics.score(hyps[a:b], refs[a:b])
        kept, total = placeholder_kept(sources[a:b], hyps[a:b])
        out[name] = {"bleu": s["bleu"], "chrf": s["chrf"],
                     **({"placeholders": 100 * kept / total} if total else {})}
    return out


def from_results(results: dict, parts: dict[str, tuple[int, int]], prefix: str = "test/"
                 ) -> dict[str, dict[str, float]]:
    """The per-part scores in an evaluation's results (`test/bleu:docs`, ...); a single part
    is the whole split (`test/bleu`)."""
    one = len(parts) == 1
    out = {}
    for name in parts:
        key = "" if one else f":{name}"
        out[name] = {"bleu": results[f"{prefix}bleu{key}"],
                     "chrf": results[f"{prefix}chrf{key}"]}
        kept = results.get(f"{prefix}placeholders{key}")
        if kept is not None:
            out[name]["placeholders"] = kept
    return out


def wins(ours: dict, rule: dict) -> bool:
    """The issue's bar: better than apertium in BLEU and in chrF."""
    return ours["bleu"] > rule["bleu"] and ours["chrf"] > rule["chrf"]


def domain_table(parts: dict[str, dict], unseen: str = "") -> list[str]:
    """A Markdown table of `parts` (name -> {"pairs", "ours", "apertium", and optionally
    "noisy": {"ours", "apertium"}}): BLEU and chrF of both systems, clean and noisy."""
    with_noise = any("noisy" in p for p in parts.values())
    head = ["test set", "pairs", "e2e BLEU", "apertium BLEU", "e2e chrF", "apertium chrF"]
    if with_noise:
        head += ["noisy: e2e BLEU", "noisy: apertium BLEU", "noisy: e2e chrF",
                 "noisy: apertium chrF"]
    head += ["placeholders kept (e2e / apertium)", "e2e beats apertium"]
    rows = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, p in parts.items():
        ours, rule = p["ours"], p["apertium"]
        cells = [label(name, unseen), f"{p['pairs']:,}", f"{ours['bleu']:.2f}",
                 f"{rule['bleu']:.2f}", f"{ours['chrf']:.2f}", f"{rule['chrf']:.2f}"]
        if with_noise:
            n = p.get("noisy")
            cells += ([f"{n['ours']['bleu']:.2f}", f"{n['apertium']['bleu']:.2f}",
                       f"{n['ours']['chrf']:.2f}", f"{n['apertium']['chrf']:.2f}"]
                      if n else ["-"] * 4)
        kept = [s.get("placeholders") for s in (ours, rule)]
        cells.append(" / ".join(f"{k:.1f}%" for k in kept) if None not in kept else "")
        verdict = wins(ours, rule)
        if with_noise and p.get("noisy"):
            noisy_win = wins(p["noisy"]["ours"], p["noisy"]["apertium"])
            cells.append(("yes" if verdict else "**no**") + "; noisy: "
                         + ("yes" if noisy_win else "**no**"))
        else:
            cells.append("yes" if verdict else "**no**")
        rows.append("| " + " | ".join(cells) + " |")
    return rows
