"""The user's arrays: an .npz file with ``x`` (any shape per row, flattened) and ``y``."""

from __future__ import annotations

from objectives._errors import DataError
from objectives.data._tables import Table, check_numbers, classes_of, first_line


def read_arrays(path: str) -> Table:
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
        raise DataError(f"--data {path} is not an .npz archive ({first_line(exc)})") from exc
    if x.shape[0] != y.shape[0]:
        raise DataError(f"--data {path}: x has {x.shape[0]:,} rows but y has {y.shape[0]:,}; they must match")
    if x.shape[0] == 0:
        raise DataError(f"--data {path} has no rows")
    numeric = x.reshape(x.shape[0], -1).astype(np.float64)
    names = [f"x{j}" for j in range(numeric.shape[1])]
    numeric = check_numbers(path, numeric, names, None)
    labels, classes = classes_of(path, "y", y.reshape(-1))
    return Table(tuple(names), numeric, (), np.empty((x.shape[0], 0), dtype=object), labels, classes)
