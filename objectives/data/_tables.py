"""The user's own tables: a CSV or Parquet file (arrays: `objectives.data._arrays`).

A file is read once per process (pandas; Parquet through pyarrow), checked, and kept as
a numeric matrix plus text columns. Each split is then encoded for the network by a
`TableEncoder` (`objectives.data._encoder`) fitted on that split's training rows only:
numeric columns standardised with their mean and std, text columns one-hot encoded with
the categories seen there.
Labels may be strings or numbers; they become classes in sorted order, and the names are
kept (the saved model carries them and the encoder, so `search predict` can use them).

Every problem a file can have is one `DataError` naming the file, the column and what to
do: a file that is not a table, no rows, a misspelt target, one class, missing values or
infinities, a text column that looks like an identifier.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from objectives._errors import DataError
from objectives.data._encoder import MISSING_CATEGORY

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".parquet", ".pq", ".npz")
FILL_MISSING = ("median",)
# A text column with more distinct values than this share of the rows (and than
# _ID_MIN_DISTINCT) is an identifier, not a category: one-hot encoding it learns nothing.
_ID_SHARE, _ID_MIN_DISTINCT = 0.5, 50


@dataclass(frozen=True)
class Table:
    """A file's rows: numeric columns as one float64 matrix, text columns as strings, labels as classes."""

    numeric_names: tuple[str, ...]
    numeric: Any  # numpy float64 [n, len(numeric_names)]
    text_names: tuple[str, ...]
    text: Any  # numpy object [n, len(text_names)]
    labels: Any  # numpy int64 [n]: indices into classes
    classes: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])

    def take(self, rows) -> Table:
        return Table(self.numeric_names, self.numeric[rows], self.text_names, self.text[rows], self.labels[rows], self.classes)


def file_hash(path: str | Path) -> str:
    """The sha256 of a file's content (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _hash(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _hash(path: str, size: int, mtime: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_table(path: str, target: str | None, drop: tuple[str, ...] = (), fill_missing: str | None = None) -> Table:
    """A CSV or Parquet file as a checked `Table`; a `DataError` naming the problem otherwise."""
    suffix = Path(path).suffix.lower()
    if not target:
        raise DataError(f"--data {path} needs --target COLUMN: the column to predict")
    return _from_frame(path, _read_frame(path, suffix), target, drop, fill_missing)


def _read_frame(path: str, suffix: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if suffix == ".csv":
            with warnings.catch_warnings():  # a column of mixed types is read as text: said later if it matters
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(f"--data {path}: reading Parquet needs pyarrow; install it with: pip install 'pyarrow'") from exc
    except pd.errors.EmptyDataError:
        raise DataError(f"--data {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(f"--data {path} is not a {kind} table ({first_line(exc)})") from exc
    if frame.shape[0] == 0:
        raise DataError(f"--data {path} has a header but no rows")
    return frame


def _from_frame(path: str, frame: pd.DataFrame, target: str, drop: tuple[str, ...], fill_missing: str | None) -> Table:
    import numpy as np
    import pandas as pd

    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if target not in columns:
        close = difflib.get_close_matches(target, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"--target {target!r} is not a column of {path}{hint} (columns: {', '.join(columns[:20])})")
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise DataError(f"--drop {unknown[0]!r} is not a column of {path} (columns: {', '.join(columns[:20])})")
    if target in drop:
        raise DataError(f"--drop {target!r} is the --target column")
    labels = frame[target]
    if labels.isna().any():
        raise DataError(f"--target {target!r} is missing in {int(labels.isna().sum())} rows of {path}; remove those rows")
    features = frame.drop(columns=[target, *drop])
    if features.shape[1] == 0:
        raise DataError(f"{path} has no feature columns besides --target {target!r}")
    numeric_names = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])]
    text_names = [c for c in features.columns if c not in numeric_names]
    numeric = features[numeric_names].to_numpy(dtype=np.float64) if numeric_names else np.zeros((len(frame), 0))
    numeric = check_numbers(path, numeric, numeric_names, fill_missing)
    text = _text_columns(path, features, text_names, fill_missing)
    label_ids, classes = classes_of(path, target, labels.to_numpy())
    return Table(tuple(numeric_names), numeric, tuple(text_names), text, label_ids, classes)


def check_numbers(path: str, numeric, names: list[str], fill_missing: str | None):
    import numpy as np

    infinite = np.isinf(numeric).sum(axis=0)
    if infinite.any():
        listed = ", ".join(f"{names[j]} ({int(infinite[j])})" for j in np.nonzero(infinite)[0])
        raise DataError(f"{path} has infinite values in {listed}; replace or remove them")
    missing = np.isnan(numeric).sum(axis=0)
    if missing.any():
        if fill_missing != "median":
            listed = ", ".join(f"{names[j]} ({int(missing[j])})" for j in np.nonzero(missing)[0])
            raise DataError(f"{path} has missing values in {listed}; fill numeric columns with --fill-missing median, "
                            "or remove those rows or columns (--drop COLUMN)")
        numeric = numeric.copy()
        for j in np.nonzero(missing)[0]:
            column = numeric[:, j]
            if np.isnan(column).all():
                raise DataError(f"{path}: column {names[j]!r} has no values at all; drop it with --drop {names[j]}")
            column[np.isnan(column)] = np.nanmedian(column)
    return numeric


def _text_columns(path: str, features, names: list[str], fill_missing: str | None):
    import numpy as np

    if not names:
        return np.empty((len(features), 0), dtype=object)
    rows = len(features)
    columns = []
    for name in names:
        column = features[name]
        missing = int(column.isna().sum())
        if missing and fill_missing is None:
            raise DataError(f"{path} has missing values in text column {name} ({missing}); "
                            f"--fill-missing median makes them a category of their own, or --drop {name}")
        values = column.astype(object).where(column.notna(), MISSING_CATEGORY).map(str)
        distinct = int(values.nunique())
        if distinct > max(_ID_MIN_DISTINCT, _ID_SHARE * rows):
            raise DataError(f"{path}: column {name!r} looks like an identifier ({distinct:,} distinct values in {rows:,} rows); "
                            f"drop it with --drop {name}")
        columns.append(values.to_numpy(dtype=object))
    return np.stack(columns, axis=1)


def classes_of(path: str, target: str, raw) -> tuple[Any, tuple[str, ...]]:
    import numpy as np

    values = raw.astype(object)
    # Numbers sort as numbers (2 before 10); the names are their text.
    keys = sorted(set(values.tolist()), key=lambda v: (0, float(v), "") if _is_number(v) else (1, 0.0, str(v)))
    if len(keys) < 2:
        raise DataError(f"--target {target!r} of {path} has one class ({_name(keys[0])!r}); a classifier needs at least two")
    index = {k: i for i, k in enumerate(keys)}
    return np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values)), tuple(_name(k) for k in keys)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or type(value).__module__ == "numpy"


def _name(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
