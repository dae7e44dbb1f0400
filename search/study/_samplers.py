"""Samplers by name."""

from __future__ import annotations

import heapq
import warnings
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from search._optuna import StudyView

# Past this many scored (complete or pruned) trials, TPE reads a window of them: the best
# `TPE_BEST` complete ones and the latest others. Its cost grows with the trials it reads (a
# Parzen estimator over each, its search space rebuilt from each, at every ask): on a 2-core
# machine ~6 ms an ask at 100 trials, ~30 ms at 1,500, in memory. TPE's "good" group is at most
# 25 trials (its default gamma), so with the best 25 kept it is the same as over the whole study;
# only the "bad" group's density comes from the latest trials (bench/growth.py compares both).
TPE_WINDOW = 500
TPE_BEST = 25
_SCORED = (TrialState.COMPLETE, TrialState.PRUNED)


class WindowedSampler(optuna.samplers.BaseSampler):
    """``inner`` (TPE) shown the study's running trials, its best complete ones and its latest scored ones."""

    def __init__(self, inner: optuna.samplers.BaseSampler, window: int = TPE_WINDOW, best: int = TPE_BEST) -> None:
        self.inner, self.window, self.best = inner, window, best
        self._views: dict[int, StudyView] = {}
        self._kept: tuple[tuple[int, int], set[int]] | None = None  # ((study, scored trials), the numbers kept)

    def _view(self, study: optuna.Study) -> Any:
        if len(study.directions) > 1:  # its good group grows with the study (no cap): all of it
            return study
        view = self._views.get(id(study))
        if view is None or getattr(view, "_study", None) is not study:
            view = self._views[id(study)] = StudyView(study, lambda trials: self.select(study, trials))
        return view

    def select(self, study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """What the sampler sees of ``trials`` (in number order): every one while few are scored, else every
        unscored one (running, waiting, failed), the best complete ones and the latest scored ones."""
        scored = [t for t in trials if t.state in _SCORED]
        if len(scored) <= self.window:
            return trials
        # Scored trials never change and are never removed: as many as last time are the same ones (TPE reads
        # the study several times an ask), so the window is chosen once per newly scored trial.
        if self._kept is None or self._kept[0] != (id(study), len(scored)):
            complete = [t for t in scored if t.state == TrialState.COMPLETE and t.value is not None]
            pick = heapq.nsmallest if study.direction == optuna.study.StudyDirection.MINIMIZE else heapq.nlargest
            keep = {t.number for t in pick(self.best, complete, key=lambda t: t.value)}
            keep.update(t.number for t in scored[-(self.window - self.best) :])
            self._kept = ((id(study), len(scored)), keep)
        keep = self._kept[1]
        return [t for t in trials if t.state not in _SCORED or t.number in keep]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.inner.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self.inner.sample_independent(self._view(study), trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.inner.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc")


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler called ``name``, seeded.

    TPE is multivariate and grouped because momentum exists only under one optimizer
    (the conditional space splits into groups), and uses the constant liar so that
    parallel workers do not all sample the same point while trials are running. Past
    `TPE_WINDOW` scored trials it reads a window of them, so an ask costs the same at trial
    5,000 as at trial 500.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            tpe = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
            return WindowedSampler(tpe)
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
