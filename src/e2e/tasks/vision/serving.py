"""A trained image classifier answering: image files in, top-k classes out; its exported
graph; the demo page (upload or draw an image)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from e2e.config import Config
from e2e.data.images import load_image
from e2e.tasks.base import ExportSpec, Serving
from e2e.tasks.vision.info import VisionInfo


def logits(model: nn.Module, x: torch.Tensor, info: VisionInfo, tta: bool) -> torch.Tensor:
    """Class scores of uint8 images; with `tta`, averaged with the mirrored image where a
    mirror keeps the class."""
    x = x.contiguous(memory_format=torch.channels_last)
    out = model(x).float()
    if tta and info.flip:
        out = (out.softmax(1) + model(x.flip(3)).float().softmax(1)).div(2).log()
    return out


class VisionServing(Serving):
    demo_input = "image"  # the demo page: upload or draw an image

    def predict(self, model: nn.Module, raw: Any, cfg: Config, info: VisionInfo,
                top_k: int = 3, tta: bool = True, **_options: Any
                ) -> list[list[tuple[str, float]]]:
        """Image paths (or uint8 C x H x W tensors) -> top-k (label, probability) per image."""
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        size, channels = info.size[0], info.channels
        x = torch.stack([item if torch.is_tensor(item) else load_image(item, size, channels)
                         for item in items])
        device = next(model.parameters()).device
        with torch.no_grad():
            probs = logits(model, x.to(device), info, tta).softmax(1).cpu()
        top = probs.topk(min(top_k, probs.shape[1]), dim=1)
        return [[(info.classes[i], float(p)) for p, i in zip(ps, ix)]
                for ps, ix in zip(top.values.tolist(), top.indices.tolist())]

    def format_prediction(self, raw: Any, answer: list[tuple[str, float]]) -> str:
        return f"{raw}: " + ", ".join(f"{label} {p:.3f}" for label, p in answer)

    def prediction_json(self, raw: Any, answer: list[tuple[str, float]]) -> Any:
        return {"input": str(raw), "top": [{"label": label, "p": p} for label, p in answer]}

    def export_specs(self, model: nn.Module, cfg: Config, info: VisionInfo) -> dict:
        pixels = torch.zeros(2, info.channels, *info.size, dtype=torch.uint8)
        return {"classifier": ExportSpec(model, {"pixels": pixels}, ["logits"],
                                         {"pixels": {0: "batch"}, "logits": {0: "batch"}},
                                         from_batch=lambda batch: {"pixels": batch["x"]})}

    def demo_page(self, cfg: Config, info: VisionInfo) -> dict:
        return {"classes": info.classes}

    def demo_answer(self, model: nn.Module, raw: Any, cfg: Config, info: VisionInfo) -> dict:
        """An uploaded image (a file object) -> the top-5 classes, for the demo page."""
        top = self.predict(model, [raw], cfg, info, top_k=5)[0]
        return {"top": [{"label": label, "p": p} for label, p in top]}
