"""Retraining a chosen configuration on the whole training split, scored on the test split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from objectives.data import DataConfig, load_train_test
from objectives.models import ModelConfig, build_mlp
from objectives._devices import resolve_device
from objectives._train import EpochResult, train_epochs
from objectives._train_config import TrainConfig


@dataclass(frozen=True)
class FinalResult:
    """The figures a user quotes: loss and accuracy on the official test split."""

    test_accuracy: float
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


def train_final(
    train: TrainConfig, model_config: ModelConfig, data: DataConfig, device: str = "auto", seed: int = 0,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> tuple[nn.Module, FinalResult]:
    """Train on the whole training split; ``on_epoch`` sees each epoch's figures (progress)."""
    splits = load_train_test(data).to(resolve_device(device))
    torch.manual_seed(seed)
    model = build_mlp(model_config, splits.num_features, splits.num_classes).to(splits.train_x.device)
    # load_train_test scores every epoch on the test split: the last epoch's figures are the result.
    results = []
    for result in train_epochs(model, splits, train, seed):
        results.append(result)
        if on_epoch is not None:
            on_epoch(result)
    seconds = sum(r.seconds for r in results)
    return model, FinalResult(
        test_accuracy=results[-1].val_accuracy,
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
    )
