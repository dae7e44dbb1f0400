"""What a run reports: its trials by state, the best trial, the storage's share of the time."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._errors import is_storage_error
from search.confirmation._summary import Confirmation, known
from search.storages import redact
from search.storages._clock import StorageTime
from search.study._costs import admitted, score
from search.study._reconnect import wait_for_storage
from search.study._record import STUDY_ATTR, made_metric


@dataclass(frozen=True)
class RunSummary:
    """What a run did, and where the study stands after it."""

    study: str
    storage: str  # redacted
    wall_seconds: float
    run_states: dict[str, int]  # this run's finished trials by state
    study_states: dict[str, int]  # the whole study's trials by state
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    train_samples: int | None = None  # the training split's size (small data makes the search value optimistic)
    confirmation: Confirmation | None = None  # the stored confirmation summary, when the run confirmed
    storage_time: StorageTime | None = None  # what this run's workers waited on the storage
    metric: str = "accuracy"  # what the values are (objectives.METRICS)
    search_seconds: float | None = None  # the search's part of wall_seconds (the rest: confirmation)
    diverged: int = 0  # completed trials whose training diverged (not candidates for confirmation)
    total_trials: int | None = None  # the study's trial budget, when it has one
    pick: str | None = None  # the constraint the best trial was chosen under (`--pick`)

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "confirmation": self.confirmation.to_dict() if self.confirmation else None,
            "storage_time": dataclasses.asdict(self.storage_time) if self.storage_time else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSummary:
        d = known(cls, data)
        return cls(
            **{
                **d,
                "confirmation": Confirmation.from_dict(d["confirmation"]) if d.get("confirmation") else None,
                "storage_time": StorageTime(**d["storage_time"]) if d.get("storage_time") else None,
            }
        )


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.name: counts.get(state.name, 0) for state in TrialState}


def best_of(trials: list[FrozenTrial], maximize: bool = True) -> FrozenTrial | None:
    """The complete trial with the best value (the first of equals), diverged ones included."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    if not complete:
        return None
    return (max if maximize else min)(
        complete, key=lambda t: (score(t), -t.number) if maximize else (score(t), t.number)
    )


def summarize(
    study: optuna.Study,
    url: str,
    wall_seconds: float,
    finished: list[FrozenTrial],
    train_samples: int | None = None,
    pick: str | None = None,
) -> RunSummary:
    """What the run did and the study's best trial by the metric (among those ``pick`` admits)."""
    trials = study.get_trials(deepcopy=False)
    made = study.user_attrs.get(STUDY_ATTR) or {}
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    best = best_of(admitted(trials, pick), maximize)
    return RunSummary(
        study=study.study_name,
        storage=redact(url),
        wall_seconds=wall_seconds,
        run_states=count_states(finished),
        study_states=count_states(trials),
        best_number=best.number if best else None,
        best_value=score(best) if best else None,
        best_params=dict(best.params) if best else {},
        train_samples=train_samples,
        metric=made_metric(made).name,
        total_trials=made.get("total_trials"),
        search_seconds=wall_seconds,
        pick=pick,
        diverged=sum(1 for t in trials if t.state == TrialState.COMPLETE and "diverged" in t.user_attrs),
    )


def summarize_safely(
    study: optuna.Study,
    url: str,
    wall_seconds: float,
    finished: list[FrozenTrial],
    train_samples: int | None = None,
    pick: str | None = None,
) -> RunSummary:
    """`summarize`, waiting for a storage that went away at the very end (the trials are stored)."""
    while True:
        try:
            return summarize(study, url, wall_seconds, finished, train_samples, pick)
        except Exception as exc:
            if not is_storage_error(exc):
                raise
            wait_for_storage(study, url, exc)
