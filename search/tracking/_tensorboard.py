"""``--tensorboard DIR``: each trial's epochs as scalars in a run folder of its own, and TensorBoard's HParams view.

    DIR/STUDY/trial-00012/   events: val/<metric>, loss/train, loss/val per epoch; the trial's parameters and
                             final figure for the HParams tab (written as the trial ends)

A folder per trial, so the worker processes and machines of a study never write to one file.
`tensorboard --logdir DIR` reads it. Written with PyTorch's own `SummaryWriter`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def run_folder(root: str, study: str, number: int) -> Path:
    """Where trial ``number`` of ``study`` writes (a study name may hold characters a folder name should not)."""
    return Path(root) / re.sub(r"[^A-Za-z0-9._-]+", "_", study) / f"trial-{number:05d}"


class TensorBoardTracker:
    def __init__(self, root: str, study: str, metric: str):
        self.root, self.study, self.metric = root, study, metric
        self._writers: dict[int, Any] = {}

    def epoch(self, trial: optuna.Trial, result: Any) -> None:
        writer = self._writer(trial.number)
        if result.value is not None:
            writer.add_scalar(f"val/{self.metric}", result.value, result.epoch)
            writer.add_scalar("loss/val", result.val_loss, result.epoch)
        writer.add_scalar("loss/train", result.train_loss, result.epoch)

    def trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """The trial ended: its row of the HParams table (its parameters, state and figure), then its file closed."""
        writer = self._writer(trial.number)
        figure = trial.values[0] if trial.values else _last_report(trial)
        params = {k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in trial.params.items()}
        if figure is not None:
            writer.add_hparams(
                {**params, "state": trial.state.name.lower()}, {f"hparam/{self.metric}": figure}, run_name="."
            )
        writer.close()
        del self._writers[trial.number]

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _writer(self, number: int) -> Any:
        if number not in self._writers:
            from torch.utils.tensorboard import SummaryWriter

            self._writers[number] = SummaryWriter(log_dir=str(run_folder(self.root, self.study, number)))
        return self._writers[number]


def _last_report(trial: FrozenTrial) -> float | None:
    """A pruned (or failed) trial's last reported figure, where it reported one."""
    if trial.state == TrialState.COMPLETE or not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]
