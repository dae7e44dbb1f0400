"""Tasks: what a network predicts, the loss it trains with, and the metric that scores it.

Classification (the default) predicts one class per row; its network ends in one logit
per class. Regression predicts a number; its network ends in one output, trained with
MSE on the target standardised with the training rows' mean and standard deviation, and
scored in the target's own units.

Each metric says which way is better (``direction``), so a study minimises RMSE and log
loss and maximises accuracy, balanced accuracy, ROC AUC and R². No torch here: a
command that only reads a study names its metric without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectives._errors import SpaceError

if TYPE_CHECKING:
    import torch

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Metric:
    """A way to score a network on validation rows: its name, its task, which way is better."""

    name: str
    task: str
    direction: str  # "maximize" or "minimize"
    label: str  # for people: "validation accuracy", "validation RMSE", ...
    bounds: tuple[float, float] = (0.0, 1.0)  # the values it can take

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` under this metric."""
        return a > b if self.maximize else a < b


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", "maximize", "validation accuracy"),
        Metric("balanced_accuracy", "classification", "maximize", "validation balanced accuracy"),
        Metric("log_loss", "classification", "minimize", "validation log loss", (0.0, float("inf"))),
        Metric("roc_auc", "classification", "maximize", "validation ROC AUC"),
        Metric("rmse", "regression", "minimize", "validation RMSE", (0.0, float("inf"))),
        Metric("mae", "regression", "minimize", "validation MAE", (0.0, float("inf"))),
        Metric("r2", "regression", "maximize", "validation R²", (float("-inf"), 1.0)),
    )
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "rmse"}

# What a trial costs, as further objectives of a multi-objective study (each minimised beside the
# metric): the model's parameter count, and its measured inference time per row on the study's device.
COSTS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("params", "any", "minimize", "parameters", (0.0, float("inf"))),
        Metric("latency", "any", "minimize", "latency (µs a row)", (0.0, float("inf"))),
    )
}


def metric_named(name: str | None, task: str = "classification") -> Metric:
    """The metric ``name`` (None: the task's default), checked against the task; messages name the flags."""
    if task not in TASKS:
        raise SpaceError(f"`task` is {task!r}, but must be one of {', '.join(TASKS)}")
    name = name or DEFAULT_METRIC[task]
    if name not in METRICS:
        raise SpaceError(f"`metric` is {name!r}, but must be one of {', '.join(METRICS)}")
    metric = METRICS[name]
    if metric.task != task:
        fits = ", ".join(m for m, spec in METRICS.items() if spec.task == task)
        raise SpaceError(f"`metric` {name} scores {metric.task}, but this is {task}; use one of {fits}")
    return metric


def loss_function(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy on logits; (the second seed's) MSE of softmax against one-hot labels; or
    ``regression``: MSE of the single output against the standardised target."""
    import torch.nn.functional as F

    if name == "regression":
        return lambda out, y: F.mse_loss(out.reshape(-1), y)
    if name == "mse":
        return lambda logits, y: F.mse_loss(logits.softmax(dim=1), F.one_hot(y, logits.shape[1]).to(logits.dtype))
    return F.cross_entropy
