"""Retraining a chosen configuration on the whole training split, scored on the test split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from objectives._devices import resolve_device
from objectives._train import EpochResult, train_epochs
from objectives._train_config import TrainConfig
from objectives.data import DataConfig, load_train_test
from objectives.models import ModelConfig, ModelSpec, as_spec, build_model


@dataclass(frozen=True)
class FinalResult:
    """The figures a user quotes: loss and the metric (``metric``) on the test split."""

    test_value: float
    test_loss: float
    train_loss: float
    epochs: int
    seconds: float
    samples_per_second: float
    train_samples: int
    test_samples: int
    diverged: str | None = None
    classes: tuple[str, ...] = ()  # the label names, in the model's output order
    preprocessing: dict | None = None  # a table's encoder (objectives.data._encoder.TableEncoder), saved with the model
    metric: str = "accuracy"
    input_shape: tuple[int, ...] = ()  # one row's shape, as the model takes it
    num_outputs: int = 0
    pixels: tuple[float, float] | None = None  # images: the training pixels' mean and std (a table's: the encoder)

    @property
    def test_accuracy(self) -> float:
        """The test figure (accuracy unless another metric was asked for)."""
        return self.test_value


def train_final(
    train: TrainConfig,
    model: ModelSpec | ModelConfig,
    data: DataConfig,
    device: str = "auto",
    seed: int = 0,
    on_epoch: Callable[[EpochResult], None] | None = None,
    metric: str = "accuracy",
) -> tuple[nn.Module, FinalResult]:
    """Train on every row but the test rows, scored on the test rows; ``on_epoch`` sees each epoch (progress)."""
    splits = load_train_test(data).to(resolve_device(device))
    torch.manual_seed(seed)
    network = build_model(as_spec(model), splits.input_shape, splits.num_outputs).to(splits.train_x.device)
    # The test rows are the validation split here: scored once, after the last epoch (or the one that diverged).
    results = []
    for result in train_epochs(network, splits, train, seed, metric=metric, score_every=False):
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
    seconds = sum(r.seconds for r in results)
    return network, FinalResult(
        test_value=results[-1].value,
        test_loss=results[-1].val_loss,
        train_loss=results[-1].train_loss,
        epochs=results[-1].epoch,
        seconds=round(seconds, 3),
        samples_per_second=round(sum(r.samples for r in results) / max(seconds, 1e-9), 1),
        train_samples=splits.train_x.shape[0],
        test_samples=splits.test_x.shape[0],
        diverged=results[-1].diverged,
        classes=tuple(splits.classes),
        preprocessing=splits.encoder,
        metric=metric,
        input_shape=tuple(splits.input_shape),
        num_outputs=splits.num_outputs,
        pixels=None if splits.encoder is not None else (float(splits.mean), float(splits.std)),
    )
