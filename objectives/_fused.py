"""Several trainings of one MLP shape as one batched model: each member its own weights, seed, data order,
dropout masks and optimizer (SGD, momentum or Adam, its own learning rate, momentum, weight decay, betas).

A layer's weights are stacked [K, in, out] and multiplied with ``baddbmm``: on a narrow network, most of a
step's time is per-operation overhead, paid once for K members instead of K times. Each member computes what
it would alone (`train_epochs`), in the same order: its initial weights from its seed, its own shuffle
generator, its dropout masks from a generator holding the state the process's would have after building its
model, the same optimizer arithmetic with its own hyperparameters (tests compare step for step, within float
rounding). A member whose epochs are done, that its caller prunes (`FusedTraining.leave`) or whose loss
diverges leaves the group; the others go on undisturbed. It knows nothing of Optuna.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from objectives._errors import Interrupted
from objectives._fused_optim import FusedOptimizer
from objectives._train import _DIVERGENCE_CHECK_EVERY, _STOP_CHECK_EVERY, EpochResult, Normalizer, score
from objectives._train_config import TrainConfig
from objectives.data import Splits

_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Sigmoid: torch.sigmoid, nn.Tanh: torch.tanh}


def fusable(model: nn.Module) -> str | None:
    """Why ``model`` cannot be a member (None: it can): only the built-in MLP's Linear/activation/Dropout chain."""
    kinds = {type(m) for m in model.children()}
    if not kinds or not kinds <= {nn.Linear, nn.Dropout, *_ACTIVATIONS}:
        return "only the built-in MLP (Linear layers, one activation, dropout) trains fused"
    if any(isinstance(m, nn.Linear) and m.bias is None for m in model.children()):
        return "a Linear layer without bias"
    return None


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
        self.names = [n for n, m in first.named_children() if isinstance(m, nn.Linear)]  # "0", "2": its state_dict's
        self.activation = next(_ACTIVATIONS[type(m)] for m in first.children() if type(m) in _ACTIVATIONS)
        self.dropout = next((m.p for m in first.children() if isinstance(m, nn.Dropout)), 0.0)
        self.batch = (configs[0].batch_size, configs[0].loss)
        self.splits, self.metric, self.stop = splits, metric, stop
        self.normalize = Normalizer(splits.mean, splits.std, None)
        device = splits.train_x.device
        self.weights = [
            _leaf(m.weight.new_zeros((0, m.in_features, m.out_features)).to(device)) for m in _linears(first)
        ]
        self.biases = [_leaf(m.bias.new_zeros((0, 1, m.out_features)).to(device)) for m in _linears(first)]
        self.optimizer = FusedOptimizer([], self.weights + self.biases)
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
        weights = [m.weight.detach().t().unsqueeze(0) for m in _linears(model)]
        biases = [m.bias.detach().view(1, 1, -1) for m in _linears(model)]
        if [w.shape[1:] for w in weights] != [w.shape[1:] for w in self.weights]:
            raise ValueError("the members of a fused training share their layers' sizes")
        self.weights = [_leaf(torch.cat([w.detach(), n])) for w, n in zip(self.weights, weights, strict=True)]
        self.biases = [_leaf(torch.cat([b.detach(), n])) for b, n in zip(self.biases, biases, strict=True)]
        self.optimizer.join(config, weights + biases)
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
        index = torch.tensor(keep, dtype=torch.long, device=self.weights[0].device)
        self.weights = [_leaf(w.detach().index_select(0, index)) for w in self.weights]
        self.biases = [_leaf(b.detach().index_select(0, index)) for b in self.biases]
        self.optimizer.keep(index, self.weights + self.biases)
        for name in ("members", "configs", "generators", "shuffles", "epochs_done"):
            setattr(self, name, [getattr(self, name)[i] for i in keep])

    def state_dict(self, member: int) -> dict[str, torch.Tensor]:
        """Member ``member``'s weights under the names its own model has (a state_dict it loads)."""
        k = self.members.index(member)
        out = {}
        for name, w, b in zip(self.names, self.weights, self.biases, strict=True):
            out[f"{name}.weight"] = w[k].detach().t().clone()
            out[f"{name}.bias"] = b[k, 0].detach().clone()
        return out

    def snapshot(self, member: int) -> dict[str, Any]:
        """Member ``member``'s training state after this epoch in the form `train_epochs` saves and resumes from
        (`objectives._train._state`): a checkpoint of it goes on alone, as it would have here."""
        k = self.members.index(member)
        config, device = self.configs[k], self.weights[0].device
        per_param = self.optimizer.member_state(k, len(self.names))
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
                for k in bad:
                    epoch = self.epochs_done[k]
                    reason = f"training loss became {float(running[k])} at epoch {epoch}, step {steps}"
                    results[self.members[k]] = self._result(k, epoch, float(running[k]) / steps, started, steps, reason)
                running = running[[k for k in range(len(self.members)) if k not in bad]]
                orders = orders[[k for k in range(len(self.members)) if k not in bad]]
                for member in [self.members[k] for k in bad]:
                    self.leave(member)
                if not self.members:
                    return results
        for k, member in enumerate(self.members):
            epoch, train_loss = self.epochs_done[k], float(running[k]) / max(1, steps)
            reason = None if math.isfinite(train_loss) else f"training loss became {train_loss} at epoch {epoch}"
            results[member] = self._result(k, epoch, train_loss, started, steps, reason)
        done = [
            m
            for k, m in enumerate(self.members)
            if results[m].diverged or self.epochs_done[k] >= self.configs[k].epochs
        ]
        for member in done:
            self.leave(member)
        return results

    def _noise(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's dropout mask for ``x`` [K, B, H], drawn from its own generator, scaled as dropout scales it."""
        masks = [
            torch.empty_like(x[k]).bernoulli_(1 - self.dropout, generator=g) for k, g in enumerate(self.generators)
        ]
        return torch.stack(masks).div_(1 - self.dropout)

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
        x = self.normalize(splits.train_x[idx.reshape(-1)]).reshape(idx.shape[0], idx.shape[1], -1)
        for t in self.weights + self.biases:
            t.grad = None
        noise = self._noise if self.dropout > 0 else None
        losses = self._losses(_forward(x, self.weights, self.biases, self.activation, noise), splits.train_y[idx])
        losses.sum().backward()
        self.optimizer.step(self.weights + self.biases)
        return losses

    @torch.no_grad()
    def _result(self, k: int, epoch: int, train_loss: float, started: float, steps: int, diverged) -> EpochResult:
        """Member ``k``'s figures on the validation rows, scored as `objectives._train.evaluate` scores one model."""
        splits, bs = self.splits, self.batch[0]
        weights, biases = [w[k : k + 1] for w in self.weights], [b[k : k + 1] for b in self.biases]
        total, outputs = 0.0, []
        for start in range(0, splits.val_x.shape[0], bs):
            xb, yb = self.normalize(splits.val_x[start : start + bs]).unsqueeze(0), splits.val_y[start : start + bs]
            out = _forward(xb, weights, biases, self.activation)
            total += float(self._losses(out, yb.unsqueeze(0))[0]) * yb.shape[0]
            outputs.append(out[0])
        val_loss = total / max(1, splits.val_x.shape[0])
        value = score(torch.cat(outputs), splits.val_y, self.metric, splits)
        if diverged is None and not math.isfinite(val_loss):
            diverged = f"validation loss became {val_loss} at epoch {epoch}"
        n = splits.train_x.shape[0]
        seconds = time.perf_counter() - started
        return EpochResult(
            epoch,
            train_loss,
            val_loss,
            value,
            seconds,
            min(n, steps * self.configs[k].batch_size),
            diverged,
            self.metric,
            lambda member=self.members[k]: self.snapshot(member),
        )


def _forward(x, weights, biases, activation, noise: Callable | None = None) -> torch.Tensor:
    """The members' outputs [K, B, out] for their rows ``x`` [K, B, in]; ``noise`` (training): dropout's masks."""
    last = len(weights) - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x = torch.baddbmm(b, x, w)
        if i < last:
            x = activation(x)
            if noise is not None:
                x = x * noise(x)
    return x


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().requires_grad_(True)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.children() if isinstance(m, nn.Linear)]
