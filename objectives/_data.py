"""Data: MNIST-family data sets loaded once per process into uint8 tensors.

Trials are scored on a validation split carved, seeded, out of the official
training split; the official test split is kept for `search train` alone.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import math
import socket
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from objectives._errors import DataError
from objectives._idx import IDX_FILES

if TYPE_CHECKING:
    import torch

DATASETS = ("fashion-mnist", "mnist", "kmnist", "synthetic", "table")
# A table's test split is carved with this seed, whatever the study's: the same file gets
# the same test split in every study, and confirmation's resamples never move it.
TEST_SEED = 0
# Seconds a download waits on one connection: urllib's default is to wait forever, and a
# network that drops packets would hang a run before it could say the data is missing.
DOWNLOAD_TIMEOUT = 30.0
_TORCHVISION_NAMES = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST", "kmnist": "KMNIST"}


@dataclass(frozen=True)
class DataConfig:
    """Which data set, where it lives, and how the validation split is carved."""

    dataset: str = "fashion-mnist"
    data_dir: str = "data"
    validation_fraction: float = 0.1
    seed: int = 0
    limit_train: int | None = None
    stratify: bool = True  # each class keeps its share in the validation split (studies made before: False)
    download: bool = True  # a missing data set is downloaded, each connection waiting at most DOWNLOAD_TIMEOUT
    # The user's own data (dataset "table"): a CSV, Parquet or .npz file and the column to predict.
    data_file: str | None = None
    target: str | None = None
    test_fraction: float = 0.2  # carved once from data_file, stratified (TEST_SEED)...
    test_file: str | None = None  # ...unless the test rows come in a file of their own
    fill_missing: str | None = None  # "median": numeric gaps take the column's median
    drop: tuple[str, ...] = ()  # columns of data_file left out

    def __post_init__(self) -> None:
        # Messages name the flags: this configuration is what the user typed on the command line.
        if self.dataset not in DATASETS:
            raise DataError(f"--dataset is {self.dataset!r}, but must be one of {', '.join(DATASETS)}")
        if isinstance(self.validation_fraction, bool) or not isinstance(self.validation_fraction, (int, float)):
            raise DataError(f"--validation-fraction is {self.validation_fraction!r}, but must be a number")
        if not 0.0 < self.validation_fraction < 1.0:
            raise DataError(f"--validation-fraction is {self.validation_fraction}, but must be > 0 and < 1")
        if self.limit_train is not None and (isinstance(self.limit_train, bool) or not isinstance(self.limit_train, int)):
            raise DataError(f"--limit-train is {self.limit_train!r}, but must be an integer")
        if self.limit_train is not None and self.limit_train < 1:
            raise DataError(f"--limit-train is {self.limit_train}, but must be >= 1")
        if self.data_file is not None and self.dataset == "fashion-mnist":  # the default: --data names the data set
            object.__setattr__(self, "dataset", "table")
        if self.data_file is not None and self.dataset != "table":
            raise DataError(f"--data and --dataset {self.dataset} are two data sets; give one")
        if self.dataset == "table" and self.data_file is None:
            raise DataError("--dataset table needs --data FILE (a CSV, Parquet or .npz file)")
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) or not 0.0 < self.test_fraction < 1.0:
            raise DataError(f"--test-fraction is {self.test_fraction}, but must be > 0 and < 1")
        if self.fill_missing is not None and self.fill_missing != "median":
            raise DataError(f"--fill-missing is {self.fill_missing!r}, but must be median")
        object.__setattr__(self, "drop", tuple(self.drop))


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


def load_splits(config: DataConfig) -> Splits:
    """The data set of ``config`` split into training, validation and test tensors."""
    return _split(config)


# Cached: every trial of a process batches from the same tensors. The raw arrays are not
# cached; once split they would be a second copy of the data set.
@functools.lru_cache(maxsize=4)  # the search's split and confirmation's resamples
def _split(config: DataConfig) -> Splits:
    if config.dataset == "table":
        return _table_split(config)
    train_x, train_y, test_x, test_y, classes = _load_raw(config)
    train_idx, val_idx = split_indices(train_y, config.validation_fraction, config.seed, config.stratify)
    if config.limit_train is not None:
        train_idx = train_idx[: config.limit_train]
    tx = train_x[train_idx]
    return Splits(
        train_x=tx,
        train_y=train_y[train_idx],
        val_x=train_x[val_idx],
        val_y=train_y[val_idx],
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        **_moments(tx),
    )


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


def load_train_test(config: DataConfig) -> Splits:
    """The whole official training split for training, scored on the official test split.

    For retraining a chosen configuration (never for tuning): ``val_*`` are the test
    tensors, so the per-epoch figures are test figures.
    """
    if config.dataset == "table":
        return _table_train_test(config)
    train_x, train_y, test_x, test_y, classes = _load_raw(config)
    if config.limit_train is not None:
        train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
    return Splits(train_x, train_y, test_x, test_y, test_x, test_y, classes, **_moments(train_x))


def table_parts(config: DataConfig):
    """The rows a table study trains and validates on, and its test rows: (pool, test) `Table`s."""
    from objectives._table import file_hash

    test_hash = file_hash(config.test_file) if config.test_file and Path(config.test_file).is_file() else None
    data_hash = file_hash(config.data_file) if Path(config.data_file).is_file() else None
    return _table_parts(config.data_file, data_hash, config.target, config.drop, config.fill_missing,
                        config.test_file, test_hash, config.test_fraction)


@functools.lru_cache(maxsize=2)
def _table_parts(data_file, data_hash, target, drop, fill_missing, test_file, test_hash, test_fraction):
    import numpy as np

    from objectives._table import Table, read_table, stratified_split

    table = read_table(data_file, target, drop, fill_missing)
    if test_file is None:
        keep, held = stratified_split(table.labels, test_fraction, TEST_SEED, "test split", table.classes)
        return table.take(keep), table.take(held)
    test = read_table(test_file, target, drop, fill_missing)
    if (test.numeric_names, test.text_names) != (table.numeric_names, table.text_names):
        missing = sorted(set(table.numeric_names + table.text_names) - set(test.numeric_names + test.text_names))
        what = f"lacks column {missing[0]!r}" if missing else "has other columns (or other column types)"
        raise DataError(f"--test-data {test_file} {what} than --data {data_file}")
    index = {name: i for i, name in enumerate(table.classes)}
    unknown = [c for c in test.classes if c not in index]
    if unknown:
        raise DataError(f"--test-data {test_file} has class {unknown[0]!r}, which --data {data_file} never shows")
    remap = np.array([index[c] for c in test.classes], dtype=np.int64)
    test = Table(test.numeric_names, test.numeric, test.text_names, test.text, remap[test.labels], table.classes)
    return table, test


def _encode(train, *others) -> tuple[dict, list]:
    """Fit the preprocessing on ``train`` only, and apply it to every part: float32 tensors and int64 labels."""
    import torch

    from objectives._table import TableEncoder

    encoder = TableEncoder.fit(train)
    parts = []
    for part in (train, *others):
        x, _ = encoder.transform(part.numeric, part.text)
        parts += [torch.from_numpy(x), torch.from_numpy(part.labels.copy())]
    return encoder.to_dict(), parts


def _table_split(config: DataConfig) -> Splits:
    import torch

    pool, test = table_parts(config)
    train_idx, val_idx = split_indices(torch.from_numpy(pool.labels), config.validation_fraction, config.seed, config.stratify)
    if config.limit_train is not None:
        train_idx = train_idx[: config.limit_train]
    encoder, (tx, ty, vx, vy, sx, sy) = _encode(pool.take(train_idx.numpy()), pool.take(val_idx.numpy()), test)
    return Splits(tx, ty, vx, vy, sx, sy, pool.classes, 0.0, 1.0, encoder)


def _table_train_test(config: DataConfig) -> Splits:
    pool, test = table_parts(config)
    if config.limit_train is not None:
        pool = pool.take(slice(0, config.limit_train))
    encoder, (tx, ty, sx, sy) = _encode(pool, test)
    return Splits(tx, ty, sx, sy, sx, sy, pool.classes, 0.0, 1.0, encoder)


def _moments(images: torch.Tensor, chunk: int = 4096) -> dict[str, float]:
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


def _load_raw(config: DataConfig):
    if config.dataset == "synthetic":
        return _synthetic()
    return _load_torchvision(config.dataset, Path(config.data_dir).resolve(), config.download)


def _load_torchvision(dataset: str, root: Path, download: bool):
    folder = _TORCHVISION_NAMES[dataset]
    raw = root / folder / "raw"
    with _undo_on_failure(raw):
        _gunzip_present(raw)
        return _read_torchvision(dataset, folder, root, raw, download)


def _read_torchvision(dataset: str, folder: str, root: Path, raw: Path, download: bool):
    from torchvision import datasets

    cls = getattr(datasets, folder)
    try:
        # torchvision prints each failed mirror; the user gets one line from us instead.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), _socket_timeout(DOWNLOAD_TIMEOUT):
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=download)
    except (RuntimeError, OSError, ValueError, EOFError, AssertionError) as exc:  # torchvision: RuntimeError, URLError; a corrupt file: AssertionError
        missing = [name for name in IDX_FILES.values() if not (raw / name).exists()]
        if missing:
            raise DataError(
                f"{dataset} is not in {raw} and could not be downloaded; "
                f"put {', '.join(n + '.gz' for n in missing)} there, "
                f"or use --dataset synthetic for an offline demo"
            ) from exc
        raise DataError(f"cannot read {dataset} from {raw}: {_first_line(exc)}") from exc
    flat = lambda d: d.data.reshape(d.data.shape[0], -1).contiguous()  # noqa: E731
    return flat(train), train.targets.long(), flat(test), test.targets.long(), tuple(cls.classes)


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torchvision's urlopen takes no timeout; the process-wide default bounds it."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


@contextlib.contextmanager
def _undo_on_failure(raw: Path):
    """A failed load leaves the user's folder as it was: the folders and files it made are removed."""
    folders = [p for p in (raw, raw.parent, raw.parent.parent) if not p.exists()]
    before = set(raw.iterdir()) if raw.is_dir() else set()
    try:
        yield
    except BaseException:
        if raw.is_dir():
            for path in set(raw.iterdir()) - before:
                if path.is_file():
                    path.unlink(missing_ok=True)
        for folder in folders:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never what the user put there
        raise


