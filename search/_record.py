"""What a study records about itself, and what a run reports: no torch, so listings start fast."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import FrozenTrial, TrialState

# The study user attribute that records how a study was made; a run that continues the
# study must match it, or its trials would not be comparable.
STUDY_ATTR = "search"
# The objective's name, stored with the study (optuna-dashboard shows it).
METRIC = "validation accuracy"
# The trial user attribute naming the run that made a trial (id, sampler, pruner, host).
RUN_ATTR = "run"


@dataclass(frozen=True)
class StorageTime:
    """The storage calls a run's workers waited on, and for how long, against their working time."""

    calls: int = 0  # made by the threads that run trials
    seconds: float = 0.0  # spent inside those calls
    background_calls: int = 0  # made by heartbeat threads, beside the training
    wall_seconds: float = 0.0  # the workers' time, summed over workers

    def __add__(self, other: StorageTime) -> StorageTime:
        return StorageTime(self.calls + other.calls, self.seconds + other.seconds,
                           self.background_calls + other.background_calls, self.wall_seconds + other.wall_seconds)

    @property
    def share(self) -> float:
        """The fraction of the workers' time spent waiting on the storage."""
        return self.seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


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
    confirmation: dict[str, Any] | None = None  # the stored confirmation summary, when the run confirmed
    storage_time: StorageTime | None = None  # what this run's workers waited on the storage


def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.name: counts.get(state.name, 0) for state in TrialState}


# The trial user attribute of a study's first trial, the textbook default it starts with.
BASELINE_ATTR = "baseline"

# Confirmation (search/_confirm.py): the retrains' own study, and the summary on the searched study.
CONFIRM_SUFFIX = ":confirm"
CONFIRM_ATTR = "search:confirmation"


def confirmed(study_user_attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The confirmation summary of a study (None when it has none): leader, and per candidate mean, sd, n."""
    summary = study_user_attrs.get(CONFIRM_ATTR)
    return summary if isinstance(summary, dict) and summary.get("ranking") else None
