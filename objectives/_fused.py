"""Several trainings of one model shape as one batched model: each member its own weights, seed, data order,
dropout masks and optimizer (SGD, momentum or Adam, its own learning rate, momentum, weight decay, betas).

Each parameter is stacked [K, ...] across the members. The built-in MLP multiplies its stacked layers with
``baddbmm``; a user's model runs under ``torch.func.vmap`` with its stacked parameters (`fusable` says
whether it can: no buffers, no randomness). On a narrow network most of a step's time is per-operation
overhead, paid once for K members instead of K times. Each member computes what
it would alone (`train_epochs`), in the same order: its initial weights from its seed, its own shuffle
generator, its dropout masks from a generator holding the state the process's would have after building its
model, the same optimizer arithmetic with its own hyperparameters (tests compare step for step, within float
rounding). A member whose epochs are done, that its caller prunes (`FusedTraining.leave`) or whose loss
diverges leaves the group; the others go on undisturbed. It knows nothing of Optuna.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from objectives._errors import Interrupted
from objectives._fused_forward import MlpForward, VmapForward, is_mlp
from objectives._fused_optim import FusedOptimizer
from objectives._train import _DIVERGENCE_CHECK_EVERY, _STOP_CHECK_EVERY, EpochResult, Normalizer, score
from objectives._train_config import TrainConfig
from objectives.data import Splits


class FusedTraining:
    """K members trained as one model on ``splits``; `epoch` runs one epoch of every member still in."""

    def __init__(
        self,
        models: list[nn.Module],
        configs: list[TrainConfig],
        seeds: list[int],
        generators: list[torch.Generator],
        splits: Splits,
        metric: str = "accuracy",
        stop: Callable[[], bool] | None = None,
    ):
        """``generators``: each member's dropout generator, in the state the process's was in after its model
        was built (``torch.manual_seed(seed)``, then the model); ``seeds`` order each member's batches."""
        first = models[0]
        self.forward = MlpForward(first) if is_mlp(first) else VmapForward(first)
        self.names = [name for name, _ in first.named_parameters()]  # its state_dict's, in its optimizer's order
        self.shapes = [p.shape for p in first.parameters()]  # as the model holds them
        flip = self.forward.transposed
        self.flipped = [flip and p.dim() == 2 for p in first.parameters()]  # held transposed in the stack
        self.batch = (configs[0].batch_size, configs[0].loss)
        self.splits, self.metric, self.stop = splits, metric, stop
        self.normalize = Normalizer(splits.mean, splits.std, None if self.forward.flat else splits.input_shape)
        device = splits.train_x.device
        self.held = [self._flip(p, i).shape for i, p in enumerate(first.parameters())]  # as the stack holds them
        self._restack(torch.zeros(0, sum(math.prod(shape) for shape in self.held), device=device))
        per_epoch = math.ceil(splits.train_x.shape[0] / self.batch[0])  # a learning-rate schedule's unit
        self.optimizer = FusedOptimizer([self.flat], per_epoch)
        self.members: list[int] = []  # the callers' indices of the members still in
        self.configs: list[TrainConfig] = []
        self.generators: list[torch.Generator] = []
        self.shuffles: list[torch.Generator] = []
        self.epochs_done: list[int] = []  # each member's epochs so far
        self.left: dict[int, dict[str, torch.Tensor]] = {}  # the weights of members that left, by index
        self.joined = 0  # members so far: the next one's index
        for model, config, seed, generator in zip(models, configs, seeds, generators, strict=True):
            self.join(model, config, seed, generator)

    def join(self, model: nn.Module, config: TrainConfig, seed: int, generator: torch.Generator) -> int:
        """A member more, from its first epoch, trained with the others from the next `epoch` on (each member's
        epochs take the same steps: one batch size, one training split); its index, counting from 0 in order."""
        if (config.batch_size, config.loss) != self.batch:
            raise ValueError("the members of a fused training share their batch size and loss")
        if [p.shape for p in model.parameters()] != self.shapes:
            raise ValueError("the members of a fused training share their layers' sizes")
        own = torch.cat([self._flip(p.detach(), i).reshape(1, -1) for i, p in enumerate(model.parameters())], dim=1)
        own = own.to(self.flat.device)
        self._restack(torch.cat([self.flat, own]))
        self.optimizer.join(config, [own])
        index = self.joined
        self.joined += 1
        self.members.append(index)
        self.configs.append(config)
        self.generators.append(generator)
        self.shuffles.append(torch.Generator().manual_seed(seed))
        self.epochs_done.append(0)
        return index

    def leave(self, member: int) -> None:
        """Member ``member`` (its index as given) trains no more; the others go on as they were. Its weights as
        they ended wait in ``left`` (by its index) for its caller to take."""
        keep = [i for i, m in enumerate(self.members) if m != member]
        if len(keep) == len(self.members):
            return
        self.left[member] = self.state_dict(member)
        index = torch.tensor(keep, dtype=torch.long, device=self.flat.device)
        self._restack(self.flat.index_select(0, index))
        self.optimizer.keep(index)
        for name in ("members", "configs", "generators", "shuffles", "epochs_done"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])

    def state_dict(self, member: int) -> dict[str, torch.Tensor]:
        """Member ``member``'s weights under the names its own model has (a state_dict it loads)."""
        k = self.members.index(member)
        pairs = enumerate(zip(self.names, self.params, strict=True))
        return {name: self._flip(p[k].detach(), i).clone() for i, (name, p) in pairs}

    def _restack(self, flat: torch.Tensor) -> None:
        """The members' parameters from ``flat`` [K, N] (each member's a row, layer after layer), and their gradients'
        rows: each parameter [K, ...] a view of both, so that backward adds the gradients into one tensor in place and
        a member's optimizer step is one call over its row (`FusedOptimizer`), not one a layer."""
        self.flat, self.grad = flat, torch.zeros_like(flat)
        self.params, start = [], 0
        for shape in self.held:
            end = start + math.prod(shape)
            param = flat[:, start:end].view(-1, *shape).requires_grad_(True)
            param.grad = self.grad[:, start:end].view(-1, *shape)
            self.params.append(param)
            start = end

    def _flip(self, tensor: torch.Tensor, i: int) -> torch.Tensor:
        """Parameter ``i`` of one member (or its optimizer state) between its model's layout and the stack's: the
        MLP's weights are held transposed, and a transpose is its own inverse."""
        return tensor.t() if self.flipped[i] else tensor

    def snapshot(self, member: int) -> dict[str, Any]:
        """Member ``member``'s training state after this epoch in the form `train_epochs` saves and resumes from
        (`objectives._train._state`): a checkpoint of it goes on alone, as it would have here."""
        k = self.members.index(member)
        config, device = self.configs[k], self.flat.device
        stacked = self.optimizer.member_state(k, self.held)
        per_param = {
            kind: None if tensors is None else [self._flip(t, i).contiguous() for i, t in enumerate(tensors)]
            for kind, tensors in stacked.items()
        }
        if config.optimizer == "adam":
            optimizer = {
                "exp_avg": per_param["exp_avg"],
                "exp_avg_sq": per_param["exp_avg_sq"],
                "t": self.optimizer.t[k],
            }
        else:
            optimizer = {"buffers": per_param["buffers"] if config.optimizer == "momentum" else None}
        state = {
            "epoch": self.epochs_done[k],
            "model": self.state_dict(member),
            "optimizer": optimizer,
            "shuffle": self.shuffles[k].get_state(),
            "rng": torch.get_rng_state(),
        }
        if device.type == "cuda":
            state["cuda_rng"] = self.generators[k].get_state()
        else:
            state["rng"] = self.generators[k].get_state()
        return state

    def epoch(self) -> dict[int, EpochResult]:
        """One epoch of every member still in (each its own next one): each one's result, by its index. A member
        whose epochs are done, or whose loss diverged, leaves after it."""
        self.epochs_done = [e + 1 for e in self.epochs_done]
        splits = self.splits
        n, bs, device = splits.train_x.shape[0], self.batch[0], splits.train_x.device
        orders = torch.stack([torch.randperm(n, generator=g) for g in self.shuffles]).to(device)
        running = torch.zeros(len(self.members), device=device)
        steps, started, results = 0, time.perf_counter(), {}
        for i in range(0, n, bs):
            running += self.step(orders[:, i : i + bs]).detach()
            steps += 1
            if self.stop is not None and steps % _STOP_CHECK_EVERY == 0 and self.stop():
                raise Interrupted
            if steps % _DIVERGENCE_CHECK_EVERY == 0 and not bool(torch.isfinite(running).all()):
                # As alone: a member whose loss is not finite stops here, scored as it stands.
                bad = [k for k in range(len(self.members)) if not math.isfinite(float(running[k]))]
                for k, scored in zip(bad, self._scored(bad), strict=True):
                    epoch = self.epochs_done[k]
                    reason = f"training loss became {float(running[k])} at epoch {epoch}, step {steps}"
                    loss = float(running[k]) / steps
                    results[self.members[k]] = self._result(k, epoch, loss, started, steps, reason, scored)
                running = running[[k for k in range(len(self.members)) if k not in bad]]
                orders = orders[[k for k in range(len(self.members)) if k not in bad]]
                for member in [self.members[k] for k in bad]:
                    self.leave(member)
                if not self.members:
                    return results
        everyone = list(range(len(self.members)))
        for k, scored in zip(everyone, self._scored(everyone), strict=True):
            epoch, train_loss = self.epochs_done[k], float(running[k]) / max(1, steps)
            reason = None if math.isfinite(train_loss) else f"training loss became {train_loss} at epoch {epoch}"
            results[self.members[k]] = self._result(k, epoch, train_loss, started, steps, reason, scored)
        done = [
            m
            for k, m in enumerate(self.members)
            if results[m].diverged or self.epochs_done[k] >= self.configs[k].epochs
        ]
        for member in done:
            self.leave(member)
        return results

    def _noise(self, x: torch.Tensor, p: float) -> torch.Tensor:
        """Each member's dropout mask for ``x`` [K, B, H], drawn from its own generator, scaled as dropout scales it."""
        masks = torch.empty_like(x)
        for mask, g in zip(masks.unbind(), self.generators, strict=True):  # drawn in place: no copies to stack
            mask.bernoulli_(1 - p, generator=g)
        return masks.div_(1 - p)

    def _losses(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's mean loss over its batch [K]."""
        k, b = y.shape
        if self.splits.task == "regression":
            return ((out.reshape(k, b) - y) ** 2).mean(dim=1)
        if self.configs[0].loss == "mse":
            target = F.one_hot(y, out.shape[-1]).to(out.dtype)
            return ((out.softmax(dim=-1) - target) ** 2).mean(dim=(1, 2))
        return F.cross_entropy(out.reshape(k * b, -1), y.reshape(-1), reduction="none").view(k, b).mean(dim=1)

    def step(self, idx: torch.Tensor) -> torch.Tensor:
        """One step of every member on its rows ``idx`` [K, B] (of the training split): each one's loss [K]."""
        splits = self.splits
        x = self._rows(splits.train_x.index_select(0, idx.reshape(-1)), idx.shape[0])
        self.grad.zero_()
        losses = self._losses(self.forward(self.params, x, self._noise), splits.train_y[idx])
        _backward(losses.sum())
        self.optimizer.step([self.flat], [self.grad])
        return losses

    def _rows(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Rows normalised, as [K, B, ...] in the shape the forward takes (flat for the MLP, else the model's)."""
        x = self.normalize(x)
        return x.reshape(k, -1, *x.shape[1:]) if not self.forward.flat else x.reshape(k, -1, x[0].numel())

    @torch.no_grad()
    def _scored(self, ks: list[int]) -> list[tuple[float, float]]:
        """Members ``ks``' loss and metric on the validation rows, in one batched forward, each scored as
        `objectives._train.evaluate` scores one model (at the training batch size)."""
        splits, bs, n = self.splits, self.batch[0], self.splits.val_x.shape[0]
        index = torch.tensor(ks, dtype=torch.long, device=self.flat.device)
        params = [p.detach().index_select(0, index) for p in self.params]
        totals, outputs = torch.zeros(len(ks), device=index.device), []
        for start in range(0, n, bs):
            xb, yb = self._rows(splits.val_x[start : start + bs], 1), splits.val_y[start : start + bs]
            out = self.forward(params, xb.expand(len(ks), *xb.shape[1:]))
            totals += self._losses(out, yb.expand(len(ks), -1)) * yb.shape[0]
            outputs.append(out)
        out = torch.cat(outputs, dim=1)
        return [
            (float(totals[j]) / max(1, n), score(out[j], splits.val_y, self.metric, splits)) for j in range(len(ks))
        ]

    def _result(
        self, k: int, epoch: int, train_loss: float, started: float, steps: int, diverged, scored
    ) -> EpochResult:
        """Member ``k``'s epoch, ``scored`` (its validation loss and metric, from `_scored`)."""
        val_loss, value = scored
        if diverged is None and not math.isfinite(val_loss):
            diverged = f"validation loss became {val_loss} at epoch {epoch}"
        n = self.splits.train_x.shape[0]
        seconds = time.perf_counter() - started
        return EpochResult(
            epoch,
            train_loss,
            val_loss,
            value,
            seconds,
            min(n, steps * self.batch[0]),
            diverged,
            self.metric,
            lambda member=self.members[k]: self.snapshot(member),
        )


_LAYOUT_SAID = False  # whether torch has said its one word on the stack's gradient layout in this process


def _backward(loss: torch.Tensor) -> None:
    """``loss.backward()``. The gradients are rows of one flat tensor, the optimizer's layout, not the one autograd
    prefers for a parameter's: harmless, and torch says so once a process, so only the first is silenced (the
    filter's swap of the process's warning state on every step would race other threads' warnings)."""
    global _LAYOUT_SAID
    if _LAYOUT_SAID:
        loss.backward()
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "grad and param do not obey the gradient layout contract")
        loss.backward()
    _LAYOUT_SAID = True
