"""Vision, the hand-crafted way: HOG features (scikit-image) + a linear classifier (scikit-learn).

Two separate stages, each fitted on its own: the feature extractor is designed, not learned;
only the linear classifier on top sees the labels. This is the classic pipeline that the
Fashion-MNIST benchmark table's HOG + SVM row stands for.
"""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass
class HogConfig:
    orientations: int = 9
    cell: int = 4  # pixels per cell (square); 4 suits 28x28 images
    block: int = 2  # cells per block, for local contrast normalization
    C: float = 1.0  # inverse regularization of the linear classifier
    workers: int = 2


def _hog_chunk(args: tuple[np.ndarray, int, int, int]) -> np.ndarray:
    from skimage.feature import hog

    images, orientations, cell, block = args
    return np.stack([hog(im, orientations=orientations, pixels_per_cell=(cell, cell),
                         cells_per_block=(block, block), channel_axis=0 if im.ndim == 3 else None)
                     for im in images]).astype(np.float32)


def hog_features(images: torch.Tensor, cfg: HogConfig) -> np.ndarray:
    """uint8 N x C x H x W -> N x F HOG features, computed on `cfg.workers` processes."""
    array = images.numpy().astype(np.float32) / 255
    array = array[:, 0] if array.shape[1] == 1 else array
    chunks = np.array_split(array, max(1, cfg.workers * 4))
    jobs = [(c, cfg.orientations, cfg.cell, cfg.block) for c in chunks if len(c)]
    if cfg.workers <= 1:
        return np.concatenate([_hog_chunk(j) for j in jobs])
    with ProcessPoolExecutor(cfg.workers) as pool:
        return np.concatenate(list(pool.map(_hog_chunk, jobs)))


def fit_hog_classifier(x: torch.Tensor, y: torch.Tensor, cfg: HogConfig):
    """Fit the two stages; returns (pipeline, feature count, seconds)."""
    started = time.time()
    features = hog_features(x, cfg)
    classifier = make_pipeline(StandardScaler(),
                               LogisticRegression(C=cfg.C, max_iter=300, tol=1e-3))
    classifier.fit(features, y.numpy())
    return classifier, features.shape[1], time.time() - started


def hog_accuracy(classifier, x: torch.Tensor, y: torch.Tensor, cfg: HogConfig
                 ) -> tuple[float, float]:
    """(accuracy, seconds per example, features included)."""
    started = time.time()
    predictions = classifier.predict(hog_features(x, cfg))
    return float((predictions == y.numpy()).mean()), (time.time() - started) / len(y)
