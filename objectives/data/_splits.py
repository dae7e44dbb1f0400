"""Splits: the tensors a trial trains and validates on, and which rows go where.

The rows a study may learn from are its *pool* (every row but the test rows). A
`Resample` says which of them validate:

- ``search``: the study's own validation split, carved with the study's seed;
- ``holdout``: another split of the same size whose validation rows are drawn from the
  search's *training* rows only, so a configuration chosen for scoring well on the
  search's validation rows is never judged on them again;
- ``kfold``: fold ``fold`` of a K-fold partition of the pool seeded ``seed``; over its K
  folds every row validates exactly once (for small data, where one validation split is
  a handful of rows).

Classification splits are stratified: each class keeps its share of the rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from objectives._errors import DataError

if TYPE_CHECKING:
    import torch

RESAMPLE_KINDS = ("search", "holdout", "kfold")


@dataclass(frozen=True)
class Resample:
    """Which rows of the pool validate (see the module doc)."""

    kind: str = "search"
    seed: int = 0
    fold: int = 0
    folds: int = 0

    def __post_init__(self) -> None:
        if self.kind not in RESAMPLE_KINDS:
            raise DataError(f"resample kind is {self.kind!r}, but must be one of {', '.join(RESAMPLE_KINDS)}")
        if self.kind == "kfold" and not 0 <= self.fold < self.folds:
            raise DataError(f"fold is {self.fold}, but must be in 0..{self.folds - 1}")

    @property
    def key(self) -> str:
        """A stable name, stored with each retrain: ``holdout/SEED`` or ``kfold/K/SEED/FOLD``."""
        if self.kind == "kfold":
            return f"kfold/{self.folds}/{self.seed}/{self.fold}"
        return f"{self.kind}/{self.seed}"

    @classmethod
    def from_key(cls, key: str) -> Resample:
        parts = key.split("/")
        if parts[0] == "kfold" and len(parts) == 4:
            return cls("kfold", seed=int(parts[2]), fold=int(parts[3]), folds=int(parts[1]))
        if parts[0] in ("holdout", "search") and len(parts) == 2:
            return cls(parts[0], seed=int(parts[1]))
        raise DataError(f"{key!r} is not a resample key")


SEARCH = Resample()


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation and test tensors; images stay uint8 [N, 784], normalised per batch.

    ``input_shape`` is one row's shape as the model sees it ((1, 28, 28) for the image sets,
    (features,) for a table, an .npz's own per-row shape); tensors hold rows flattened.
    Regression targets are standardised with the training rows' ``target_mean`` and
    ``target_std``; ``classes`` is empty then.
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
    input_shape: tuple[int, ...] = (784,)
    task: str = "classification"
    target_mean: float = 0.0
    target_std: float = 1.0
    pool: int = 0  # rows the study may learn from (training and validation, before --limit-train)
    notes: tuple[str, ...] = ()  # what reading the data did that the user should know

    @property
    def pool_rows(self) -> int:
        return self.pool or self.train_x.shape[0] + self.val_x.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_outputs(self) -> int:
        """The network's outputs: one logit per class, or one number."""
        return 1 if self.task == "regression" else len(self.classes)

    def to(self, device: torch.device | str) -> Splits:
        """The same splits with every tensor on ``device`` (moved once, then reused)."""
        import dataclasses

        moved = {
            name: getattr(self, name).to(device)
            for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")
        }
        return dataclasses.replace(self, **moved)


def pool_indices(labels, fraction: float, seed: int, stratify: bool, resample: Resample) -> tuple[Any, Any]:
    """(training, validation) row indices of the pool (numpy int64) for ``resample``.

    ``labels``: class indices (numpy int64) when stratified, else anything of the pool's length.
    """
    import numpy as np

    labels = np.asarray(labels)
    train, val = _search_split(labels, fraction, seed, stratify)
    if resample.kind == "search":
        return train, val
    groups = [np.arange(len(labels))] if not stratify else [np.nonzero(labels == c)[0] for c in np.unique(labels)]
    if resample.kind == "holdout":
        train, val = _holdout(groups, train, val, resample.seed)
    else:
        train, val = _kfold(groups, resample.seed, resample.fold, resample.folds)
    # Mixed, so that --limit-train's first N rows are a fair sample of every class.
    rng = np.random.default_rng([resample.seed, resample.fold, 7])
    return rng.permutation(train), rng.permutation(val)


