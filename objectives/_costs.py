"""What a trained model costs, as the further objectives of a multi-objective study.

``params``: the model's parameter count (exact). ``latency``: its inference time per row on
the study's device, in microseconds: the median of a few timed passes over one batch of
validation rows, after a warm-up pass, so a first call's allocations and a stray context
switch do not decide it. It is a measurement, so it varies a little between trials and
machines (a busy core slows it); compare latencies within one study.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from objectives._train import Normalizer
from objectives.data import Splits
from objectives.models import count_parameters

LATENCY_ROWS = 256  # rows in the timed batch: a serving batch, small enough to time quickly
LATENCY_REPEATS = 5


def measure_costs(model: nn.Module, splits: Splits, names: tuple[str, ...]) -> dict[str, float | int]:
    """Each cost in ``names`` (`objectives.COSTS`) of ``model``, as the study minimises it."""
    measured: dict[str, float | int] = {}
    for name in names:
        if name == "params":
            measured[name] = count_parameters(model)
        elif name == "latency":
            measured[name] = latency_us(model, splits)
        else:
            raise ValueError(f"unknown cost {name!r}")  # RunConfig validates first
    return measured


@torch.no_grad()
def latency_us(model: nn.Module, splits: Splits) -> float:
    """Microseconds a row for one forward pass over a batch of validation rows (the median of several)."""
    rows = splits.val_x if splits.val_x.shape[0] else splits.train_x
    normalize = Normalizer(splits.mean, splits.std, splits.input_shape)
    batch = normalize(rows[:LATENCY_ROWS])
    was_training = model.training
    model.eval()
    cuda = batch.is_cuda
    try:
        model(batch)  # warm-up: allocations, kernel selection
        times = []
        for _ in range(LATENCY_REPEATS):
            if cuda:
                torch.cuda.synchronize(batch.device)
            start = time.perf_counter()
            model(batch)
            if cuda:
                torch.cuda.synchronize(batch.device)
            times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return round(statistics.median(times) / max(1, batch.shape[0]) * 1e6, 3)
