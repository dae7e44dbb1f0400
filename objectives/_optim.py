"""SGD (with momentum) and Adam by torch's fused kernels, the ones ``torch.optim`` calls with ``fused=True``.

The same arithmetic as ``torch.optim.SGD`` and ``torch.optim.Adam`` (tests compare them
step for step), without their cost here: each ``torch.optim`` step goes through a
``torch._dynamo`` wrapper whose first call imports TorchDynamo (about 150 MB of memory
in every worker process) and whose Python overhead is paid on every step of a small model.
A fused kernel makes one pass over each tensor, where Adam's multi-tensor form made eight
and allocated two: a table network whose first layer takes 990 inputs (its columns' bins)
spent most of its step there. `adam_step` and `sgd_step` are the one place this project
calls the kernels; a fused training steps each member with them too (`objectives._fused_optim`),
so a member's arithmetic is the same as alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class _Optimizer:
    def __init__(self, params: Iterable[torch.Tensor]):
        self.params = [p for p in params if p.requires_grad]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        """What the next step depends on besides the parameters: a checkpoint's share (tensors and numbers only)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SGD(_Optimizer):
    """``torch.optim.SGD`` without dampening or Nesterov: ``buf = momentum * buf + g; p -= lr * buf``."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: list[torch.Tensor] | None = None  # momentum's, made at the first step

    def step(self) -> None:
        first = self.buffers is None
        if self.momentum and first:
            self.buffers = [torch.empty_like(p) for p in self.params]  # the kernel starts them at the gradient
        grads = [p.grad for p in self.params]
        buffers = self.buffers if self.momentum else []
        sgd_step(self.params, grads, buffers, self.lr, self.momentum, self.weight_decay, first)

    def state_dict(self) -> dict:
        return {"buffers": self.buffers}

    def load_state_dict(self, state: dict) -> None:
        buffers = state["buffers"]
        self.buffers = None if buffers is None else [b.to(p.device) for b, p in zip(buffers, self.params, strict=True)]


class Adam(_Optimizer):
    """``torch.optim.Adam`` (no amsgrad), bias-corrected, with L2 weight decay as torch applies it."""

    def __init__(
        self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0
    ):
        super().__init__(params)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.t = 0
        self.count: torch.Tensor | None = None  # ``t`` where the kernel reads it: on the parameters' device

    def step(self) -> None:
        self.t += 1
        if self.count is None:
            self.count = torch.tensor(float(self.t - 1), device=self.params[0].device)
        self.count.add_(1)
        grads = [p.grad for p in self.params]
        adam_step(
            self.params,
            grads,
            self.exp_avg,
            self.exp_avg_sq,
            self.count,
            self.lr,
            self.betas,
            self.weight_decay,
            self.eps,
        )

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg = [m.to(p.device) for m, p in zip(state["exp_avg"], self.params, strict=True)]
        self.exp_avg_sq = [v.to(p.device) for v, p in zip(state["exp_avg_sq"], self.params, strict=True)]
        self.t = int(state["t"])
        self.count = None


@torch.no_grad()
def adam_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avg: list[torch.Tensor],
    exp_avg_sq: list[torch.Tensor],
    count: torch.Tensor,
    lr: float,
    betas: tuple[float, float],
    weight_decay: float,
    eps: float = 1e-8,
) -> None:
    """Adam's step of ``params``, in place, with their moments: the ``count``-th (from 1), a number held in a tensor on
    the parameters' device, where the kernel reads it (one made from a Python number each step would be a copy to
    the GPU, which waits for it)."""
    torch._fused_adam_(
        params,
        grads,
        exp_avg,
        exp_avg_sq,
        [],
        [count] * len(params),
        lr=lr,
        beta1=betas[0],
        beta2=betas[1],
        weight_decay=weight_decay,
        eps=eps,
        amsgrad=False,
        maximize=False,
    )


@torch.no_grad()
def sgd_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    buffers: list[torch.Tensor],
    lr: float,
    momentum: float,
    weight_decay: float,
    first: bool,
) -> None:
    """SGD's step of ``params``, in place: ``buffers`` empty without momentum, else set to the gradient on the
    ``first`` step (as torch.optim starts them) and ``momentum * buf + g`` after."""
    torch._fused_sgd_(
        params,
        grads,
        buffers,
        weight_decay=weight_decay,
        momentum=momentum,
        lr=lr,
        dampening=0.0,
        nesterov=False,
        maximize=False,
        is_first_step=first,
    )
