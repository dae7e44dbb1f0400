"""A table study's own split as files: the test rows it never searched on, and the rows it did.

With them a user fits their own baselines on exactly the rows the tool used, and compares
on the same test rows. The rows are the file's own (every column, as read), in its order.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from objectives import DataConfig
from search._errors import SearchError
from search.study._record import STUDY_ATTR
from search.trained._export import table_options

if TYPE_CHECKING:
    import optuna

SUFFIXES = (".csv", ".parquet")


def study_data(study: optuna.Study) -> DataConfig:
    """The table a study was made from, as its record describes it (the file must be unchanged)."""
    from search.trained._retrain import check_hashes

    made = study.user_attrs.get(STUDY_ATTR) or {}
    if made.get("dataset") != "table":
        raise SearchError(
            f"study {study.study_name!r} is on the image set {made.get('dataset', '(unknown)')}: its test rows are "
            "the set's own test split (t10k)"
        )
    table = made["table"]
    data = DataConfig(dataset="table", **table_options(table, made.get("task"), f"study {study.study_name!r}"))
    check_hashes(f"study {study.study_name!r}", data, {k: table[k] for k in ("sha256", "test_sha256") if table.get(k)})
    return data


def write_split(study: optuna.Study, test_output: str | Path, pool_output: str | Path | None = None) -> list[str]:
    """Write the study's test rows to ``test_output`` (and the rows it searched on to ``pool_output``);
    a line for each file written."""
    from objectives.data import read_frame, table_parts

    outputs = [Path(p) for p in (test_output, pool_output) if p is not None]
    for path in outputs:
        if path.suffix.lower() not in SUFFIXES:
            raise SearchError(f"`output` {path}: write a .csv or .parquet file")
    data = study_data(study)
    if str(data.data_file).lower().endswith(".npz"):
        raise SearchError(f"study {study.study_name!r} is on arrays ({data.data_file}); split writes tables")
    pool, test = table_parts(data)
    parts = [(test, data.test_file or data.data_file, "test rows"), (pool, data.data_file, "rows it searched on")]
    lines = []
    for path, (rows, source, what) in zip(outputs, parts, strict=False):
        frame = read_frame(source).iloc[rows.positions]
        _write_frame(frame, path)
        lines.append(f"wrote the {len(frame):,} {what} of {study.study_name!r} (from {source}) to {path}")
    return lines


def _write_frame(frame, path: Path) -> None:
    """The rows as CSV or Parquet, whole or not at all."""
    import io

    from search._files import write_bytes

    if path.suffix.lower() == ".csv":
        write_bytes(path, frame.to_csv(index=False).encode())
        return
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    write_bytes(path, buffer.getvalue())
