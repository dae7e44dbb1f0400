"""`objectives._optim`'s SGD (with momentum) and Adam over the stacked parameters of a fused training."""

from __future__ import annotations

import torch

from objectives._train_config import TrainConfig


class FusedOptimizer:
    """`objectives._optim`'s SGD (with momentum) and Adam over stacked parameters, each member with its own
    hyperparameters ([K, 1, 1] tensors) and kind; the same arithmetic, member by member. Parameters come as
    [K, 1, N] views (any layer's shape, flattened), so one column shape fits them all."""

    def __init__(self, configs: list[TrainConfig], params: list[torch.Tensor], per_epoch: int = 1):
        self.per_epoch = per_epoch  # steps in an epoch: a schedule's length is each member's epochs of them
        self.configs: list[TrainConfig] = []
        self.lr = self.decay = self.momentum = self.adam = None  # [K, 1, 1] columns, one row a member
        self.buffers: list[torch.Tensor] | None = None  # momentum's, made at the first step (zeros before it)
        self.exp_avg = [p[:0].clone() for p in params]
        self.exp_avg_sq = [p[:0].clone() for p in params]
        self.t: list[int] = []  # each member's steps so far (Adam's bias corrections)
        for k, config in enumerate(configs):
            self.join(config, [p[k : k + 1] for p in params])

    def join(self, config: TrainConfig, params: list[torch.Tensor]) -> None:
        """A member more, with no step taken: ``params`` its parameters, each [1, ...]."""
        like = params[0]

        def row(value: float, dtype=like.dtype) -> torch.Tensor:
            return torch.tensor([value], dtype=dtype, device=like.device).view(-1, 1, 1)

        def grown(column: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
            return value if column is None else torch.cat([column, value])

        self.configs.append(config)
        self.lr = grown(self.lr, row(config.lr))
        self.decay = grown(self.decay, row(config.weight_decay))
        self.momentum = grown(self.momentum, row(config.momentum if config.optimizer == "momentum" else 0.0))
        self.adam = grown(self.adam, row(config.optimizer == "adam", torch.bool))
        zeros = [torch.zeros_like(p) for p in params]  # a buffer of zeros steps as a fresh one: 0 * b + g is g
        if self.buffers is not None:
            self.buffers = [torch.cat([b, z]) for b, z in zip(self.buffers, zeros, strict=True)]
        self.exp_avg = [torch.cat([m, z]) for m, z in zip(self.exp_avg, zeros, strict=True)]
        self.exp_avg_sq = [torch.cat([v, z]) for v, z in zip(self.exp_avg_sq, zeros, strict=True)]
        self.t.append(0)

    def keep(self, index: torch.Tensor, params: list[torch.Tensor]) -> None:
        kept = index.tolist()
        self.configs = [self.configs[i] for i in kept]
        self.t = [self.t[i] for i in kept]
        for name in ("lr", "decay", "momentum", "adam"):
            setattr(self, name, getattr(self, name).index_select(0, index))
        if self.buffers is not None:
            self.buffers = [b.index_select(0, index) for b in self.buffers]
        self.exp_avg = [m.index_select(0, index) for m in self.exp_avg]
        self.exp_avg_sq = [v.index_select(0, index) for v in self.exp_avg_sq]

    def member_state(self, k: int, shapes: list[torch.Size]) -> dict[str, list[torch.Tensor] | None]:
        """Member ``k``'s momentum buffers and Adam moments, parameter by parameter in its own model's order and
        ``shapes``, as `objectives._optim` keeps them alone."""

        def own(tensors: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
            if tensors is None:
                return None
            return [t[k].reshape(shape).clone() for t, shape in zip(tensors, shapes, strict=True)]

        return {"buffers": own(self.buffers), "exp_avg": own(self.exp_avg), "exp_avg_sq": own(self.exp_avg_sq)}

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        """One step of every member: ``params`` and their ``grads`` as [K, 1, N] views (each member's row)."""
        self.t = [t + 1 for t in self.t]
        rates = [self._lr(k) for k in range(len(self.t))]  # this step's, each member's: once, for both kinds
        if any(c.schedule != "constant" for c in self.configs):
            self.lr = self._column(rates, self.lr)
        if bool((self.decay != 0).any()):
            grads = [g + self.decay * p for g, p in zip(grads, params, strict=True)]
        any_adam, all_adam = bool(self.adam.any()), bool(self.adam.all())
        if all_adam or not any_adam:  # one kind: in place, as many passes over the weights as alone
            return self._adam_in_place(params, grads, rates) if all_adam else self._sgd_in_place(params, grads)
        sgd = None if all_adam else self._sgd(grads)
        adam = self._adam(grads, rates) if any_adam else None
        for i, p in enumerate(params):
            if adam is None:
                p.sub_(self.lr * sgd[i])
            elif sgd is None:
                p.add_(adam[i])
            else:
                p.add_(torch.where(self.adam, adam[i], -self.lr * sgd[i]))

    def _sgd_in_place(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> None:
        neg_lr = -self.lr
        if not bool((self.momentum != 0).any()):  # plain SGD: p + (-lr) * g
            for p, g in zip(params, grads, strict=True):
                p.addcmul_(g, neg_lr)
            return
        if self.buffers is None:
            self.buffers = [g.clone() for g in grads]
        else:
            for b, g in zip(self.buffers, grads, strict=True):
                b.mul_(self.momentum).add_(g)
        for p, b in zip(params, self.buffers, strict=True):
            p.addcmul_(b, neg_lr)

    def _adam_in_place(self, params: list[torch.Tensor], grads: list[torch.Tensor], rates: list[float]) -> None:
        one_minus_b1, b2, one_minus_b2, step, bias2 = self._adam_scalars(grads[0], rates)
        for p, g, m, v in zip(params, grads, self.exp_avg, self.exp_avg_sq, strict=True):
            m.lerp_(g, one_minus_b1)
            v.mul_(b2).addcmul_(g * one_minus_b2, g)
            denom = v.sqrt().div_(bias2).add_(1e-8)
            p.addcmul_(torch.div(m, denom, out=denom), step)

    def _lr(self, k: int) -> float:
        """Member ``k``'s learning rate for the step it is taking (its ``t``-th), as `train_epochs` sets it alone."""
        config = self.configs[k]
        return config.lr_at(self.t[k] - 1, config.epochs * self.per_epoch)

    @staticmethod
    def _column(values: list[float], like: torch.Tensor) -> torch.Tensor:
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)

    def _adam_scalars(self, like: torch.Tensor, rates: list[float]) -> tuple[torch.Tensor, ...]:
        """Each member's 1 - beta1, beta2, 1 - beta2, step size (from its learning rate ``rates``) and bias
        correction, as [K, 1, 1] columns; the bias corrections in double, as Python computes them alone, then one
        rounding to the parameters' type."""
        configs, steps = self.configs, self.t
        return (
            self._column([1 - c.beta1 for c in configs], like),
            self._column([c.beta2 for c in configs], like),
            self._column([1 - c.beta2 for c in configs], like),
            self._column([-lr / (1 - c.beta1**t) for c, lr, t in zip(configs, rates, steps, strict=True)], like),
            self._column([(1 - c.beta2**t) ** 0.5 for c, t in zip(configs, steps, strict=True)], like),
        )

    def _sgd(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The step's direction: momentum's buffer (started at the first gradient, as torch.optim does), or the
        gradient itself (momentum 0: 0 * buffer + gradient is the gradient, exactly)."""
        if self.buffers is None:
            self.buffers = [g.clone() for g in grads]
        else:
            self.buffers = [b * self.momentum + g for b, g in zip(self.buffers, grads, strict=True)]
        return self.buffers

    def _adam(self, grads: list[torch.Tensor], rates: list[float]) -> list[torch.Tensor]:
        """A mixed group's Adam updates (every member's, out of place: `step` keeps its Adam members')."""
        one_minus_b1, b2, one_minus_b2, step, bias2 = self._adam_scalars(grads[0], rates)
        updates = []
        for i, g in enumerate(grads):
            self.exp_avg[i] = torch.lerp(self.exp_avg[i], g, one_minus_b1)
            self.exp_avg_sq[i] = self.exp_avg_sq[i] * b2 + one_minus_b2 * g * g
            denom = self.exp_avg_sq[i].sqrt() / bias2 + 1e-8
            updates.append(step * (self.exp_avg[i] / denom))
        return updates
