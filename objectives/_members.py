"""Trials begun and trained: one at a time (`Objective.train`), or several as one model (`Together`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import optuna
import torch
from torch import nn

from objectives._checkpoints import Resume
from objectives._fused import FusedTraining
from objectives._train import EpochResult
from objectives._train_config import TrainConfig
from objectives.models import ModelSpec


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


class Together:
    """Members of one `Member.shape` trained as one model, an epoch at a time; a member joins between epochs and
    leaves when it ends. Each reports each epoch to its own trial as it would alone."""

    def __init__(self, objective: Any) -> None:
        self.objective = objective
        self.training: FusedTraining | None = None
        self.members: dict[int, Member] = {}  # by index in the training, those still in

    def join(self, member: Member) -> None:
        """``member`` trains from the next epoch on, from its own first one."""
        m = member
        if self.training is None:
            o = self.objective
            self.training = FusedTraining([m.model], [m.config], [m.seed], [m.dropout], o.splits, o.metric, o.stop)
            index = 0
        else:
            index = self.training.join(m.model, m.config, m.seed, m.dropout)
        self.members[index] = member
        member.trial.set_user_attr("trained_with", len(self.members))  # trials training as one model as it joined

    def epoch(self) -> list[tuple[Member, Any]]:
        """One epoch of every member: those that ended, each with its outcome (its value or values, or the
        exception it ended with: ``optuna.TrialPruned``, a ``RuntimeError``)."""
        try:
            results = self.training.epoch()
        except RuntimeError as exc:  # out of memory, say: every member still in ends with it
            ended = [(m, exc) for m in self.members.values()]
            for member in self.members.values():
                self.objective.dropped(member)
            self.members.clear()
            return ended
        ended = []
        for i, result in results.items():
            outcome = _heard(self.objective, self.training, self.members[i], i, result)
            if outcome is not None:
                ended.append((self.members.pop(i), outcome))
        return ended


def _heard(objective: Any, training: FusedTraining, member: Member, i: int, result: EpochResult) -> Any:
    """Member ``i``'s epoch told to its trial: None while it trains on, else its outcome."""
    try:
        goes_on = objective.hear(member, result)
    except (optuna.TrialPruned, RuntimeError) as exc:  # pruned, or failed alone (its trial refused the report, say)
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
