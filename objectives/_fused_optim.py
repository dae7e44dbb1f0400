"""`objectives._optim`'s SGD (with momentum) and Adam over the stacked parameters of a fused training."""

from __future__ import annotations

import math

import torch

from objectives._optim import adam_step, sgd_step
from objectives._train_config import TrainConfig


class FusedOptimizer:
    """Each member's step is the one it takes alone (`objectives._optim`'s fused kernels, with its own kind and
    hyperparameters) on its rows of the stacked parameters and state. Parameters come as [K, ...] tensors, row k
    of each member k's, contiguous; a fused training hands over one [K, N] tensor, each member's row all its
    parameters, so that a member's step is one kernel call.

    Member by member, not as [K, 1, 1] columns of hyperparameters over the stack: the column form took about
    twelve passes over every parameter a step (decay, moments, square root, division, each its own operation),
    where a member's kernel makes one; on a CPU that memory traffic outweighed the K calls (a 990-input table
    network: 4.6 ms a step for 8 members against 0.4 ms)."""

    def __init__(self, like: list[torch.Tensor], per_epoch: int):
        """No member yet: ``like`` the stacked parameters with no row ([0, ...], their dtype and device);
        ``per_epoch`` the steps in an epoch (a schedule's length is each member's epochs of them)."""
        self.per_epoch = per_epoch
        self.configs: list[TrainConfig] = []
        # Each member's rows of momentum's buffers and Adam's moments (zeros until its first step).
        self.buffers = [p.clone() for p in like]
        self.exp_avg = [p.clone() for p in like]
        self.exp_avg_sq = [p.clone() for p in like]
        self.t: list[int] = []  # each member's steps so far
        # The same counts where Adam's kernel reads them: on the parameters' device (`objectives._optim`).
        self.counts = torch.zeros(0, device=like[0].device)

    def join(self, config: TrainConfig, params: list[torch.Tensor]) -> None:
        """A member more, with no step taken: ``params`` its parameters, each [1, ...]."""
        self.configs.append(config)
        self.t.append(0)
        self.counts = torch.cat([self.counts, self.counts.new_zeros(1)])
        for name in ("buffers", "exp_avg", "exp_avg_sq"):
            grown = [torch.cat([s, torch.zeros_like(p)]) for s, p in zip(getattr(self, name), params, strict=True)]
            setattr(self, name, grown)

    def keep(self, index: torch.Tensor) -> None:
        """Only the members at ``index`` stay."""
        kept = index.tolist()
        self.configs = [self.configs[i] for i in kept]
        self.t = [self.t[i] for i in kept]
        self.counts = self.counts.index_select(0, index)
        for name in ("buffers", "exp_avg", "exp_avg_sq"):
            setattr(self, name, [s.index_select(0, index) for s in getattr(self, name)])

    def member_state(self, k: int, shapes: list[torch.Size]) -> dict[str, list[torch.Tensor] | None]:
        """Member ``k``'s momentum buffers and Adam moments, parameter by parameter in its own model's order and
        ``shapes``, as `objectives._optim` keeps them alone (momentum's None before its first step, or without it)."""

        sizes = [math.prod(shape) for shape in shapes]

        def own(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
            row = torch.cat([t[k].reshape(-1) for t in tensors])  # the member's, in its parameters' order
            return [part.reshape(shape).clone() for part, shape in zip(row.split(sizes), shapes, strict=True)]

        buffers = own(self.buffers) if self.t[k] and _momentum(self.configs[k]) else None
        return {"buffers": buffers, "exp_avg": own(self.exp_avg), "exp_avg_sq": own(self.exp_avg_sq)}

    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """One step of every member: ``params`` and their ``grads`` [K, ...], row k member k's."""
        rows = [_rows(t) for t in (params, grads, self.exp_avg, self.exp_avg_sq, self.buffers)]
        self.counts.add_(1)
        counts = self.counts.unbind()
        for k, (config, own, grad, m, v, buffer) in enumerate(zip(self.configs, *rows, strict=True)):
            self.t[k] += 1
            t = self.t[k]
            lr = config.lr_at(t - 1, config.epochs * self.per_epoch)  # as `train_epochs` sets it alone
            if config.optimizer == "adam":
                adam_step(own, grad, m, v, counts[k], lr, (config.beta1, config.beta2), config.weight_decay)
            else:
                momentum = _momentum(config)
                sgd_step(own, grad, buffer if momentum else [], lr, momentum, config.weight_decay, t == 1)


def _rows(tensors: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """Each member's rows of ``tensors`` [K, ...]: one list a member (``unbind``: one call a tensor, not K)."""
    return [list(row) for row in zip(*(t.unbind() for t in tensors), strict=True)]


def _momentum(config: TrainConfig) -> float:
    return config.momentum if config.optimizer == "momentum" else 0.0
