"""The objective of a confirmation trial: a queued configuration, trained on its resample."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import optuna

from search.confirmation._plan import resample_seed


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
