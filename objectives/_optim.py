"""SGD (with momentum) and Adam as a few multi-tensor (``torch._foreach_*``) updates.

The same arithmetic as ``torch.optim.SGD`` and ``torch.optim.Adam`` (tests compare them
step for step), without their cost here: each ``torch.optim`` step goes through a
``torch._dynamo`` wrapper whose first call imports TorchDynamo (about 150 MB of memory
in every worker process) and whose Python overhead is paid on every step of a small model.
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

    def _grads(self, weight_decay: float) -> list[torch.Tensor]:
        grads = [p.grad for p in self.params]
        if weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=weight_decay)
        return grads


class SGD(_Optimizer):
    """``torch.optim.SGD`` without dampening or Nesterov: ``buf = momentum * buf + g; p -= lr * buf``."""

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.buffers: list[torch.Tensor] | None = None

    @torch.no_grad()
    def step(self) -> None:
        grads = self._grads(self.weight_decay)
        if self.momentum:
            if self.buffers is None:  # torch.optim starts the buffer at the first gradient
                self.buffers = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.buffers, self.momentum)
                torch._foreach_add_(self.buffers, grads)
            grads = self.buffers
        torch._foreach_add_(self.params, grads, alpha=-self.lr)

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

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.t += 1
        grads = self._grads(self.weight_decay)
        torch._foreach_lerp_(self.exp_avg, grads, 1 - beta1)
        torch._foreach_mul_(self.exp_avg_sq, beta2)
        torch._foreach_addcmul_(self.exp_avg_sq, grads, grads, 1 - beta2)
        bias1 = 1 - beta1**self.t
        bias2_sqrt = (1 - beta2**self.t) ** 0.5
        denom = torch._foreach_sqrt(self.exp_avg_sq)
        torch._foreach_div_(denom, bias2_sqrt)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.exp_avg, denom, -self.lr / bias1)

    def state_dict(self) -> dict:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq, "t": self.t}

    def load_state_dict(self, state: dict) -> None:
        self.exp_avg = [m.to(p.device) for m, p in zip(state["exp_avg"], self.params, strict=True)]
        self.exp_avg_sq = [v.to(p.device) for v, p in zip(state["exp_avg_sq"], self.params, strict=True)]
        self.t = int(state["t"])
