"""A yardstick for a table: scikit-learn's HistGradientBoosting, at its defaults, on the pick's own resamples.

Gradient-boosted trees are what a tuned network on a table has to match. They are fitted
on exactly the rows each of the pick's fresh resamples trains on (its own handling of
missing numbers; text columns as categories), and scored by the study's metric on the
same validation rows; the paired difference says whether the tuned network earns its keep.
"""

from __future__ import annotations

import statistics

from objectives import Metric
from objectives.data import DataConfig, Resample, pool_indices
from search.confirmation._plan import Plan
from search.confirmation._rules import estimate
from search.confirmation._summary import Yardstick

NAME = "HistGradientBoosting"
_MAX_CATEGORIES = 255  # scikit-learn's limit for a categorical feature; a wider column is given as its codes


def yardstick(data: DataConfig, metric: Metric, plan: Plan, pick: dict[str, float]) -> Yardstick | None:
    """The yardstick's value on each of the pick's fresh resamples, its mean, and the pick's paired lead."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return Yardstick(NAME, error="scikit-learn is not installed: pip install scikit-learn")
    from objectives.data import table_parts

    pool, _ = table_parts(data)
    values = {key: _score(pool, data, metric, Resample.from_key(key)) for key in plan.estimate if key in pick}
    if not values:
        return None
    sign = 1.0 if metric.maximize else -1.0
    lead = estimate([sign * (pick[k] - v) for k, v in values.items()], plan.test_to_train)
    return Yardstick(
        name=NAME,
        values=values,
        mean=statistics.fmean(values.values()),
        lead=lead["mean"],
        lead_low=lead["low"],
        lead_high=lead["high"],
        n=len(values),
    )


def _score(pool, data: DataConfig, metric: Metric, resample: Resample) -> float:
    import numpy as np

    stratify = data.stratify and bool(pool.classes)
    train, val = pool_indices(pool.labels, data.validation_fraction, data.seed, stratify, resample)
    if data.limit_train is not None:
        train = train[: data.limit_train]
    x_train, x_val, categorical = _features(pool, train, val)
    if pool.classes:
        return _classify(x_train, pool.labels[train], x_val, pool.labels[val], categorical, metric, len(pool.classes))
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(random_state=0, categorical_features=categorical or None)
    predicted = model.fit(x_train, pool.labels[train]).predict(x_val)
    return _regression_value(metric, predicted, pool.labels[val], float(np.mean(pool.labels[train])))


def _features(pool, train, val):
    """Numbers as they are (gaps stay gaps); each text column as codes of its training categories (unseen: a gap)."""
    import numpy as np

    columns_train, columns_val, categorical = [pool.numeric[train]], [pool.numeric[val]], []
    for j in range(len(pool.text_names)):
        categories = sorted(set(pool.text[train, j].tolist()))
        index = {c: i for i, c in enumerate(categories)}
        code = np.vectorize(lambda v, index=index: index.get(v, np.nan), otypes=[float])
        columns_train.append(code(pool.text[train, j]).reshape(-1, 1))
        columns_val.append(code(pool.text[val, j]).reshape(-1, 1))
        if len(categories) <= _MAX_CATEGORIES:
            categorical.append(pool.numeric.shape[1] + j)
    return np.hstack(columns_train), np.hstack(columns_val), categorical


def _classify(x_train, y_train, x_val, y_val, categorical, metric: Metric, num_classes: int) -> float:
    import numpy as np
    import torch
    from sklearn.ensemble import HistGradientBoostingClassifier

    from objectives._metrics import classification_metric

    model = HistGradientBoostingClassifier(random_state=0, categorical_features=categorical or None).fit(
        x_train, y_train
    )
    probs = np.full((len(y_val), num_classes), 1e-15)
    probs[:, model.classes_] = np.maximum(
        model.predict_proba(x_val), 1e-15
    )  # a class absent from training: never predicted
    return classification_metric(metric.name, torch.from_numpy(np.log(probs)), torch.from_numpy(y_val), num_classes)


def _regression_value(metric: Metric, predicted, y, fallback: float) -> float:
    import torch

    from objectives._metrics import regression_metric

    return regression_metric(metric.name, torch.from_numpy(predicted), torch.from_numpy(y), fallback)
