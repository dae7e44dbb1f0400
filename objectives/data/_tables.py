"""The user's own tables: a CSV or Parquet file (arrays: `objectives.data._arrays`).

A file is read once per process (pandas; Parquet through pyarrow), checked, and kept as
a numeric matrix plus text columns. Each split is then encoded for the network by a
`TableEncoder` (`objectives.data._encoder`) fitted on that split's training rows only:
numeric columns standardised, gaps filled with the training median, text columns
one-hot encoded with the categories seen there. Labels may be strings or numbers; they
become classes in sorted order, and the names are kept. A regression target stays a number.

Every problem a file has is named in one `DataError`, all at once (file, column, what
to do): a file that is not a table, no rows, a misspelt target, one class, missing
values or infinities, a text column with so many values that it cannot be a category.
Columns that hold one value in every row are left out, with a note.
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
from objectives.data._columns import index_columns, number_problems, stray_values, text_columns

if TYPE_CHECKING:
    import pandas as pd

SUFFIXES = (".csv", ".parquet", ".pq", ".npz")
FILL_MISSING = ("median",)
# A numeric target with more distinct values than this (and than this share of the rows)
# looks like a number to predict, not a class.
_CONTINUOUS_DISTINCT, _CONTINUOUS_SHARE = 20, 0.05
_SEPARATORS = (";", "\t", "|")


@dataclass(frozen=True)
class Table:
    """A file's rows: numeric columns as one float64 matrix (gaps as NaN), text columns as strings,
    labels as class indices (int64), or as numbers (float64) for regression, when ``classes`` is empty."""

    numeric_names: tuple[str, ...]
    numeric: Any  # numpy float64 [n, len(numeric_names)]
    text_names: tuple[str, ...]
    text: Any  # numpy object [n, len(text_names)]
    labels: Any  # numpy int64 [n] indices into classes; float64 [n] for regression
    classes: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what reading did that the user should know (a constant column left out)
    shape: tuple[int, ...] | None = None  # one row's shape, for arrays; None: (features,)
    source_rows: Any = None  # each row's position among the file's rows (numpy int64); None: 0..n-1

    @property
    def rows(self) -> int:
        return int(self.labels.shape[0])

    def take(self, rows) -> Table:
        return Table(
            self.numeric_names,
            self.numeric[rows],
            self.text_names,
            self.text[rows],
            self.labels[rows],
            self.classes,
            self.notes,
            self.shape,
            self.positions[rows],
        )

    @property
    def positions(self):
        """Each row's position among the file's rows (a row without a target left out shifts none)."""
        import numpy as np

        return self.source_rows if self.source_rows is not None else np.arange(self.rows)


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


def read_table(
    path: str,
    target: str | None,
    drop: tuple[str, ...] = (),
    fill_missing: str | None = None,
    task: str | None = None,
    feature_columns: tuple[str, ...] | None = None,
    drop_missing_target: bool = False,
) -> Table:
    """A CSV or Parquet file as a checked `Table`; one `DataError` naming every problem otherwise.

    ``task`` None: classification, refused when the target looks like a number to predict.
    ``feature_columns``: the feature columns to take (a test file read with its training file's columns).
    ``drop_missing_target``: rows without a target value are left out (with a note), not refused.
    """
    if not target:
        raise DataError(f"`data_file` {path} needs `target` COLUMN: the column to predict")
    frame = read_frame(path)
    return _from_frame(path, frame, target, drop, fill_missing, task, feature_columns, drop_missing_target)


def read_frame(path: str, text_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """The file as a DataFrame; ``text_columns`` are read as text whatever they look like."""
    import pandas as pd

    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".csv":
            with warnings.catch_warnings():  # a column of mixed types is read as text: said later if it matters
                warnings.simplefilter("ignore", pd.errors.DtypeWarning)
                frame = pd.read_csv(path, sep=_separator(path), dtype={c: str for c in text_columns} or None)
        else:
            frame = pd.read_parquet(path)
    except ImportError as exc:
        raise DataError(
            f"`data_file` {path}: reading Parquet needs pyarrow; install it with: pip install 'pyarrow'"
        ) from exc
    except pd.errors.EmptyDataError:
        raise DataError(f"`data_file` {path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise DataError(f"`data_file` {path} is not a {kind} table ({first_line(exc)})") from exc
    if frame.shape[0] == 0:
        raise DataError(f"`data_file` {path} has a header but no rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _separator(path: str) -> str:
    """The CSV's separator: a comma, or the one its header is split by (;, tab or |) when it has no comma."""
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            header = f.readline()
    except OSError:
        return ","
    if "," in header:
        return ","
    counts = {sep: header.count(sep) for sep in _SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _from_frame(
    path: str,
    frame: pd.DataFrame,
    target: str,
    drop: tuple[str, ...],
    fill_missing: str | None,
    task: str | None,
    feature_columns: tuple[str, ...] | None = None,
    drop_missing_target: bool = False,
) -> Table:
    import numpy as np
    import pandas as pd

    columns = list(frame.columns)
    if target not in columns:
        close = difflib.get_close_matches(target, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"`target` {target!r} is not a column of {path}{hint} (columns: {', '.join(columns[:20])})")
    unknown = [c for c in drop if c not in columns]
    if unknown:
        raise DataError(f"`drop` {unknown[0]!r} is not a column of {path} (columns: {', '.join(columns[:20])})")
    if target in drop:
        raise DataError(f"`drop` {target!r} is the `target` column")
    problems: list[str] = []
    notes: list[str] = []
    unlabelled = int(frame[target].isna().sum())
    if unlabelled and drop_missing_target:
        frame = frame[frame[target].notna()]
        notes.append(f"{unlabelled:,} rows without a value of the target {target!r} are left out")
        if len(frame) == 0:
            raise DataError(f"`data_file` {path} has no row with a `target` {target!r} value")
    elif unlabelled:
        problems.append(
            f"rows without a `target` {target!r} value ({unlabelled:,}); remove those rows, "
            "or `drop_missing_target` leaves them out"
        )
    labels = frame[target]
    features = frame.drop(columns=[target, *drop])
    if feature_columns is not None:
        # A test file takes its training file's columns: a pixel that is blank in every test
        # row is still a feature, and one left out of training stays out.
        features = features[[c for c in feature_columns if c in features.columns]]
        constant = []
    else:
        index = index_columns(features)
        notes += [f"column {c!r} numbers the rows (an index saved with the file); it is left out" for c in index]
        features = features.drop(columns=index)
        constant = [c for c in features.columns if features[c].nunique(dropna=False) <= 1]
        features = features.drop(columns=constant)
    if features.shape[1] == 0:
        raise DataError(
            f"{path} has no feature columns besides `target` {target!r}"
            + (f" (the constant ones were left out: {', '.join(constant)})" if constant else "")
        )
    numeric_names = [
        c
        for c in features.columns
        if pd.api.types.is_numeric_dtype(features[c]) and not pd.api.types.is_bool_dtype(features[c])
    ]
    text_names = [c for c in features.columns if c not in numeric_names]
    numeric = features[numeric_names].to_numpy(dtype=np.float64) if numeric_names else np.zeros((len(frame), 0))
    problems += number_problems(numeric, numeric_names, fill_missing)
    stray = stray_values(features, text_names, path)
    problems += stray.values()
    text = text_columns(features, text_names, fill_missing, problems, set(stray))
    label_ids, classes = None, ()
    if not labels.isna().any():
        try:
            label_ids, classes = labels_of(path, target, labels.to_numpy(), task)
        except DataError as exc:
            if not problems:
                raise
            problems.append(str(exc).replace(f" of {path}", ""))
    if len(problems) == 1:
        raise DataError(f"{path} has {problems[0]}")
    if problems:
        raise DataError(
            f"{path} has {len(problems)} problems: " + "; ".join(f"({i}) {p}" for i, p in enumerate(problems, 1))
        )
    notes += [f"column {c!r} has one value in every row; it is left out" for c in constant]
    positions = frame.index.to_numpy(dtype=np.int64)  # read_frame's rows are numbered 0..n-1
    return Table(
        tuple(numeric_names), numeric, tuple(text_names), text, label_ids, classes, tuple(notes), None, positions
    )


def labels_of(path: str, target: str, raw, task: str | None) -> tuple[Any, tuple[str, ...]]:
    """Class indices and names (classification), or float64 values and no names (regression)."""
    import numpy as np

    values = raw.astype(object)
    numbers = [_is_number(v) for v in values.tolist()]
    if task == "regression":
        if not all(numbers):
            # A column with one word in it is read as text: name the value that is not a number, not "2.5".
            bad = next((v for v in values.tolist() if not _parses(v)), values[numbers.index(False)])
            raise DataError(f"`task` regression needs a numeric `target`, but {target!r} holds {bad!r}")
        return values.astype(np.float64), ()
    keys = sorted(set(values.tolist()), key=lambda v: (0, float(v), "") if _is_number(v) else (1, 0.0, str(v)))
    if task is None and all(numbers) and _looks_continuous(keys, len(values)):
        raise DataError(
            f"`target` {target!r} of {path} looks like a number to predict ({len(keys):,} distinct values); "
            "add `task` regression (or `task` classification if each value is a class)"
        )
    if len(keys) < 2:
        raise DataError(
            f"`target` {target!r} of {path} has one class ({_name(keys[0])!r}); a classifier needs at least two"
        )
    index = {k: i for i, k in enumerate(keys)}
    return np.fromiter((index[v] for v in values.tolist()), dtype=np.int64, count=len(values)), tuple(
        _name(k) for k in keys
    )


def _looks_continuous(keys: list, rows: int) -> bool:
    fractional = any(float(k) != int(float(k)) for k in keys)
    many = len(keys) > max(_CONTINUOUS_DISTINCT, _CONTINUOUS_SHARE * rows)
    return many or (fractional and len(keys) > _CONTINUOUS_DISTINCT)


def _parses(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or type(value).__module__ == "numpy"


def _name(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
