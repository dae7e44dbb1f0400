"""Confirmation: retrain the search's leaders on fresh resamples, and rank them by their mean.

A study's best validation value is optimistic: it is the maximum of many noisy figures,
and selection rewards the lucky split and seed ("overtuning"; Schneider, Bisch and
Feurer, AutoML 2025). Here the top K configurations (distinct parameters) are each
retrained R times, every time on a validation split and a seed that took no part in the
search (repeated holdout; the test split stays untouched), and ranked by the mean.

Racing keeps the cost down: after each round, a candidate clearly behind the leader
(its mean lower by more than two standard errors of the paired difference, or by
`RACE_MARGIN` after a single round) is dropped.

The retrains are trials of a study of their own, ``NAME:confirm``, in the same storage:
optuna-dashboard shows them, the search's sampler never sees them, and they inherit
everything a trial has (heartbeats, retry of a killed worker's trial, Ctrl-C, a lost
database), so a confirmation killed half-way resumes without redoing finished retrains,
and several workers share it. The summary (per candidate: mean, sd, count) is stored on
the searched study as the user attribute ``search:confirmation``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import SearchError
from search._record import BASELINE_ATTR, CONFIRM_ATTR, CONFIRM_SUFFIX, METRIC

DEFAULT_CANDIDATES = 5
DEFAULT_RESAMPLES = 3
RACE_MARGIN = 0.015  # after one round: a candidate this far behind the leader is dropped
_SEED_STRIDE = 10_007  # resample r's seed: the study's seed + stride * (r + 1), never the search's own


@dataclass(frozen=True)
class ConfirmConfig:
    """How many leaders to confirm, on how many resamples (``--confirm K,R``; K = 0 skips)."""

    candidates: int = DEFAULT_CANDIDATES
    resamples: int = DEFAULT_RESAMPLES

    def __post_init__(self) -> None:
        if self.candidates < 0:
            raise SearchError(f"--confirm is {self.candidates},{self.resamples}, but K must be >= 0")
        if self.candidates and self.resamples < 1:
            raise SearchError(f"--confirm is {self.candidates},{self.resamples}, but R must be >= 1")

    @property
    def enabled(self) -> bool:
        return self.candidates > 0

    @classmethod
    def parse(cls, text: str) -> ConfirmConfig:
        """``K,R``, ``K`` (R keeps its default) or ``0`` (no confirmation)."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise SearchError(f"--confirm is {text!r}, but must be K,R (two integers, e.g. 5,3) or 0") from None
        if len(numbers) == 1:
            return cls(numbers[0]) if numbers[0] else cls(0, 0)
        if len(numbers) != 2:
            raise SearchError(f"--confirm is {text!r}, but must be K,R (two integers, e.g. 5,3) or 0")
        return cls(*numbers)


def resample_seed(study_seed: int, resample: int) -> int:
    return study_seed + _SEED_STRIDE * (resample + 1)


@dataclass
class Candidate:
    """One confirmed configuration: its search trial and its value on each resample."""

    trial: int
    params: dict[str, Any]
    search_value: float
    values: dict[int, float] = field(default_factory=dict)
    dropped: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def sd(self) -> float | None:
        return statistics.stdev(self.values.values()) if self.n >= 2 else None

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "params": self.params, "search_value": self.search_value, "mean": self.mean,
                "sd": self.sd, "n": self.n, "values": {str(k): v for k, v in sorted(self.values.items())},
                "dropped": self.dropped}


