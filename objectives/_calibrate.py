"""How many trials to train as one model: measured, a few steps at K = 1, 2, 4, ... on the rows at hand.

Fusing pays where a step's time is mostly per-operation overhead (a narrow network, a GPU kept idle by one
small model) and not where the arithmetic already fills the device (a wide MLP on a CPU core). Which is the
case depends on the shape, the batch size, the device and how busy it is, so it is measured, not guessed.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from objectives._fused import FusedTraining
from objectives._tasks import loss_function
from objectives._train import Normalizer, make_optimizer, train_step
from objectives._train_config import TrainConfig
from objectives.data import Splits

LADDER = (1, 2, 4, 8, 16, 32)
GAIN = 1.15  # a group must train this much faster than its members one by one, or they train alone


def samples_per_second(model: nn.Module, config: TrainConfig, splits: Splits, k: int, seconds: float) -> float:
    """Training samples a second of ``k`` copies of ``model`` with ``config`` trained as one (1: alone, as
    `train_epochs` trains it), over at least ``seconds`` after two warm-up steps. ``model`` is not changed."""
    n, bs = splits.train_x.shape[0], min(config.batch_size, splits.train_x.shape[0])
    rows = torch.Generator().manual_seed(0)
    device = splits.train_x.device
    if k == 1:
        step = _alone(copy.deepcopy(model), config, splits)
    else:
        models = [copy.deepcopy(model) for _ in range(k)]
        generators = [torch.Generator(device).manual_seed(i) for i in range(k)]
        step = FusedTraining(models, [config] * k, list(range(k)), generators, splits).step
    steps, started = -2, 0.0
    while steps < 5 or time.perf_counter() - started < seconds:
        if steps == 0:
            _sync(device)
            started = time.perf_counter()
        loss = step(torch.randint(n, (k, bs), generator=rows).to(device))
        steps += 1
    float(loss.detach().sum())  # waits for the device
    return k * steps * bs / (time.perf_counter() - started)


def best_size(model: nn.Module, config: TrainConfig, splits: Splits, most: int, seconds: float = 0.1) -> int:
    """The K of `LADDER` (at most ``most``) with the most samples a second, if it beats one by one by `GAIN`, and
    again when both are measured once more; the ladder stops climbing once a step of it falls behind the best so
    far."""
    alone = best = samples_per_second(model, config, splits, 1, seconds)
    chosen = 1
    for k in (k for k in LADDER[1:] if k <= most):
        rate = samples_per_second(model, config, splits, k, seconds)
        if rate > best:
            best, chosen = rate, k
        elif rate < 0.95 * best:
            break
    # One by one again, now that caches and allocator are as warm as they were for the groups: a first
    # measurement alone runs cold, and would make any group look faster than it is.
    alone = max(alone, samples_per_second(model, config, splits, 1, seconds))
    if chosen == 1 or best < GAIN * alone:
        return 1
    # The group once more, and alone once more: a measurement of a few milliseconds can be lucky (the machine's
    # other work landing on the steps alone), and a group chosen by luck slows every trial of its shape and
    # takes the run's other workers' trials (the 784-512-512-10 MLP fused by luck: its study 0.8x as fast).
    again = samples_per_second(model, config, splits, chosen, seconds)
    alone = max(alone, samples_per_second(model, config, splits, 1, seconds))
    return chosen if again >= GAIN * alone else 1


def _alone(model: nn.Module, config: TrainConfig, splits: Splits):
    """A step of ``model`` alone, as `train_epochs` takes one."""
    normalize = Normalizer(splits.mean, splits.std, splits.input_shape)
    loss_fn = loss_function("regression" if splits.task == "regression" else config.loss)
    optimizer = make_optimizer(model.parameters(), config)
    return lambda idx: train_step(model, optimizer, loss_fn, normalize, splits, idx[0])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
