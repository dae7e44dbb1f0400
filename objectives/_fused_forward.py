"""The forward pass of K stacked members: the built-in MLP by batched matmuls, a user's model under torch.func.vmap."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from objectives._train import Normalizer
from objectives.data import Splits

_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh}


def fusable(model: nn.Module, rows: torch.Tensor | None = None) -> str | None:
    """Why ``model`` cannot be a member (None: it can): the built-in MLP's Linear/activation/Dropout chain
    always can; another model where ``torch.func.vmap`` runs it on ``rows`` (a few input rows, in the model's
    shape) for two members, forward and backward, with no buffers and no random draws (dropout's masks could
    not be each member's own)."""
    if is_mlp(model):
        return None
    if any(True for _ in model.buffers()):
        return "the model keeps buffers (batch norm's running statistics, say), which one batched model cannot"
    if rows is None:
        return "the model is not the built-in MLP"
    forward = VmapForward(model)
    params = [torch.stack([p.detach()] * 2).requires_grad_(True) for p in model.parameters()]
    try:
        out = forward(params, torch.stack([rows, rows]))
        out.float().sum().backward()
    except Exception as exc:  # noqa: BLE001 - whatever vmap refuses, the trials train one at a time
        said = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return f"torch.func cannot batch the model ({said[:200]})"
    return None


def is_mlp(model: nn.Module) -> bool:
    kinds = {type(m) for m in model.children()}
    linears = [m for m in model.children() if isinstance(m, nn.Linear)]
    return bool(kinds) and kinds <= {nn.Linear, nn.Dropout, *_ACTIVATIONS} and all(m.bias is not None for m in linears)


class MlpForward:
    """The built-in MLP: each Linear layer's stacked weight, held as [K, in, out], and bias [K, out] by
    ``baddbmm``, then the activation and dropout (each member's masks from its own generator)."""

    flat = True  # its rows come flattened
    transposed = True  # its weights are stacked transposed: a transposed operand costs a quarter more on a CPU

    def __init__(self, model: nn.Module) -> None:
        self.activation = next(_ACTIVATIONS[type(m)] for m in model.children() if type(m) in _ACTIVATIONS)
        self.dropout = next((m.p for m in model.children() if isinstance(m, nn.Dropout)), 0.0)

    def __call__(self, params: list[torch.Tensor], x: torch.Tensor, noise: Callable | None = None) -> torch.Tensor:
        last = len(params) // 2 - 1
        for i in range(len(params) // 2):
            x = torch.baddbmm(params[2 * i + 1].unsqueeze(1), x, params[2 * i])
            if i < last:
                x = self.activation(x)
                if noise is not None and self.dropout > 0:
                    x = x * noise(x, self.dropout)
        return x


class VmapForward:
    """A user's model, called with each member's parameters under ``torch.func.vmap``."""

    flat = False  # its rows come in the model's own shape
    transposed = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = [name for name, _ in model.named_parameters()]
        one = lambda params, x: torch.func.functional_call(model, dict(zip(self.names, params, strict=True)), (x,))  # noqa: E731
        self.batched = torch.func.vmap(one, randomness="error")

    def __call__(self, params: list[torch.Tensor], x: torch.Tensor, noise: Callable | None = None) -> torch.Tensor:
        out = self.batched(tuple(params), x)
        return out.reshape(out.shape[0], out.shape[1], -1)


def probe_rows(splits: Splits) -> torch.Tensor:
    """Two training rows as a model takes them (normalised, in its input shape): what `fusable` tries it on."""
    return Normalizer(splits.mean, splits.std, splits.input_shape)(splits.train_x[:2])
