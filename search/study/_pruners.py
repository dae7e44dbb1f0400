"""Pruners by name. Their resource is the epoch: a trial reports at steps 1..epochs."""

from __future__ import annotations

import optuna

PRUNERS = ("median", "percentile", "sha", "hyperband", "none")


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name``; ``max_epochs`` is the largest epochs value the space allows."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "percentile":
        # Keep the top 25% at each epoch; warm up one epoch since epoch-1 accuracy is noisy.
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=1)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}")  # RunConfig validates first
