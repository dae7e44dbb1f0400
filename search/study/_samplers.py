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
        self._finished = _Finished()

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
        done = self._finished.extend(study, trials)
        tail = trials[done.upto :]  # from the first unfinished trial on: looked at anew each time
        scored_tail = [t for t in tail if t.state in _SCORED]
        if len(done.scored) + len(scored_tail) <= self.window:
            return trials
        keep = self._keep(study, done, scored_tail)
        head = sorted(n for n in keep.union(done.failed) if n < done.upto)
        return [trials[n] for n in head] + [t for t in tail if t.state not in _SCORED or t.number in keep]

    def _keep(self, study: optuna.Study, done: _Finished, scored_tail: list[FrozenTrial]) -> set[int]:
        """The numbers of the best complete trials and the latest scored ones."""
        complete = [*done.best(self.best, study), *(t for t in scored_tail if _complete(t))]
        keep = {t.number for t in _best(self.best, complete, study)}
        latest = self.window - self.best
        keep.update(t.number for t in scored_tail[-latest:])
        if latest > len(scored_tail):  # the rest of the latest from the finished run before the tail
            keep.update(done.scored[-(latest - len(scored_tail)) :])
        return keep

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


def sampler_seed(seed: int, trials: int, worker: int, run_id: str | None) -> int:
    """The sampler's seed: ``seed`` moved on by how far the study has come, and by worker.

    A fresh study with the same seed is reproducible, and a continued one does not replay
    the samples its first run drew. A run that joins a study another process made
    (``run_id`` given) may start beside others that see the same number of trials at the
    same moment (hosts started together, each with its worker 0): its run id keeps their
    samples apart.
    """
    salt = int(run_id, 16) % 1_000_003 if run_id else 0
    return (seed + trials + 7919 * worker + 104_729 * salt) % 2**32


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


def _best(n: int, trials: list[FrozenTrial], study: optuna.Study) -> list[FrozenTrial]:
    """The ``n`` best of ``trials`` (complete, with a value) in the study's direction."""
    pick = heapq.nsmallest if study.direction == optuna.study.StudyDirection.MINIMIZE else heapq.nlargest
    return pick(n, trials, key=lambda t: t.value)


def _complete(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.COMPLETE and trial.value is not None


class _Finished:
    """The study's leading run of finished trials (0 .. upto - 1), taken in once each: finished trials never change,
    so a read of the study costs what is new in it, not what it holds (the window's cost stays flat at trial 5,000).

    Kept per study: the scored trials' numbers in order, the failed ones', and the best complete trials so far.
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, study: optuna.Study | None) -> None:
        self.study, self.upto = id(study), 0
        self.scored: list[int] = []
        self.failed: list[int] = []
        self._complete: list[FrozenTrial] = []  # the best, trimmed now and then

    def extend(self, study: optuna.Study, trials: list[FrozenTrial]) -> _Finished:
        # Trial numbers are positions (0, 1, 2...); a list that is not one of this study's starts again.
        if (
            self.study != id(study)
            or len(trials) < self.upto
            or (self.upto and trials[self.upto - 1].number != self.upto - 1)
        ):
            self._reset(study)
        upto = self.upto
        while upto < len(trials) and trials[upto].state.is_finished() and trials[upto].number == upto:
            trial = trials[upto]
            if trial.state in _SCORED:
                self.scored.append(upto)
                if _complete(trial):
                    self._complete.append(trial)
            else:
                self.failed.append(upto)
            upto += 1
        self.upto = upto
        return self

    def best(self, n: int, study: optuna.Study) -> list[FrozenTrial]:
        """The ``n`` best complete trials so far (the list trimmed to them once it grows past 4n)."""
        if len(self._complete) > 4 * n:
            self._complete = _best(n, self._complete, study)
        return self._complete
