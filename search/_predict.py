"""`search predict`: a saved table model applied to new rows, with the preprocessing it was trained with."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from search._errors import SearchError


def predict(model_path: str, data_path: str) -> tuple[Any, int, int]:
    """(a pandas DataFrame: the predicted label and each class's probability per row, unseen categories, filled gaps)."""
    import numpy as np
    import pandas as pd
    import torch

    from objectives import load_model
    from objectives.data._encoder import MISSING_CATEGORY, TableEncoder
    from objectives.data._tables import _read_frame

    model, record = load_model(model_path)
    if not record.get("preprocessing"):
        raise SearchError(f"{model_path} was trained on {record.get('dataset', 'an image data set')}; "
                          "search predict takes models trained on your own table (search run --data FILE)")
    encoder = TableEncoder.from_dict(record["preprocessing"])
    suffix = Path(data_path).suffix.lower()
    if not Path(data_path).is_file():
        raise SearchError(f"--data {data_path}: no such file")
    if suffix == ".npz":
        numeric, text = _npz_features(data_path, encoder)
        filled = 0
    elif suffix in (".csv", ".parquet", ".pq"):
        frame = _read_frame(data_path, suffix)
        needed = [*encoder.numeric_names, *encoder.text_names]
        missing = [c for c in needed if c not in frame.columns.map(str)]
        if missing:
            raise SearchError(f"--data {data_path} lacks column {missing[0]!r}, which the model needs "
                              f"(it was trained on: {', '.join(needed[:20])})")
        frame.columns = frame.columns.map(str)
        numeric = _numbers(frame, encoder.numeric_names, data_path)
        filled = int(np.isnan(numeric).sum())
        numeric = np.where(np.isnan(numeric), np.asarray(encoder.means), numeric)  # a gap takes the training mean
        text = frame[list(encoder.text_names)].astype(object).where(frame[list(encoder.text_names)].notna(), MISSING_CATEGORY)
        text = text.to_numpy(dtype=object) if encoder.text_names else np.empty((len(frame), 0), dtype=object)
    else:
        raise SearchError(f"--data {data_path}: unknown kind of file; use .csv, .parquet or .npz")
    x, unseen = encoder.transform(numeric, text)
    with torch.no_grad():
        probabilities = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    classes = list(record.get("classes") or encoder.classes)
    out = pd.DataFrame(probabilities, columns=[f"p_{c}" for c in classes])
    out.insert(0, "predicted", [classes[i] for i in probabilities.argmax(axis=1)])
    return out, unseen, filled


def _numbers(frame, names, path: str):
    import numpy as np
    import pandas as pd

    columns = []
    for name in names:
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = int((values.isna() & frame[name].notna()).sum())
        if bad:
            raise SearchError(f"--data {path}: column {name!r} must hold numbers, but {bad} of its values are not")
        columns.append(values.to_numpy(dtype=np.float64))
    return np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))


def _npz_features(path: str, encoder):
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        if "x" not in archive.files:
            raise SearchError(f"--data {path} must hold an array x")
        x = archive["x"]
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if x.shape[1] != len(encoder.numeric_names) or encoder.text_names:
        raise SearchError(f"--data {path}: x has {x.shape[1]} features per row, but the model takes {len(encoder.numeric_names)}")
    return x, np.empty((x.shape[0], 0), dtype=object)


def warn(unseen: int, filled: int) -> None:
    if unseen:
        print(f"warning: {unseen:,} text values were categories the model never saw; each was encoded as none of them",
              file=sys.stderr)
    if filled:
        print(f"warning: {filled:,} missing numbers were filled with the training mean", file=sys.stderr)
