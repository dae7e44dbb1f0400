"""Checks on a table's columns: a saved row index, numbers with a typo, gaps and infinities, categories.

Each check names the column and what to do; `objectives.data._tables` gathers them into one error.
"""

from __future__ import annotations

import re

MISSING_CATEGORY = "(missing)"  # the category a missing text cell becomes
# A text column with more distinct values than this (or this share of the rows, if more)
# is not a category: one-hot encoding it would make thousands of inputs that learn nothing.
MAX_CATEGORIES, MAX_CATEGORY_SHARE = 50, 0.05
# A column pandas names for a header cell left blank: what `DataFrame.to_csv()` writes for the index.
_UNNAMED = re.compile(r"^Unnamed: \d+$")
# A text column whose values are numbers but for this many (and this share) holds a typo, not text.
_STRAY_MAX, _STRAY_SHARE = 5, 0.02
# A column named anything that counts 0..n-1 or 1..n in order is an index once there are this many rows
# (in a handful of rows, a feature may well read 1, 2, 3).
_INDEX_ROWS = 20


def index_columns(features) -> list[str]:
    """The columns that only number the rows (left out, with a note)."""
    return [c for c in features.columns if _numbers_rows(c, features[c])]


def _numbers_rows(name: str, column) -> bool:
    """Whether a column only numbers the rows: 0..n-1 or 1..n in order, or a blank-headed column of
    increasing whole numbers (a pandas index written by ``to_csv()``, after some rows were removed too)."""
    import numpy as np
    import pandas as pd

    if len(column) < 3 or column.isna().any() or not pd.api.types.is_integer_dtype(column):
        return False
    values = column.to_numpy()
    steps = np.diff(values)
    if _UNNAMED.match(str(name)):
        return bool((steps > 0).all())
    return len(values) >= _INDEX_ROWS and bool((steps == 1).all()) and int(values[0]) in (0, 1)


def stray_values(features, names: list[str], path: str) -> dict[str, str]:
    """Columns of numbers that pandas read as text because of a few typos ('12O'): the problem of each,
    naming the values and their rows."""
    import pandas as pd

    problems = {}
    for name in names:
        column = features[name]
        present = column.notna()
        parsed = pd.to_numeric(column[present].astype(str).str.strip(), errors="coerce")
        bad = parsed[parsed.isna()]
        if len(parsed) == 0 or not 0 < len(bad) <= max(_STRAY_MAX, _STRAY_SHARE * len(parsed)):
            continue
        line = 2 if str(path).lower().endswith(".csv") else None  # a CSV's header is line 1
        shown = [_where(features, i, column[i], line) for i in bad.index[:3]]
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        problems[name] = (
            f"a column of numbers {name!r} with {len(bad)} value{'s' if len(bad) > 1 else ''} that "
            f"{'are' if len(bad) > 1 else 'is'} not a number: {', '.join(shown)}{more}; correct "
            f"{'them' if len(bad) > 1 else 'it'} (or remove {'those rows' if len(bad) > 1 else 'that row'})"
        )
    return problems


def _where(features, label, value, line: int | None) -> str:
    row = int(label)  # the frame keeps the file's row numbers (rows without a target left out or not)
    place = f"line {row + line}" if line is not None else f"row {row + 1}"
    return f"{value!r} on {place}"


def number_problems(numeric, names: list[str], fill_missing: str | None) -> list[str]:
    """Infinities, and gaps unless ``fill_missing`` fills them: one problem each, naming the columns."""
    import numpy as np

    problems = []
    infinite = np.isinf(numeric).sum(axis=0)
    if infinite.any():
        listed = ", ".join(f"{names[j]} ({int(infinite[j])})" for j in np.nonzero(infinite)[0])
        problems.append(f"infinite values in {listed}; replace or remove them")
    missing = np.isnan(numeric).sum(axis=0)
    if missing.any() and fill_missing != "median":
        listed = ", ".join(f"{names[j]} ({int(missing[j])})" for j in np.nonzero(missing)[0])
        problems.append(
            f"missing values in {listed}; fill numeric columns with `fill_missing` median, "
            "or remove those rows or columns (`drop` COLUMN)"
        )
    elif missing.any():
        empty = [names[j] for j in np.nonzero(missing == numeric.shape[0])[0]]
        problems += [f"a column {name!r} with no values at all; drop it with `drop` {name}" for name in empty]
    return problems


def text_columns(features, names: list[str], fill_missing: str | None, problems: list[str], said: set[str]):
    """The text columns as strings; a problem for each with gaps (unless filled) or too many values
    (unless ``said``: a column whose problem is named already)."""
    import numpy as np

    if not names:
        return np.empty((len(features), 0), dtype=object)
    rows = len(features)
    bound = max(MAX_CATEGORIES, int(MAX_CATEGORY_SHARE * rows))
    columns = []
    for name in names:
        column = features[name]
        missing = int(column.isna().sum())
        if missing and fill_missing is None:
            problems.append(
                f"missing values in text column {name} ({missing}); "
                f"`fill_missing` median makes them a category of their own, or `drop` {name}"
            )
        values = column.astype(object).where(column.notna(), MISSING_CATEGORY).map(str)
        distinct = int(values.nunique())
        if distinct > bound and name not in said:
            problems.append(
                f"a text column {name!r} with {distinct:,} distinct values in {rows:,} rows, more than a "
                f"category can have ({bound:,}: it looks like an identifier or free text); drop it with `drop` {name}"
            )
        columns.append(values.to_numpy(dtype=object))
    return np.stack(columns, axis=1)