def _search_split(labels, fraction: float, seed: int, stratify: bool):
    """The study's own split, as every version of this tool has carved it (torch's generator):
    each class gives ``fraction`` of its rows, at least one row validates; then both are mixed."""
    import torch

    y = torch.from_numpy(labels) if stratify else None
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    if y is None:
        order = torch.randperm(n, generator=g)
        n_val = max(1, math.floor(n * fraction))
        return order[n_val:].numpy(), order[:n_val].numpy()
    val, train = [], []
    for c in y.unique(sorted=True).tolist():
        rows = (y == c).nonzero().squeeze(1)
        rows = rows[torch.randperm(rows.numel(), generator=g)]
        k = int(round(rows.numel() * fraction))
        val.append(rows[:k])
        train.append(rows[k:])
    val_idx, train_idx = torch.cat(val), torch.cat(train)
    if val_idx.numel() == 0:  # tiny data: at least one validation row
        val_idx, train_idx = train_idx[:1], train_idx[1:]
    # Mixed, so that --limit-train's first N rows are a fair sample of every class.
    return (
        train_idx[torch.randperm(train_idx.numel(), generator=g)].numpy(),
        val_idx[torch.randperm(val_idx.numel(), generator=g)].numpy(),
    )


def _holdout(groups: list, search_train, search_val, seed: int):
    """A split as large as the search's, its validation rows drawn from the search's training rows."""
    import numpy as np

    rng = np.random.default_rng([seed, 1])
    in_val = np.zeros(sum(len(g) for g in groups), dtype=bool)
    in_val[search_val] = True
    val = []
    for rows in groups:
        candidates = rng.permutation(rows[~in_val[rows]])
        wanted = int(in_val[rows].sum())
        val.append(candidates[: min(wanted, max(0, len(candidates) - 1))])  # a group keeps a training row
    val_idx = np.concatenate(val)
    mask = np.ones(in_val.size, dtype=bool)
    mask[val_idx] = False
    return np.nonzero(mask)[0], val_idx


def _kfold(groups: list, seed: int, fold: int, folds: int):
    """Fold ``fold`` of a partition into ``folds`` parts, each group dealt round the folds in turn."""
    import numpy as np

    rng = np.random.default_rng([seed, 2])
    assigned = np.empty(sum(len(g) for g in groups), dtype=np.int64)
    offset = 0
    for rows in groups:
        rows = rng.permutation(rows)
        assigned[rows] = (offset + np.arange(len(rows))) % folds
        offset += len(rows)  # the next group starts where this one ended: fold sizes differ by one at most
    return np.nonzero(assigned != fold)[0], np.nonzero(assigned == fold)[0]


def split_indices(
    labels: torch.Tensor, fraction: float, seed: int, stratify: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """The search's own (training, validation) indices of ``labels`` (torch int64)."""
    import torch

    train, val = pool_indices(labels.numpy(), fraction, seed, stratify, SEARCH)
    return torch.from_numpy(train), torch.from_numpy(val)


def stratified_split(labels, fraction: float, seed: int, what: str, classes: tuple[str, ...]) -> tuple[Any, Any]:
    """(kept, held out) row indices, stratified by class; every class must have two rows to be split.

    For a regression target (``classes`` empty) the rows are drawn at random.
    """
    import numpy as np

    if not classes:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(labels))
        k = min(max(1, int(round(len(labels) * fraction))), len(labels) - 1)
        return order[k:], order[:k]
    counts = np.bincount(labels)
    single = [c for c, n in enumerate(counts) if n == 1]
    if single:
        raise DataError(
            f"class {classes[single[0]]!r} has a single row, and the {what} is stratified by class "
            "(each class needs at least two rows); add rows or remove that class"
        )
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


def fold_count(validation_fraction: float) -> int:
    """Folds whose training share matches the search's: 1 / fraction, between 3 and 10."""
    return min(10, max(3, int(math.floor(1.0 / validation_fraction + 0.5))))
