"""Retraining a chosen configuration on the whole training split, and saving the result.

Weights are saved as a state_dict; a JSON file beside them holds the configuration and
the test figures, so the model can be rebuilt and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from objectives._data import DataConfig, load_train_test
from objectives._errors import ObjectiveError
from objectives._model import ModelConfig, build_mlp
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
    preprocessing: dict | None = None  # a table's encoder (objectives._table.TableEncoder), saved with the model


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


def metrics_path(model_path: str | Path) -> Path:
    return Path(model_path).with_suffix(".json")


def save_model(model: nn.Module, path: str | Path, model_config: ModelConfig, extra: dict[str, Any]) -> Path:
    """Save the state_dict at ``path`` and the config and figures at ``path`` with .json."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
        record = {"model": dataclasses.asdict(model_config), "in_features": model[0].in_features,
                  "num_classes": model[-1].out_features, **extra}
        metrics_path(path).write_text(json.dumps(record, indent=2, default=str) + "\n")
    except OSError as exc:
        raise ObjectiveError(f"cannot save the model to {path}: {exc.strerror or exc}") from exc
    return metrics_path(path)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """A model saved by `save_model`, rebuilt from its JSON and loaded with ``weights_only=True``."""
    path = Path(path)
    try:
        record = json.loads(metrics_path(path).read_text())
        config = ModelConfig(hidden=tuple(record["model"]["hidden"]), activation=record["model"]["activation"])
        model = build_mlp(config, record["in_features"], record["num_classes"])
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as exc:
        raise ObjectiveError(f"cannot load a model from {path}: not a state_dict saved by `search train`") from exc
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise ObjectiveError(f"cannot load a model from {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from exc
    return model.eval(), record
