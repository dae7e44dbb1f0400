"""One training run's hyperparameters (no torch here: commands that only read studies start fast)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from objectives._errors import SpaceError

OPTIMIZERS = ("sgd", "momentum", "adam")
LOSSES = ("cross_entropy", "mse")
# The learning rate through a run: held, or cosine-annealed step by step from lr to 0 over its epochs
# (Loshchilov & Hutter, SGDR, without restarts): a table's short runs end in a minimum, not bouncing around one.
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """One training run's hyperparameters; the defaults are the seed tutorial's."""

    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 5
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    loss: str = "cross_entropy"
    schedule: str = "constant"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, typed(f.name, getattr(self, f.name), type(f.default)))
        _check(self.lr > 0, f"lr is {self.lr:g}, but must be > 0")
        _check(self.batch_size >= 1, f"batch_size is {self.batch_size}, but must be >= 1")
        _check(self.epochs >= 1, f"epochs is {self.epochs}, but must be >= 1")
        _check(
            self.optimizer in OPTIMIZERS, f"optimizer is {self.optimizer!r}, but must be one of {', '.join(OPTIMIZERS)}"
        )
        _check(0 <= self.momentum < 1, f"momentum is {self.momentum:g}, but must be >= 0 and < 1")
        _check(self.weight_decay >= 0, f"weight_decay is {self.weight_decay:g}, but must be >= 0")
        _check(0 <= self.beta1 < 1, f"beta1 is {self.beta1:g}, but must be >= 0 and < 1")
        _check(0 <= self.beta2 < 1, f"beta2 is {self.beta2:g}, but must be >= 0 and < 1")
        _check(self.loss in LOSSES, f"loss is {self.loss!r}, but must be one of {', '.join(LOSSES)}")
        _check(
            self.schedule in SCHEDULES,
            f"schedule is {self.schedule!r}, but must be one of {', '.join(SCHEDULES)}",
        )

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of step ``step`` (from 0) of a run of ``steps`` steps."""
        if self.schedule == "constant" or steps <= 0:
            return self.lr
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))


def typed(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (float, int or str), or a `SpaceError` naming ``name`` and the type wanted.

    YAML reads ``1e-3`` (no dot) as a string, so numbers written that way are parsed.
    """
    if kind is float and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
        raise SpaceError(f"{name} is {value!r}, but must be a number")
    if kind is int and not isinstance(value, bool):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        raise SpaceError(f"{name} is {value!r}, but must be an integer")
    if kind is str and isinstance(value, str):
        return value
    raise SpaceError(f"{name} is {value!r}, but must be a {kind.__name__}")


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise SpaceError(message)
