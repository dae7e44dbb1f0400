"""Samplers by name."""

from __future__ import annotations

import warnings

import optuna

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``, seeded.

    TPE is multivariate and grouped because momentum exists only under one optimizer
    (the conditional space splits into groups), and uses the constant liar so that
    parallel workers do not all sample the same point while trials are running.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "cmaes":
            # CMA-ES handles the numeric parameters; categorical ones fall back to random.
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise ValueError(f"unknown sampler {name!r}")  # RunConfig validates first
