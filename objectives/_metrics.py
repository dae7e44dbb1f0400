"""The metrics, computed in torch from a network's outputs on all validation rows at once.

A row whose outputs are not finite (a diverged network) is scored as a network that
knows nothing would score it: uniform class probabilities, or the training mean. Every
metric is therefore a finite number, and a diverged trial ranks at the bottom instead
of failing.
"""

from __future__ import annotations

import math

import torch

# Probabilities are clipped here for log loss, as scikit-learn does (one wrong row is not infinite).
_EPS = 1e-15


def classification_metric(name: str, logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """``name`` (accuracy, balanced_accuracy, log_loss, roc_auc) of class logits [N, C] against labels [N]."""
    if y.numel() == 0:
        return 0.0
    finite = torch.isfinite(logits).all(dim=1)
    probs = torch.softmax(torch.where(finite[:, None], logits, torch.zeros_like(logits)).double(), dim=1)
    if name == "accuracy":
        return float(((probs.argmax(dim=1) == y) & finite).double().mean())
    if name == "balanced_accuracy":
        hit = (probs.argmax(dim=1) == y) & finite
        recalls = [float(hit[y == c].double().mean()) for c in range(num_classes) if bool((y == c).any())]
        return sum(recalls) / len(recalls)
    if name == "log_loss":
        picked = probs.gather(1, y.reshape(-1, 1)).squeeze(1).clamp(_EPS, 1.0)
        return float(-picked.log().mean())
    if name == "roc_auc":
        return roc_auc(probs, y, num_classes)
    raise ValueError(f"unknown classification metric {name!r}")


def roc_auc(probs: torch.Tensor, y: torch.Tensor, num_classes: int) -> float:
    """ROC AUC: binary on the positive class's probability; one-vs-rest, macro-averaged, for more classes.

    A class absent from the rows (or present in all of them) has no AUC and is left out of the
    average; with none left the AUC is 0.5 (no evidence either way).
    """
    if num_classes == 2:
        return _auc(probs[:, 1], y == 1)
    aucs = [_auc(probs[:, c], y == c) for c in range(num_classes)]
    known = [a for a in aucs if not math.isnan(a)]
    return sum(known) / len(known) if known else 0.5


def _auc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """The Mann-Whitney statistic: the chance a positive row outscores a negative one (ties count half)."""
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan") if scores.numel() else 0.5
    ranks = _average_ranks(scores.double())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks, ties sharing their average rank."""
    order = torch.argsort(values, stable=True)
    sorted_values = values[order]
    ranks = torch.empty_like(values)
    n = values.numel()
    start = 0
    boundaries = torch.nonzero(sorted_values[1:] != sorted_values[:-1]).squeeze(1).tolist() + [n - 1]
    for end in boundaries:
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def regression_metric(name: str, predicted: torch.Tensor, y: torch.Tensor, fallback: float) -> float:
    """``name`` (rmse, mae, r2) of predictions [N] against targets [N], both in the target's units.

    A prediction that is not finite takes ``fallback`` (the training rows' mean).
    """
    if y.numel() == 0:
        return 0.0
    predicted = torch.where(torch.isfinite(predicted), predicted, torch.full_like(predicted, fallback)).double()
    error = predicted - y.double()
    if name == "rmse":
        return float(error.square().mean().sqrt())
    if name == "mae":
        return float(error.abs().mean())
    if name == "r2":
        total = (y.double() - y.double().mean()).square().sum()
        return float(1.0 - error.square().sum() / total) if float(total) > 0 else 0.0
    raise ValueError(f"unknown regression metric {name!r}")
