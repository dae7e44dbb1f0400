"""Loading a `DataConfig` into `Splits`: the image sets, the synthetic set and the user's tables.

Trials are scored on a validation split carved, seeded, out of the training rows; the
test split is kept for `search train` alone.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from objectives._errors import DataError
from objectives.data._config import TEST_SEED, DataConfig
from objectives.data._splits import SEARCH, Resample, Splits, moments, pool_indices

# One image as a model receives it: a channel of 28 x 28 pixels (torchvision's layout).
IMAGE_SHAPE = (1, 28, 28)


def load_splits(config: DataConfig, resample: Resample = SEARCH) -> Splits:
    """The data set of ``config`` split into training, validation and test tensors, as ``resample`` says."""
    return _split(config, resample, _contents(config))


def _contents(config: DataConfig) -> tuple[str | None, ...]:
    """The user's files' hashes: a file rewritten under the same name is new data, not a cached split."""
    from objectives.data._tables import file_hash

    files = (config.data_file, config.test_file) if config.dataset == "table" else ()
    return tuple(file_hash(f) if f and Path(f).is_file() else None for f in files)


# Cached: every trial of a process batches from the same tensors.
@functools.lru_cache(maxsize=4)  # the search's split and confirmation's resamples
def _split(config: DataConfig, resample: Resample = SEARCH, contents: tuple = ()) -> Splits:
    if config.dataset == "table":
        return _table_split(config, resample)
    train_x, train_y, test_x, test_y, classes = _load_raw(config)
    train_idx, val_idx = _indices(train_y.numpy(), config, resample)
    tx = train_x[train_idx]
    return Splits(
        train_x=tx,
        train_y=train_y[train_idx],
        val_x=train_x[val_idx],
        val_y=train_y[val_idx],
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        input_shape=IMAGE_SHAPE,
        pool=int(train_y.shape[0]),
        **moments(tx),
    )


def _indices(labels, config: DataConfig, resample: Resample):
    """(training, validation) indices as torch tensors; --limit-train keeps the first N training rows."""
    import torch

    train, val = pool_indices(labels, config.validation_fraction, config.seed, config.stratify, resample)
    if config.limit_train is not None:
        train = train[: config.limit_train]
    return torch.from_numpy(train), torch.from_numpy(val)


def pool_size(config: DataConfig) -> int:
    """How many rows the study may learn from (every row but the test rows)."""
    if config.dataset == "table":
        return table_parts(config)[0].rows
    return int(_load_raw(config)[1].shape[0])


def load_train_test(config: DataConfig) -> Splits:
    """The whole pool for training, scored on the test split.

    For retraining a chosen configuration (never for tuning): ``val_*`` are the test
    tensors, so the per-epoch figures are test figures.
    """
    if config.dataset == "table":
        return _table_train_test(config)
    train_x, train_y, test_x, test_y, classes = _load_raw(config)
    if config.limit_train is not None:
        train_x, train_y = train_x[: config.limit_train], train_y[: config.limit_train]
    return Splits(
        train_x, train_y, test_x, test_y, test_x, test_y, classes, input_shape=IMAGE_SHAPE, **moments(train_x)
    )


def table_parts(config: DataConfig):
    """The rows a table study trains and validates on, and its test rows: (pool, test) `Table`s."""
    from objectives.data._tables import file_hash

    test_hash = file_hash(config.test_file) if config.test_file and Path(config.test_file).is_file() else None
    data_hash = file_hash(config.data_file) if Path(config.data_file).is_file() else None
    return _table_parts(
        config.data_file,
        data_hash,
        config.target,
        config.drop,
        config.fill_missing,
        config.test_file,
        test_hash,
        config.test_fraction,
        config.task,
        config.drop_missing_target,
        config.columns,
    )


@functools.lru_cache(maxsize=2)
def _table_parts(
    data_file, data_hash, target, drop, fill_missing, test_file, test_hash, test_fraction, task, unlabelled, columns
):
    import numpy as np

    from objectives.data._splits import stratified_split
    from objectives.data._tables import Table

    table = read_data(data_file, target, drop, fill_missing, task, columns, drop_missing_target=unlabelled)
    if test_file is None:
        keep, held = stratified_split(table.labels, test_fraction, TEST_SEED, "test split", table.classes)
        return table.take(keep), table.take(held)
    test = read_data(
        test_file,
        target,
        drop,
        fill_missing,
        "regression" if task == "regression" else "classification",
        feature_columns=table.numeric_names + table.text_names,
        drop_missing_target=unlabelled,
    )
    if (test.numeric_names, test.text_names) != (table.numeric_names, table.text_names):
        missing = sorted(set(table.numeric_names + table.text_names) - set(test.numeric_names + test.text_names))
        what = f"lacks column {missing[0]!r}" if missing else "has other columns (or other column types)"
        raise DataError(f"`test_file` {test_file} {what} than `data_file` {data_file}")
    if not table.classes:  # regression: the targets are numbers, nothing to map
        return table, test
    index = {name: i for i, name in enumerate(table.classes)}
    unknown = [c for c in test.classes if c not in index]
    if unknown:
        raise DataError(f"`test_file` {test_file} has class {unknown[0]!r}, which `data_file` {data_file} never shows")
    remap = np.array([index[c] for c in test.classes], dtype=np.int64)
    test = Table(
        test.numeric_names,
        test.numeric,
        test.text_names,
        test.text,
        remap[test.labels],
        table.classes,
        shape=test.shape,
        source_rows=test.source_rows,
    )
    return table, test


def read_data(
    path: str,
    target: str | None,
    drop: tuple[str, ...] = (),
    fill_missing: str | None = None,
    task: str | None = None,
    feature_columns: tuple[str, ...] | None = None,
    drop_missing_target: bool = False,
):
    """The user's file as a checked `Table`, read by the module of its kind (by suffix)."""
    from objectives.data._tables import SUFFIXES, read_table

    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"`data_file` {path}: unknown kind of file; use .csv, .parquet or .npz")
    if not Path(path).is_file():
        raise DataError(f"`data_file` {path}: no such file")
    if suffix == ".npz":
        from objectives.data._arrays import read_arrays

        return read_arrays(path, task)
    return read_table(path, target, drop, fill_missing, task, feature_columns, drop_missing_target)


