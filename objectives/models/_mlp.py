"""The model: a multi-layer perceptron built from a list of hidden sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectives._errors import SpaceError

if TYPE_CHECKING:
    from torch import nn

# torch is imported where a model is built: a configuration alone needs none of it.
ACTIVATIONS = ("relu", "sigmoid", "tanh")


@dataclass(frozen=True)
class ModelConfig:
    """An MLP's shape: hidden layer sizes and their activation (the seed's 512-512 ReLU)."""

    hidden: tuple[int, ...] = (512, 512)
    activation: str = "relu"

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
            raise SpaceError(
                f"activation is {self.activation!r}, but must be one of {', '.join(ACTIVATIONS)}"
            )


def build_mlp(config: ModelConfig, in_features: int = 784, num_classes: int = 10) -> nn.Sequential:
    """Linear layers with ``config.activation`` between them, ending in raw logits.

    The seed tutorial put a ReLU after the last layer too. That clips every negative
    logit to zero, so the classes the network argues against all look alike to the
    softmax in the loss, and a unit whose logit goes negative gets no gradient at all;
    training is slower and can stall. The logits are therefore left unclipped.
    """
    from torch import nn

    activation = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[config.activation]
    layers: list[nn.Module] = []
    width = in_features
    for size in config.hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