def _gunzip_present(raw: Path) -> None:
    """Unpack ``*.gz`` files a user dropped in by hand (torchvision only unpacks its own downloads)."""
    for name in IDX_FILES.values():
        plain, packed = raw / name, raw / (name + ".gz")
        if not plain.exists() and packed.exists():
            try:
                plain.write_bytes(gzip.decompress(packed.read_bytes()))
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DataError(f"cannot unpack {packed}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _synthetic(n_train: int = 6000, n_test: int = 1000, num_classes: int = 10):
    """A small learnable stand-in for FashionMNIST, the same every time.

    Each class is a smooth random 28x28 pattern mixed into one shared background (so
    classes look alike, as clothes do); samples are their class's image with a random
    contrast and heavy noise. A good configuration learns it in a few epochs and a poor
    one stays far below: enough to tell them apart.
    """
    import torch

    g = torch.Generator().manual_seed(12345)
    coarse = torch.rand(num_classes + 1, 1, 7, 7, generator=g)
    smooth = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear", align_corners=False)
    smooth = smooth.squeeze(1)
    protos = (0.7 * smooth[-1:] + 0.3 * smooth[:-1]) * 255.0

    def sample(n: int):
        labels = torch.randint(0, num_classes, (n,), generator=g)
        images = protos[labels] * (0.6 + 0.4 * torch.rand(n, 1, 1, generator=g))
        images = images + 90.0 * torch.randn(n, 28, 28, generator=g)
        return images.clamp_(0, 255).to(torch.uint8).reshape(n, -1), labels

    train_x, train_y = sample(n_train)
    test_x, test_y = sample(n_test)
    classes = tuple(f"class {i}" for i in range(num_classes))
    return train_x, train_y, test_x, test_y, classes
