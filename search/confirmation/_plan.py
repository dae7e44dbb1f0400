"""What confirmation retrains: the leaders of the search, each round's retrains queued, their results read back.

The retrains are trials of a study of their own, ``NAME:confirm``, in the same storage:
optuna-dashboard shows them, the search's sampler never sees them, and they inherit
everything a trial has (heartbeats, retry of a killed worker's trial, Ctrl-C, a lost
database), so a confirmation killed half-way resumes without redoing finished retrains,
and several workers share it. The summary (per candidate: mean, sd, count) is stored on
the searched study as the user attribute ``search:confirmation``.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._record import BASELINE_ATTR, CONFIRM_ATTR, CONFIRM_SUFFIX, METRIC
from search.confirmation._config import ConfirmConfig
from search.confirmation._rules import Candidate, ranked

_SEED_STRIDE = 10_007  # resample r's seed: the study's seed + stride * (r + 1), never the search's own


def resample_seed(study_seed: int, resample: int) -> int:
    return study_seed + _SEED_STRIDE * (resample + 1)


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
