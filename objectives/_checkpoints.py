"""What a trial's checkpoints look like to the objective: an interface, filled in by the study's side.

The objective asks once, as a trial starts, whether it resumes one that died (`Checkpoints.resume`),
offers its state after each epoch (`Checkpoints.offer`: the implementation decides whether that
epoch is saved), and says how the trial ended (`Checkpoints.finished`, `Checkpoints.dropped`). Where
checkpoints go (Optuna's artifact store) and how a dead trial is found are the study's business
(`search.tracking`): the objective never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import optuna
    from torch import nn


@dataclass(frozen=True)
class Resume:
    """Where a trial goes on from: its state after ``epoch``, the seed it trained with, the figures it reported."""

    epoch: int
    seed: int
    state: dict[str, Any]
    reports: dict[int, float]  # epoch -> the value reported then (the pruner's history, carried over)
    source: int  # the number of the trial the checkpoint was taken from


class Checkpoints(Protocol):
    def resume(self, trial: optuna.Trial) -> Resume | None:
        """The checkpoint this trial goes on from (it re-runs a dead trial that left one), else None."""

    def offer(self, trial: optuna.Trial, epoch: int, seed: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        """The trial's state after ``epoch``; saved when the policy says so (``snapshot()`` builds it)."""

    def finished(self, trial: optuna.Trial, model: nn.Module, value: float) -> None:
        """The trial completed with ``value``: its checkpoints go; its weights may be kept."""

    def dropped(self, trial: optuna.Trial) -> None:
        """The trial was pruned or failed on its own: its checkpoints go, nothing is kept."""
