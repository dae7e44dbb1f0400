"""The training loop: shuffled mini-batches from in-memory tensors, one epoch at a time.

It knows nothing of Optuna: `train_epochs` yields one `EpochResult` per epoch and the
caller decides whether to go on (report, prune, stop). Rows are stored flattened and
handed to the model in their own shape (``splits.input_shape``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from objectives._errors import Interrupted
from objectives._metrics import classification_metric, regression_metric
from objectives._optim import SGD, Adam
from objectives._tasks import loss_function
from objectives._train_config import TrainConfig
from objectives.data import Splits

# How often (in steps) the running loss is checked for NaN/inf: often enough to stop a
# diverged trial early, rarely enough that the host-device sync costs nothing.
_DIVERGENCE_CHECK_EVERY = 50
_STOP_CHECK_EVERY = 5  # steps between looks at the stop flag: a Python call, next to nothing
_EVAL_BATCH = 512  # large enough to be fast, small enough not to set peak memory


@dataclass(frozen=True)
class EpochResult:
    """What one epoch produced: the metric ``metric`` on the validation rows is ``value``.
    ``diverged`` says why training stopped, when it did."""

    epoch: int
    train_loss: float
    val_loss: float  # NaN, and ``value`` None, for an epoch that was not scored (`train_epochs`' ``score_every``)
    value: float | None
    seconds: float
    samples: int
    diverged: str | None = None
    metric: str = "accuracy"
    # The training's state after this epoch, for a checkpoint: valid until the loop goes on (see `train_epochs`).
    snapshot: Callable[[], dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    @property
    def val_accuracy(self) -> float:
        """The validation figure (accuracy unless another metric was asked for)."""
        return self.value


def make_optimizer(params, config: TrainConfig) -> SGD | Adam:
    """The optimizer ``config`` names: ``sgd``, ``momentum`` (SGD with momentum) or ``adam``."""
    if config.optimizer == "adam":
        return Adam(params, lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay)
    momentum = config.momentum if config.optimizer == "momentum" else 0.0
    return SGD(params, lr=config.lr, momentum=momentum, weight_decay=config.weight_decay)


class Normalizer:
    """Turns a uint8 batch into float32 with the training split's mean and std, in the model's row shape."""

    def __init__(self, mean: float, std: float, shape: tuple[int, ...] | None = None):
        self.shift = 255.0 * mean
        self.scale = 1.0 / (255.0 * std)
        self.shape = tuple(shape) if shape else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().sub_(self.shift).mul_(self.scale)
        else:
            x = x.float()  # features of a table arrive standardised: nothing to do, nothing changed in place
        return x.view(-1, *self.shape) if self.shape and len(self.shape) > 1 else x


def _loss_name(splits: Splits, config: TrainConfig) -> str:
    return "regression" if splits.task == "regression" else config.loss


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    normalize: Normalizer,
    loss: str = "cross_entropy",
    batch_size: int = _EVAL_BATCH,
    metric: str = "accuracy",
    splits: Splits | None = None,
) -> tuple[float, float]:
    """Mean loss and ``metric`` over rows ``x``; rows with non-finite outputs count as knowing nothing."""
    was_training = model.training
    model.eval()
    regression = splits is not None and splits.task == "regression"
    loss_fn = loss_function("regression" if regression else loss)
    total_loss, outputs = 0.0, []
    for start in range(0, x.shape[0], batch_size):
        xb, yb = normalize(x[start : start + batch_size]), y[start : start + batch_size]
        out = model(xb)
        total_loss += float(loss_fn(out, yb)) * yb.shape[0]
        outputs.append(out)
    model.train(was_training)
    n = max(1, x.shape[0])
    out = torch.cat(outputs) if outputs else torch.zeros((0, 1 if regression else 2), device=x.device)
    return total_loss / n, score(out, y, metric, splits)


def score(out: torch.Tensor, y: torch.Tensor, metric: str, splits: Splits | None) -> float:
    """``metric`` of a model's outputs ``out`` for rows whose targets are ``y``: a regression's in the target's
    units (``splits``' scaling undone), a classification's over ``splits``' classes (else the outputs' columns)."""
    if splits is not None and splits.task == "regression":
        scale, shift = splits.target_std, splits.target_mean
        return regression_metric(metric, out.reshape(-1) * scale + shift, y * scale + shift, shift)
    classes = splits.num_classes if splits is not None else out.shape[1]
    return classification_metric(metric, out, y, classes)


def train_step(
    model: nn.Module, optimizer, loss_fn: Callable, normalize: Normalizer, splits: Splits, idx
) -> torch.Tensor:
    """One optimizer step of ``model`` on the training rows ``idx``: the batch's loss (detached)."""
    # index_select: a third of indexing's time on a wide table's rows
    loss = loss_fn(model(normalize(splits.train_x.index_select(0, idx))), splits.train_y.index_select(0, idx))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_epochs(
    model: nn.Module,
    splits: Splits,
    config: TrainConfig,
    seed: int = 0,
    stop: Callable[[], bool] | None = None,
    metric: str = "accuracy",
    score_every: bool = True,
    resume: dict[str, Any] | None = None,
) -> Iterator[EpochResult]:
    """Train ``model`` for ``config.epochs`` epochs, yielding after each one.

    ``score_every``: score the validation rows after every epoch (a trial reports each to its pruner);
    False: after the last only (a final model's test rows, which must not be watched while training).
    Stops early, with ``diverged`` set, when the training loss becomes NaN or infinite.
    ``stop`` is asked every few steps; when it says yes, `Interrupted` is raised there
    (a Ctrl-C that waited for a point where no storage call is under way).
    ``resume``: a result's ``snapshot()`` from an earlier run of the same configuration and seed; training goes on
    from the epoch after it, and ends as that run would have (the same data order, dropout masks and optimizer state).
    """
    device = splits.train_x.device
    normalize = Normalizer(splits.mean, splits.std, splits.input_shape)
    loss_name = _loss_name(splits, config)
    loss_fn = loss_function(loss_name)
    optimizer = make_optimizer(model.parameters(), config)
    shuffle = torch.Generator().manual_seed(seed)
    n, bs = splits.train_x.shape[0], config.batch_size
    first = 1 if resume is None else _restore(resume, model, optimizer, shuffle, device) + 1

    def snapshot(epoch: int) -> Callable[[], dict[str, Any]]:
        return lambda: _state(epoch, model, optimizer, shuffle, device)

    per_epoch = math.ceil(n / bs)
    scheduled = config.schedule != "constant"
    model.train()
    for epoch in range(first, config.epochs + 1):
        start = time.perf_counter()
        order = torch.randperm(n, generator=shuffle).to(device)
        running = torch.zeros((), device=device)
        steps, diverged = 0, None
        for i in range(0, n, bs):
            if scheduled:  # from the epoch and step alone: a resumed run takes the rates it would have taken
                optimizer.lr = config.lr_at((epoch - 1) * per_epoch + steps, config.epochs * per_epoch)
            running += train_step(model, optimizer, loss_fn, normalize, splits, order[i : i + bs])
            steps += 1
            if stop is not None and steps % _STOP_CHECK_EVERY == 0 and stop():
                raise Interrupted
            if steps % _DIVERGENCE_CHECK_EVERY == 0 and not math.isfinite(float(running)):
                diverged = f"training loss became {float(running)} at epoch {epoch}, step {steps}"
                break
        train_loss = float(running) / max(1, steps)
        if diverged is None and not math.isfinite(train_loss):
            diverged = f"training loss became {train_loss} at epoch {epoch}"
        seconds = time.perf_counter() - start
        if not (score_every or diverged or epoch == config.epochs):
            yield EpochResult(
                epoch, train_loss, math.nan, None, seconds, min(n, steps * bs), None, metric, snapshot(epoch)
            )
            continue
        # At the training batch size: the matmul library keeps buffers per shape, and a
        # new, larger shape would set the worker's peak memory.
        val_loss, value = evaluate(model, splits.val_x, splits.val_y, normalize, loss_name, bs, metric, splits)
        if diverged is None and not math.isfinite(val_loss):
            diverged = f"validation loss became {val_loss} at epoch {epoch}"
        yield EpochResult(
            epoch, train_loss, val_loss, value, seconds, min(n, steps * bs), diverged, metric, snapshot(epoch)
        )
        if diverged:
            return


def _state(epoch: int, model: nn.Module, optimizer, shuffle: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Everything the next epoch depends on: tensors and numbers only, so `torch.load(weights_only=True)` reads it."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffle": shuffle.get_state(),
        "rng": torch.get_rng_state(),  # dropout masks
    }
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def _restore(state: dict[str, Any], model: nn.Module, optimizer, shuffle: torch.Generator, device) -> int:
    """Puts ``state`` (from `_state`) back; the epoch it was taken after."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    shuffle.set_state(state["shuffle"])
    torch.set_rng_state(state["rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return int(state["epoch"])
