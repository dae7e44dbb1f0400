"""Loading a `DataConfig` into `Splits`: the image sets, the synthetic set and the user's tables.

Trials are scored on a validation split carved, seeded, out of the training rows; the
test split is kept for `search train` alone.
"""

from __future__ import annotations

import functools
from pathlib import Path

from objectives._errors import DataError
from objectives.data._config import TEST_SEED, DataConfig
from objectives.data._splits import Splits, moments, split_indices


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
        **moments(tx),
    )


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
    return Splits(train_x, train_y, test_x, test_y, test_x, test_y, classes, **moments(train_x))


def table_parts(config: DataConfig):
    """The rows a table study trains and validates on, and its test rows: (pool, test) `Table`s."""
    from objectives.data._tables import file_hash

    test_hash = file_hash(config.test_file) if config.test_file and Path(config.test_file).is_file() else None
    data_hash = file_hash(config.data_file) if Path(config.data_file).is_file() else None
    return _table_parts(config.data_file, data_hash, config.target, config.drop, config.fill_missing,
                        config.test_file, test_hash, config.test_fraction)


@functools.lru_cache(maxsize=2)
def _table_parts(data_file, data_hash, target, drop, fill_missing, test_file, test_hash, test_fraction):
    import numpy as np

    from objectives.data._splits import stratified_split
    from objectives.data._tables import Table

    table = read_data(data_file, target, drop, fill_missing)
    if test_file is None:
        keep, held = stratified_split(table.labels, test_fraction, TEST_SEED, "test split", table.classes)
        return table.take(keep), table.take(held)
    test = read_data(test_file, target, drop, fill_missing)
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


def read_data(path: str, target: str | None, drop: tuple[str, ...] = (), fill_missing: str | None = None):
    """The user's file as a checked `Table`, read by the module of its kind (by suffix)."""
    from objectives.data._tables import SUFFIXES, read_table

    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"--data {path}: unknown kind of file; use .csv, .parquet or .npz")
    if not Path(path).is_file():
        raise DataError(f"--data {path}: no such file")
    if suffix == ".npz":
        from objectives.data._arrays import read_arrays

        return read_arrays(path)
    return read_table(path, target, drop, fill_missing)


def _encode(train, *others) -> tuple[dict, list]:
    """Fit the preprocessing on ``train`` only, and apply it to every part: float32 tensors and int64 labels."""
    import torch

    from objectives.data._encoder import TableEncoder

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


def _load_raw(config: DataConfig):
    if config.dataset == "synthetic":
        from objectives.data._synthetic import synthetic

        return synthetic()
    from objectives.data._images import load_images

    return load_images(config.dataset, config.data_dir, config.download)