def _encode(bins: int, train, *others) -> tuple[Any, list]:
    """Fit the preprocessing on ``train`` only (``bins`` quantile bins a numeric column), and apply it to every
    part: float32 features, labels (int64 classes, or float32 targets standardised with the training rows'
    mean and std)."""
    import torch

    from objectives.data._encoder import TableEncoder

    encoder = TableEncoder.fit(train, bins if train.shape is None else 0)  # arrays keep their rows' shape
    parts = []
    for part in (train, *others):
        x, _ = encoder.transform(part.numeric, part.text)
        if encoder.classes:
            y = torch.from_numpy(part.labels.copy())
        else:
            y = torch.from_numpy(((part.labels - encoder.target_mean) / encoder.target_std).astype("float32"))
        parts += [torch.from_numpy(x), y]
    return encoder, parts


def _table_splits(table, encoder, tensors: list) -> Splits:
    tx, ty, vx, vy, sx, sy = tensors
    shape = table.shape or (encoder.width,)
    task = "classification" if table.classes else "regression"
    return Splits(
        tx,
        ty,
        vx,
        vy,
        sx,
        sy,
        table.classes,
        0.0,
        1.0,
        encoder.to_dict(),
        shape,
        task,
        encoder.target_mean,
        encoder.target_std,
        table.rows,
        table.notes,
    )


def _table_split(config: DataConfig, resample: Resample) -> Splits:
    pool, test = table_parts(config)
    stratify = config.stratify and bool(pool.classes)
    train_idx, val_idx = pool_indices(pool.labels, config.validation_fraction, config.seed, stratify, resample)
    if config.limit_train is not None:
        train_idx = train_idx[: config.limit_train]
    encoder, tensors = _encode(config.bins, pool.take(train_idx), pool.take(val_idx), test)
    return _table_splits(pool, encoder, tensors)


def _table_train_test(config: DataConfig) -> Splits:
    pool, test = table_parts(config)
    if config.limit_train is not None:
        pool = pool.take(slice(0, config.limit_train))
    encoder, (tx, ty, sx, sy) = _encode(config.bins, pool, test)
    return _table_splits(pool, encoder, [tx, ty, sx, sy, sx, sy])


def _load_raw(config: DataConfig):
    return _raw(config.dataset, config.data_dir, config.download)


# One image set per process: confirmation's resamples (a fold after another) index the same arrays.
@functools.lru_cache(maxsize=1)
def _raw(dataset: str, data_dir: str, download: bool):
    if dataset == "synthetic":
        from objectives.data._synthetic import synthetic

        return synthetic()
    from objectives.data._images import load_images

    return load_images(dataset, data_dir, download)
