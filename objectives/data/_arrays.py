"""The user's arrays: an .npz file with ``x`` (rows of any shape) and ``y`` (one label or number per row).

A model function receives rows in their own shape (``x.shape[1:]``: 8x8 images stay 8x8);
the built-in MLP flattens them. Every malformed archive is one `DataError` line.
"""

from __future__ import annotations

from objectives._errors import DataError
from objectives.data._columns import number_problems
from objectives.data._tables import Table, first_line, labels_of


def read_arrays(path: str, task: str | None = None) -> Table:
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if not {"x", "y"} <= names:
                raise DataError(
                    f"`data_file` {path} must hold arrays x and y (it holds: {', '.join(sorted(names)) or 'nothing'})"
                )
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:  # not a zip, or an object array (pickles are never loaded)
        raise DataError(f"`data_file` {path} is not an .npz archive of plain arrays ({first_line(exc)})") from exc
    _check_shapes(path, x, y)
    numeric = x.reshape(x.shape[0], -1).astype(np.float64)
    names = [f"x{j}" for j in range(numeric.shape[1])]
    problems = number_problems(numeric, names, None)
    if problems:
        raise DataError(f"`data_file` {path}: x has {'; '.join(problems)}")
    labels, classes = labels_of(path, "y", y.reshape(-1), task)
    return Table(
        tuple(names),
        numeric,
        (),
        np.empty((x.shape[0], 0), dtype=object),
        labels,
        classes,
        shape=tuple(int(d) for d in x.shape[1:]),
    )


def _check_shapes(path: str, x, y) -> None:
    import numpy as np

    if x.ndim < 2:
        raise DataError(
            f"`data_file` {path}: x has shape {x.shape}, but must have one row per sample (shape (rows, ...))"
        )
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"`data_file` {path}: x holds {x.dtype} values, but must hold numbers")
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise DataError(
            f"`data_file` {path}: y has shape {y.shape}, but must hold one label or number per row (shape (rows,))"
        )
    if x.shape[0] != y.shape[0]:
        raise DataError(f"`data_file` {path}: x has {x.shape[0]:,} rows but y has {y.shape[0]:,}; they must match")
    if x.shape[0] == 0:
        raise DataError(f"`data_file` {path} has no rows")
    if not (np.issubdtype(y.dtype, np.number) or y.dtype.kind in "USb"):
        raise DataError(f"`data_file` {path}: y holds {y.dtype} values, but must hold labels (numbers or text)")
