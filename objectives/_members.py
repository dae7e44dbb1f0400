"""Trials begun and trained: one at a time (`Objective.train`), or several as one model (`train_together`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
import torch
from torch import nn

from objectives._checkpoints import Resume
from objectives._fused import FusedTraining
from objectives._train import EpochResult
from objectives._train_config import TrainConfig
from objectives.models import ModelSpec

if TYPE_CHECKING:
    from objectives._objective import Objective


@dataclass(eq=False)
class Member:
    """A trial begun (`Objective.begin`): its configuration sampled, its model built from its seed; then what
    its training has come to so far."""

    trial: Any  # optuna.Trial
    config: TrainConfig
    spec: ModelSpec
    model: nn.Module
    seed: int
    dropout: torch.Generator  # the process's dropout generator as it stood after the model was built
    resume: Resume | None = None
    samples: int = 0
    train_seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    last: EpochResult | None = None

    @property
    def shape(self) -> tuple:
        """What members trained as one model share: the model and its parameters, the batch size and loss (a
        member that resumes a checkpoint trains alone: it is a shape of its own)."""
        if self.resume is not None:
            return ("resumed", self.trial.number)
        return (self.spec.function, repr(sorted(self.spec.params.items())), self.config.batch_size, self.config.loss)


def train_together(objective: Objective, members: list[Member]) -> list[Any]:
    """Train ``members`` (of one `Member.shape`) as one model: each one's outcome, in order: its value (or values),
    or the exception it ended with (``optuna.TrialPruned``, a ``RuntimeError``). Each member reports each epoch to
    its own trial as it would alone; a pruned, finished or diverged member leaves and the others go on."""
    outcomes: list[Any] = [None] * len(members)
    training = FusedTraining(
        [m.model for m in members],
        [m.config for m in members],
        [m.seed for m in members],
        [m.dropout for m in members],
        objective.splits,
        objective.metric,
        objective.stop,
    )
    for m in members:
        m.trial.set_user_attr("trained_with", len(members))  # trials trained as one model, this one included
    while training.members:
        try:
            results = training.epoch()
        except RuntimeError as exc:  # out of memory, say: every member still in ends with it
            for i in training.members:
                outcomes[i] = exc
                objective.dropped(members[i])
            break
        for i, result in results.items():
            outcomes[i] = _heard(objective, training, members[i], i, result)
    return outcomes


def _heard(objective: Objective, training: FusedTraining, member: Member, i: int, result: EpochResult) -> Any:
    """Member ``i``'s epoch told to its trial: None while it trains on, else its outcome."""
    try:
        goes_on = objective.hear(member, result)
    except optuna.TrialPruned as exc:
        training.leave(i)
        training.left.pop(i)
        objective.dropped(member)
        return exc
    if goes_on and result.epoch < member.config.epochs:
        return None
    training.leave(i)
    member.model.load_state_dict(training.left.pop(i))
    try:
        return objective.finish(member)
    except RuntimeError as exc:
        objective.dropped(member)
        return exc
