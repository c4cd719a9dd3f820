"""Scores on detokenized text: sacrebleu BLEU and chrF (with their signatures), ROUGE-L."""

from __future__ import annotations


def score(hyps: list[str], refs: list[str]) -> dict:
    import sacrebleu
    from rouge_score import rouge_scorer

    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge = [scorer.score(r, h)["rougeL"].fmeasure for h, r in zip(hyps, refs)]
    return {"bleu": b.score, "chrf": c.score, "rougeL": 100 * sum(rouge) / max(len(rouge), 1),
            "signature": f"BLEU {bleu.get_signature()} | chrF {chrf.get_signature()}"}
