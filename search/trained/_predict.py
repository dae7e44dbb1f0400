"""`search predict`: a saved table model applied to new rows, with the preprocessing it was trained with.

The file is read with the model's text columns as text (``10`` stays the category
``10``, not the number 10.0), gaps in numbers take the training rows' median (as they
did in training), and each row gets the predicted label and each class's probability,
or, for regression, the predicted number.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from search._errors import SearchError

# A text column with more than this share of its values unseen in training is another kind of data.
UNSEEN_SHARE = 0.5


def predict(
    model_path: str, data_path: str, accept_unseen: bool = False, function: str | None = None
) -> tuple[Any, dict[str, int]]:
    """(a pandas DataFrame, one row per input row in its order; counts of what the user should know)."""
    from objectives import load_model
    from objectives.data import file_hash, read_frame

    model, record = load_model(model_path, function)
    encoder = encoder_of(record, model_path)
    suffix = Path(data_path).suffix.lower()
    if not Path(data_path).is_file():
        raise SearchError(f"`data` {data_path}: no such file")
    if suffix == ".npz":
        numeric, text = _npz_features(data_path, encoder)
    elif suffix in (".csv", ".parquet", ".pq"):
        numeric, text = features(read_frame(data_path, tuple(encoder.text_names)), encoder, f"`data` {data_path}")
    else:
        raise SearchError(f"`data` {data_path}: unknown kind of file; use .csv, .parquet or .npz")
    out, counts = apply(model, record, encoder, numeric, text, f"`data` {data_path}", accept_unseen)
    counts["trained_on"] = int(record.get("sha256") == file_hash(data_path))
    return out, counts


def encoder_of(record: dict, where: str):
    from objectives.data import TableEncoder

    if not record.get("preprocessing"):
        raise SearchError(
            f"{where} was trained on {record.get('dataset', 'an image data set')}; "
            "search predict takes models trained on your own table (search run `data` FILE)"
        )
    return TableEncoder.from_dict(record["preprocessing"])


def features(frame, encoder, what: str):
    """The model's numeric and text columns of ``frame`` (text as training saw it; gaps as gaps)."""
    import numpy as np

    from objectives.data import MISSING_CATEGORY

    frame.columns = [str(c) for c in frame.columns]
    needed = [*encoder.numeric_names, *encoder.text_names]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise SearchError(
            f"{what} lacks column {missing[0]!r}, which the model needs (it was trained on: {', '.join(needed[:20])})"
        )
    numeric = _numbers(frame, encoder.numeric_names, what)
    text = np.empty((len(frame), 0), dtype=object)
    if encoder.text_names:
        columns = frame[list(encoder.text_names)].astype(object)
        text = columns.where(columns.notna(), MISSING_CATEGORY).map(_category).to_numpy(dtype=object)
    return numeric, text


def apply(
    model, record: dict, encoder, numeric, text, what: str, accept_unseen: bool = False
) -> tuple[Any, dict[str, int]]:
    """The network's predictions on encoded rows: labels and probabilities, or numbers."""
    import numpy as np
    import pandas as pd
    import torch

    counts = {"unseen": 0, "filled": int(np.isnan(numeric).sum()), "trained_on": 0}
    if not accept_unseen:
        _check_categories(encoder, text, what)
    x, counts["unseen"] = encoder.transform(numeric, text)
    shape = tuple(record.get("input_shape") or (x.shape[1],))
    with torch.no_grad():
        out = model(torch.from_numpy(x).view(-1, *shape))
    if not encoder.classes:  # regression: the predicted number, in the target's units
        return pd.DataFrame(
            {"predicted": out.reshape(-1).double().numpy() * encoder.target_std + encoder.target_mean}
        ), counts
    probabilities = torch.softmax(out, dim=1).numpy()
    classes = list(record.get("classes") or encoder.classes)
    result = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in classes])
    result.insert(0, "predicted", [classes[i] for i in probabilities.argmax(axis=1)])
    return result, counts


def _check_categories(encoder, text, what: str) -> None:
    """Refuse a file whose text columns are mostly categories the model never saw: not the data it was trained for."""
    for j, (name, known) in enumerate(zip(encoder.text_names, encoder.categories, strict=True)):
        values = text[:, j]
        unseen = sum(1 for v in values if v not in set(known))
        if len(values) and unseen / len(values) > UNSEEN_SHARE:
            raise SearchError(
                f"{what}: {unseen:,} of {len(values):,} values of text column {name!r} are categories "
                f"the model never saw (it knows {', '.join(map(repr, known[:5]))}{', ...' if len(known) > 5 else ''}); "
                "is this the kind of file it was trained on? `accept_unseen` predicts anyway"
            )


def _category(value) -> str:
    """A text value as training saw it (a float-typed whole number of a Parquet column: ``10``, not ``10.0``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _numbers(frame, names, what: str):
    import numpy as np
    import pandas as pd

    columns = []
    for name in names:
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = int((values.isna() & frame[name].notna()).sum())
        if bad:
            raise SearchError(
                f"{what}: column {name!r} must hold numbers, as it did in training, but "
                f"{_count(bad, 'of its values is', 'of its values are')} not"
            )
        columns.append(values.to_numpy(dtype=np.float64))
    return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))


def _npz_features(path: str, encoder):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                raise SearchError(f"`data` {path} must hold an array x")
            x = archive["x"]
    except (ValueError, OSError, EOFError) as exc:
        raise SearchError(f"`data` {path} is not an .npz archive of plain arrays ({exc})") from exc
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise SearchError(f"`data` {path}: x must hold numbers, one row per sample (it has shape {x.shape}, {x.dtype})")
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if x.shape[1] != len(encoder.numeric_names) or encoder.text_names:
        raise SearchError(
            f"`data` {path}: x has {x.shape[1]} features per row, but the model takes {len(encoder.numeric_names)}"
        )
    return x, np.empty((x.shape[0], 0), dtype=object)


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def warn(counts: dict[str, int], data_path: str) -> None:
    if counts.get("trained_on"):
        print(
            f"warning: {data_path} is the file the model was trained on; predictions on its training rows "
            "say nothing about new data",
            file=sys.stderr,
        )
    if counts.get("unseen"):
        print(
            f"warning: {_count(counts['unseen'], 'text value was a category', 'text values were categories')} the model "
            "never saw; each was encoded as none of them",
            file=sys.stderr,
        )
    if counts.get("filled"):
        print(
            f"warning: {_count(counts['filled'], 'missing number was', 'missing numbers were')} filled with the training "
            "rows' median, as in training",
            file=sys.stderr,
        )
