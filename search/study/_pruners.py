"""Pruners by name. Their resource is the epoch: a trial reports at steps 1..epochs."""

from __future__ import annotations

import time
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search._optuna import trials_of_this_ask

# How old the completed trials a median or percentile pruner compares with may be: read once a trial,
# and again after this long (a long trial's later epochs see the trials that completed meanwhile).
SNAPSHOT_SECONDS = 10.0


class SnapshotPruner(optuna.pruners.BasePruner):
    """A median or percentile pruner that reads the study's completed trials once a trial, not once an epoch.

    They compare a trial at epoch k with the COMPLETE trials' reports at epoch k, and read every
    trial of the study to find them: on a remote database, a round trip per epoch that grows with
    the study. Completed trials do not change; only new ones appear, and a decision that misses one
    that completed during the last few seconds is one a slightly slower worker would have made.
    A trial's first snapshot is the study as Optuna read it for the trial's sampling (its cache per
    ask), so the pruner adds no read of its own to a short trial.
    """

    def __init__(self, inner: optuna.pruners.BasePruner, seconds: float = SNAPSHOT_SECONDS) -> None:
        self.inner, self.seconds = inner, seconds
        self._key: tuple[int, int] | None = None
        self._read_at = 0.0
        self._complete: list[FrozenTrial] = []

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self.inner.prune(_Completed(study, self, trial), trial)

    def complete(self, study: optuna.Study, trial: FrozenTrial) -> list[FrozenTrial]:
        key = (id(study), trial.number)
        if key != self._key:  # a new trial: the study as the sampler read it for this trial (no read of its own)
            self._complete = trials_of_this_ask(study, (TrialState.COMPLETE,))
            self._key, self._read_at = key, time.monotonic()
        elif time.monotonic() - self._read_at >= self.seconds:
            self._complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            self._read_at = time.monotonic()
        return self._complete


class _Completed:
    """The study as the wrapped pruner sees it: its completed trials from the snapshot, the rest as is."""

    def __init__(self, study: optuna.Study, snapshot: SnapshotPruner, trial: FrozenTrial) -> None:
        self._study, self._snapshot, self._trial = study, snapshot, trial

    def get_trials(self, deepcopy: bool = True, states: Any = None) -> list[FrozenTrial]:
        if states is not None and tuple(states) == (TrialState.COMPLETE,) and not deepcopy:
            return self._snapshot.complete(self._study, self._trial)
        return self._study.get_trials(deepcopy=deepcopy, states=states)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)


PRUNERS = ("median", "percentile", "sha", "hyperband", "none")


def make_pruner(name: str, max_epochs: int) -> optuna.pruners.BasePruner:
    """The pruner called ``name``; ``max_epochs`` is the largest epochs value the space allows."""
    if name == "median":
        return SnapshotPruner(optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0))
    if name == "percentile":
        # Keep the top 25% at each epoch; warm up one epoch since epoch-1 accuracy is noisy.
        return SnapshotPruner(optuna.pruners.PercentilePruner(25.0, n_startup_trials=5, n_warmup_steps=1))
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, max_epochs), reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}")  # RunConfig validates first
