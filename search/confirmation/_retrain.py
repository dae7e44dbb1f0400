"""The objective of a confirmation trial: a queued configuration, trained on its resample."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import TrialState

from objectives.data import Resample
from search.confirmation._plan import train_seed

# A retrain's user attributes: the search trial it retrains, the resample (its key), the plan.
SOURCE, RESAMPLE, ROLE, PLAN = "source_trial", "resample", "role", "plan"


_LIVE = (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)


def _earlier_copy(trial: optuna.Trial, source: Any, key: str) -> int | None:
    """The number of a lower-numbered retrain of the same pair that is queued, running or finished."""
    for other in trial.study.get_trials(deepcopy=False, states=_LIVE):
        if (
            other.number < trial.number
            and other.user_attrs.get(SOURCE) == source
            and other.user_attrs.get(RESAMPLE) == key
        ):
            return other.number
    return None


class Retrain:
    """Trains the queued configuration on its resample; every candidate on one resample starts from the same seed."""

    def __init__(self, space, data, device: str, metric: str, on_epoch=None, stop: Callable[[], bool] | None = None):
        self.space, self.data, self.device, self.metric = space, data, device, metric
        self.on_epoch, self.stop = on_epoch, stop
        self._objectives: dict[str, Any] = {}

    def __call__(self, trial: optuna.Trial) -> float:
        objective, member = self.begin(trial)
        return objective.train(member)

    def begin(self, trial: optuna.Trial) -> tuple[Any, Any]:
        """The objective of the trial's resample, and the trial begun on it (`objectives.Objective.begin`); raises
        ``optuna.TrialPruned`` where there is nothing to train."""
        key = trial.user_attrs.get(RESAMPLE)
        if not isinstance(key, str):
            # Optuna samples a fresh trial when another worker took the last queued one a moment ago.
            raise optuna.TrialPruned("no confirmation work was left (another worker took it)")
        earlier = _earlier_copy(trial, trial.user_attrs.get(SOURCE), key)
        if earlier is not None:
            # Two processes queued the same retrain at once: the earlier copy runs, this one stops here.
            raise optuna.TrialPruned(f"a copy of retrain {earlier} (queued at the same moment by another process)")
        objective = self._objective(key)
        return objective, objective.begin(trial)

    def _objective(self, key: str):
        if key not in self._objectives:
            from objectives import Objective

            # One resample's data at a time: a round's retrains share it, and the next round needs another.
            self._objectives = {
                key: Objective(
                    self.space,
                    self.data,
                    self.device,
                    train_seed(key),
                    on_epoch=self.on_epoch,
                    stop=self.stop,
                    seed_per_trial=False,
                    metric=self.metric,
                    resample=Resample.from_key(key),
                )
            }
        return self._objectives[key]
