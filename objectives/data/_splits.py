"""Splits: the tensors a trial trains and validates on, and how rows are divided between them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from objectives._errors import DataError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation and test tensors: images uint8 [N, 784], labels int64 [N].

    Images stay uint8 (a quarter of float32's memory) and are normalised per batch
    with the training split's own mean and std.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    mean: float
    std: float
    encoder: dict | None = None  # a table's preprocessing (`TableEncoder.to_dict`); None for images

    @property
    def num_features(self) -> int:
        return self.train_x.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to(self, device: torch.device | str) -> Splits:
        """The same splits with every tensor on ``device`` (moved once, then reused)."""
        moved = {
            name: getattr(self, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        }
        return Splits(**moved, classes=self.classes, mean=self.mean, std=self.std, encoder=self.encoder)


def split_indices(labels: torch.Tensor, fraction: float, seed: int, stratify: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded (training, validation) indices; stratified, each class gives ``fraction`` of its rows.

    Stratified, a small data set's validation split has the classes in their true
    proportions, so its accuracy is not tilted by a lucky draw of easy classes.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    n = labels.shape[0]
    if not stratify:
        order = torch.randperm(n, generator=g)
        n_val = max(1, math.floor(n * fraction))
        return order[n_val:], order[:n_val]
    val, train = [], []
    for c in labels.unique(sorted=True).tolist():
        rows = (labels == c).nonzero().squeeze(1)
        rows = rows[torch.randperm(rows.numel(), generator=g)]
        k = int(round(rows.numel() * fraction))
        val.append(rows[:k])
        train.append(rows[k:])
    val_idx, train_idx = torch.cat(val), torch.cat(train)
    if val_idx.numel() == 0:  # tiny data: at least one validation row
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    # Mixed, so that --limit-train's first N rows are a fair sample of every class.
    return train_idx[torch.randperm(train_idx.numel(), generator=g)], val_idx[torch.randperm(val_idx.numel(), generator=g)]


def stratified_split(labels, fraction: float, seed: int, what: str, classes: tuple[str, ...]) -> tuple[Any, Any]:
    """(kept, held out) row indices, stratified by class; every class must have two rows to be split."""
    import numpy as np

    counts = np.bincount(labels)
    single = [c for c, n in enumerate(counts) if n == 1]
    if single:
        raise DataError(f"class {classes[single[0]]!r} has a single row, and the {what} is stratified by class "
                        "(each class needs at least two rows); add rows or remove that class")
    rng = np.random.default_rng(seed)
    held, kept = [], []
    for c in range(len(counts)):
        rows = np.nonzero(labels == c)[0]
        rng.shuffle(rows)
        k = min(max(1, int(round(len(rows) * fraction))), len(rows) - 1) if len(rows) else 0
        held.append(rows[:k])
        kept.append(rows[k:])
    return rng.permutation(np.concatenate(kept)), rng.permutation(np.concatenate(held))


def moments(images: torch.Tensor, chunk: int = 4096) -> dict[str, float]:
    """Pixel mean and std in [0, 1] units, a chunk at a time: a float copy of the whole
    training split would be four times its size and set the worker's peak memory."""
    total = squares = 0.0
    for start in range(0, images.shape[0], chunk):
        part = images[start : start + chunk].double()
        total += float(part.sum())
        squares += float(part.square().sum())
    n = max(1, images.numel())
    mean = total / n
    var = max(0.0, squares / n - mean * mean) * n / max(1, n - 1)
    return {"mean": mean / 255.0, "std": var**0.5 / 255.0}
