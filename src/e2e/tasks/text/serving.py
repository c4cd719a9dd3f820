"""A trained text model answering: texts in, translations or summaries out; its exported
graphs (e2e.tasks.text.export); the demo page (type a text)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from e2e.config import Config
from e2e.engine.progress import track
from e2e.tasks.base import Serving
from e2e.tasks.text.decode import generate
from e2e.tasks.text.info import TextInfo
from e2e.tasks.text.tokenizer import EOS_ID, PAD_ID, decode, encode, protects


def pad(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row)
    return out


def summarizes(cfg: Config) -> bool:
    """Summarization (Debian descriptions) rather than translation."""
    return cfg.data.source == "debian-descriptions"


def keeps_placeholders(cfg: Config, info: TextInfo) -> bool:
    """Whether decoding must emit each placeholder sentinel of the source, no more and no
    fewer (a translation: yes; a summary: no, and tokenizers without sentinels can't)."""
    return protects(info.bpe) and not summarizes(cfg)


def translate_ids(model: nn.Module, src: list[list[int]], sources: list[str], beam: int,
                  cfg: Config, info: TextInfo, cache: bool = True) -> list[str]:
    """Decode in batches of similar length; answers come back in input order.

    `sources` are the texts of `src`: their placeholders replace the output's sentinels.
    """
    device = next(model.parameters()).device
    order = sorted(range(len(src)), key=lambda i: len(src[i]))
    out: list[str] = [""] * len(src)
    m = cfg.model
    sentinels = keeps_placeholders(cfg, info)
    # a long decode (beam search on the full test split) reports progress after 10 s
    for i in track(range(0, len(order), m.eval_batch), desc="decoding", unit="batches",
                   delay=10):
        idx = order[i:i + m.eval_batch]
        ids = generate(model, pad([src[j] for j in idx]).to(device), beam, m.length_penalty,
                       cache=cache, sentinels=sentinels)
        for j, text in zip(idx, decode(info.bpe, ids, [sources[j] for j in idx])):
            out[j] = text
    return out


class TextServing(Serving):
    demo_input = "text"  # the demo page: type text, read the translation or summary

    def predict(self, model: nn.Module, raw: Any, cfg: Config, info: TextInfo,
                beam: int | None = None, **_: Any) -> list[str]:
        """Texts (a string or a list of strings) -> translations or summaries, in order.

        Empty inputs give empty outputs; inputs longer than the model's limit are truncated
        with a warning.
        """
        texts = [t.strip() for t in ([raw] if isinstance(raw, str) else raw)]
        limit = info.max_source_tokens
        src, keep = [], []
        for i, (text, ids) in enumerate(zip(texts, encode(info.bpe, texts))):
            if not text:
                continue
            if len(ids) >= limit:
                warnings.warn(f"input {i + 1} has {len(ids)} tokens, more than the model's "
                              f"limit of {limit - 1}; only its start was used", stacklevel=2)
            src.append(ids[:limit - 1] + [EOS_ID])
            keep.append(i)
        out = [""] * len(texts)
        answers = translate_ids(model, src, [texts[i] for i in keep], beam or cfg.model.beam,
                                cfg, info) if src else []
        for i, answer in zip(keep, answers):
            out[i] = answer
        return out

    def predict_inputs(self, paths: list[str]) -> list[str]:
        """`e2e predict RUN FILE...`: each line of each file is one input."""
        from e2e.data.text_lines import read_text_lines

        super().predict_inputs(paths)  # every file exists
        return [line for p in paths for line in read_text_lines(p)]

    def format_prediction(self, raw: Any, answer: str) -> str:
        return answer

    def prediction_json(self, raw: Any, answer: str) -> Any:
        return {"input": raw, "output": answer}

    def export_specs(self, model: nn.Module, cfg: Config, info: TextInfo) -> dict:
        """The encoder, a cache-free decoder step, and the cached pair (memory_kv and
        decoder_cached): see e2e.tasks.text.export."""
        from e2e.tasks.text.export import export_specs

        return export_specs(model, info)

    def from_exported(self, modules: dict[str, nn.Module], cfg: Config, info: TextInfo
                      ) -> nn.Module:
        """The exported graphs as a model that `e2e.tasks.text.decode` searches with."""
        from e2e.tasks.text.export import ExportedSeq2Seq

        return ExportedSeq2Seq(modules["encoder"], modules["decoder_step"], cfg.model.max_len,
                               modules.get("memory_kv"), modules.get("decoder_cached"))

    def demo_page(self, cfg: Config, info: TextInfo) -> dict:
        summary = summarizes(cfg)
        return {"prompt": "A long description to summarize" if summary else
                "English text to translate", "verb": "Summarize" if summary else "Translate"}

    def demo_answer(self, model: nn.Module, raw: Any, cfg: Config, info: TextInfo) -> dict:
        return {"text": self.predict(model, [str(raw)], cfg, info)[0]}
