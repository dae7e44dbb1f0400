"""The built-in model: a multi-layer perceptron (the seed's 784-512-512-10 by default).

`mlp` is a model function like any a user writes (``search run --model``): it takes one
row's shape, the number of outputs and its parameters, and returns the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectives._errors import SpaceError

if TYPE_CHECKING:
    from torch import nn

# torch is imported where a model is built: a configuration alone needs none of it.
ACTIVATIONS = ("relu", "sigmoid", "tanh")
# The built-in model function, as `search run --model` names a model function.
MLP = "objectives.models:mlp"


@dataclass(frozen=True)
class ModelConfig:
    """An MLP's shape: hidden layer sizes, their activation, and dropout after each (the seed's 512-512 ReLU)."""

    hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        hidden = self.hidden
        if isinstance(hidden, (int, float)) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes, dict)) or not hasattr(hidden, "__iter__"):
            raise SpaceError(f"hidden is {hidden!r}, but must be a list of integers")
        sizes = []
        for h in hidden:
            if isinstance(h, bool) or not isinstance(h, (int, float)) or int(h) != h:
                raise SpaceError(f"hidden is {list(hidden)!r}, but must be a list of integers")
            sizes.append(int(h))
        object.__setattr__(self, "hidden", tuple(sizes))
        if not isinstance(self.activation, str):
            raise SpaceError(f"activation is {self.activation!r}, but must be a str")
        if any(h < 1 for h in self.hidden):
            raise SpaceError(f"hidden is {list(self.hidden)}, but every size must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise SpaceError(f"activation is {self.activation!r}, but must be one of {', '.join(ACTIVATIONS)}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise SpaceError(f"dropout is {self.dropout!r}, but must be >= 0 and < 1")


def mlp(
    input_shape: tuple[int, ...],
    num_outputs: int,
    hidden_units: int = 512,
    hidden_layers: int = 2,
    activation: str = "relu",
    dropout: float = 0.0,
    hidden: list[int] | None = None,
) -> nn.Module:
    """``hidden_layers`` layers of ``hidden_units`` (or the sizes in ``hidden``), each followed by
    ``activation`` and, when ``dropout`` > 0, dropout; then one linear layer of ``num_outputs``."""
    sizes = tuple(hidden) if hidden is not None else (int(hidden_units),) * int(hidden_layers)
    config = ModelConfig(hidden=sizes, activation=activation, dropout=float(dropout))
    return build_mlp(config, math.prod(input_shape), num_outputs)


def build_mlp(config: ModelConfig, in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """Linear layers with ``config.activation`` between them, ending in raw outputs (logits).

    The seed tutorial put a ReLU after the last layer too. That clips every negative
    logit to zero, so the classes the network argues against all look alike to the
    softmax in the loss, and a unit whose logit goes negative gets no gradient at all;
    training is slower and can stall. The logits are therefore left unclipped.
    """
    from torch import nn

    class MLP(nn.Sequential):
        """A Sequential that takes rows of any shape (flattened first); its weights keep Sequential's names."""

        def forward(self, x):
            return super().forward(x.flatten(1))

    activation = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[config.activation]
    layers: list[nn.Module] = []
    width = in_features
    for size in config.hidden:
        layers += [nn.Linear(width, size), activation()]
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        width = size
    layers.append(nn.Linear(width, num_classes))
    return MLP(*layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
