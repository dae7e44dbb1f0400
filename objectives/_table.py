"""The user's own data: a CSV or Parquet table, or an .npz with arrays ``x`` and ``y``.

A file is read once per process (pandas; Parquet through pyarrow), checked, and kept as
a numeric matrix plus text columns. Each split is then encoded for the MLP by a
`TableEncoder` fitted on that split's training rows only: numeric columns standardised
with their mean and std, text columns one-hot encoded with the categories seen there.
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

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".parquet", ".pq", ".npz")
FILL_MISSING = ("median",)
# A text column with more distinct values than this share of the rows (and than
# _ID_MIN_DISTINCT) is an identifier, not a category: one-hot encoding it learns nothing.
_ID_SHARE, _ID_MIN_DISTINCT = 0.5, 50
MISSING_CATEGORY = "(missing)"


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


@dataclass(frozen=True)
class TableEncoder:
    """Numeric columns standardised, text columns one-hot: fitted on training rows, saved with the model."""

    numeric_names: tuple[str, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    text_names: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]

    @classmethod
    def fit(cls, table: Table) -> TableEncoder:
        import numpy as np

        means = table.numeric.mean(axis=0) if table.rows else np.zeros(len(table.numeric_names))
        stds = table.numeric.std(axis=0) if table.rows else np.ones(len(table.numeric_names))
        stds = np.where(stds > 0, stds, 1.0)  # a constant column stays 0, not NaN
        categories = tuple(tuple(sorted(set(table.text[:, j].tolist()))) for j in range(len(table.text_names)))
        return cls(table.numeric_names, tuple(map(float, means)), tuple(map(float, stds)), table.text_names, categories, table.classes)

    @property
    def width(self) -> int:
        return len(self.numeric_names) + sum(len(c) for c in self.categories)

    def transform(self, numeric, text) -> tuple[Any, int]:
        """float32 features [n, width], and how many text values were categories it never saw."""
        import numpy as np

        n = numeric.shape[0]
        out = np.zeros((n, self.width), dtype=np.float32)
        k = len(self.numeric_names)
        if k:
            out[:, :k] = (numeric - np.asarray(self.means)) / np.asarray(self.stds)
        unseen, start = 0, k
        for j, cats in enumerate(self.categories):
            index = {c: i for i, c in enumerate(cats)}
            codes = np.fromiter((index.get(str(v), -1) for v in text[:, j].tolist()), dtype=np.int64, count=n)
            known = codes >= 0
            unseen += int((~known).sum())  # an unseen category is encoded as none of them
            out[np.nonzero(known)[0], start + codes[known]] = 1.0
            start += len(cats)
        return out, unseen

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric_names), "means": list(self.means), "stds": list(self.stds),
                "text": list(self.text_names), "categories": [list(c) for c in self.categories], "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TableEncoder:
        return cls(tuple(d["numeric"]), tuple(d["means"]), tuple(d["stds"]), tuple(d["text"]),
                   tuple(tuple(c) for c in d["categories"]), tuple(d["classes"]))


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
    """``path`` as a checked `Table`; a `DataError` naming the problem otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"--data {path}: unknown kind of file; use .csv, .parquet or .npz")
    if not Path(path).is_file():
        raise DataError(f"--data {path}: no such file")
    if suffix == ".npz":
        return _from_npz(path)
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
        raise DataError(f"--data {path} is not a {kind} table ({_first_line(exc)})") from exc
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
    numeric = _check_numbers(path, numeric, numeric_names, fill_missing)
    text = _text_columns(path, features, text_names, fill_missing)
    label_ids, classes = _classes(path, target, labels.to_numpy())
    return Table(tuple(numeric_names), numeric, tuple(text_names), text, label_ids, classes)


def _check_numbers(path: str, numeric, names: list[str], fill_missing: str | None):
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


def _classes(path: str, target: str, raw) -> tuple[Any, tuple[str, ...]]:
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


def _from_npz(path: str) -> Table:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"x", "y"} <= names:
                raise DataError(f"--data {path} must hold arrays x and y (it holds: {', '.join(sorted(names)) or 'nothing'})")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"--data {path} is not an .npz archive ({_first_line(exc)})") from exc
    if x.shape[0] != y.shape[0]:
        raise DataError(f"--data {path}: x has {x.shape[0]:,} rows but y has {y.shape[0]:,}; they must match")
    if x.shape[0] == 0:
        raise DataError(f"--data {path} has no rows")
    numeric = x.reshape(x.shape[0], -1).astype(np.float64)
    names = [f"x{j}" for j in range(numeric.shape[1])]
    numeric = _check_numbers(path, numeric, names, None)
    labels, classes = _classes(path, "y", y.reshape(-1))
    return Table(tuple(names), numeric, (), np.empty((x.shape[0], 0), dtype=object), labels, classes)


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