def leaders(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The top ``k`` complete trials by search value, one per distinct configuration, diverged ones left out.

    The study's baseline trial (the textbook default it started with) joins them when it is
    not among them: the leaders must beat it on fresh resamples, not only on the search's split.
    """
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and "diverged" not in t.user_attrs]
    chosen, seen = [], set()
    for trial in sorted(complete, key=lambda t: (-t.value, t.number)):
        key = tuple(sorted(trial.params.items()))
        if key not in seen:
            seen.add(key)
            chosen.append(trial)
        if len(chosen) == k:
            break
    baseline = next((t for t in complete if t.user_attrs.get(BASELINE_ATTR)), None)
    if chosen and baseline is not None and tuple(sorted(baseline.params.items())) not in seen:
        chosen.append(baseline)
    return chosen


def results(confirm: optuna.Study, top: list[FrozenTrial]) -> list[Candidate]:
    """The candidates with every finished retrain (a duplicate of one retrain counts once)."""
    by_number = {t.number: Candidate(t.number, dict(t.params), t.value) for t in top}
    for trial in confirm.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        source, resample = trial.user_attrs.get("source_trial"), trial.user_attrs.get("resample")
        if source in by_number and resample is not None and trial.value is not None:
            by_number[source].values.setdefault(int(resample), trial.value)
    return list(by_number.values())


def race(candidates: list[Candidate], done_rounds: int) -> None:
    """Mark the candidates clearly behind the leader after ``done_rounds`` rounds as dropped."""
    alive = [c for c in candidates if not c.dropped and c.n >= done_rounds]
    if done_rounds < 1 or len(alive) < 2:
        return
    rounds = range(done_rounds)
    leader = max(alive, key=lambda c: statistics.fmean(c.values[r] for r in rounds))
    for c in alive:
        if c is leader:
            continue
        diffs = [leader.values[r] - c.values[r] for r in rounds]
        mean = statistics.fmean(diffs)
        if done_rounds == 1:
            c.dropped = mean > RACE_MARGIN
        else:
            c.dropped = mean > max(2 * statistics.stdev(diffs) / math.sqrt(done_rounds), 1e-9)


def replay(candidates: list[Candidate], rounds: int) -> None:
    """Apply the racing rule after each of the first ``rounds`` rounds (the same verdicts every worker reaches)."""
    for done in range(1, rounds + 1):
        race(candidates, done)


def ranked(candidates: list[Candidate], resamples: int) -> list[Candidate]:
    """Best first: those retrained on every resample, by mean; then the ones dropped on the way."""
    for c in candidates:
        c.dropped = c.n < resamples
    return sorted(candidates, key=lambda c: (-c.n, -(c.mean if c.mean is not None else -1.0), c.trial))


def confirmation_study(storage, name: str) -> optuna.Study:
    study = optuna.create_study(study_name=name + CONFIRM_SUFFIX, storage=storage, direction="maximize",
                                load_if_exists=True, sampler=optuna.samplers.RandomSampler(0),
                                pruner=optuna.pruners.NopPruner())
    if "confirms" not in study.user_attrs:
        study.set_user_attr("confirms", name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([f"{METRIC} on a fresh resample"])
    return study


def enqueue_round(confirm: optuna.Study, candidates: list[Candidate], top: list[FrozenTrial], resample: int) -> int:
    """Queue the retrains of round ``resample`` not done or queued yet; how many are waiting now."""
    queued = {(t.user_attrs.get("source_trial"), t.user_attrs.get("resample"))
              for t in confirm.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING))}
    by_number = {t.number: t for t in top}
    for c in candidates:
        for r in range(resample + 1):  # earlier rounds too: a retrain that failed is queued again
            if c.dropped or r in c.values or (c.trial, r) in queued:
                continue
            confirm.enqueue_trial(dict(by_number[c.trial].params), user_attrs={"source_trial": c.trial, "resample": r})
    return len(confirm.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def store_summary(study: optuna.Study, spec: ConfirmConfig, candidates: list[Candidate]) -> dict[str, Any]:
    order = ranked(candidates, spec.resamples)
    summary = {"candidates": spec.candidates, "resamples": spec.resamples, "leader": order[0].trial if order else None,
               "ranking": [c.to_dict() for c in order]}
    study.set_user_attr(CONFIRM_ATTR, summary)
    return summary


class NoWorkLeft(RuntimeError):
    """A worker asked for a queued retrain after another took the last one."""


class Retrain:
    """The objective of a confirmation trial: the queued configuration, trained on its resample."""

    def __init__(self, space, data, device: str, study_seed: int, on_epoch=None, stop: Callable[[], bool] | None = None):
        self.space, self.data, self.device, self.study_seed = space, data, device, study_seed
        self.on_epoch, self.stop = on_epoch, stop
        self._objectives: dict[int, Any] = {}

    def __call__(self, trial: optuna.Trial) -> float:
        resample = trial.user_attrs.get("resample")
        if resample is None:
            trial.set_user_attr("error", "no confirmation work was left (another worker took it)")
            raise NoWorkLeft("no confirmation work left")
        return self._objective(int(resample))(trial)

    def _objective(self, resample: int):
        if resample not in self._objectives:
            from objectives import Objective

            seed = resample_seed(self.study_seed, resample)
            data = dataclasses.replace(self.data, seed=seed)
            self._objectives = {resample: Objective(self.space, data, self.device, seed, on_epoch=self.on_epoch,
                                                    stop=self.stop, seed_per_trial=False)}  # one resample's data at a time
        return self._objectives[resample]
