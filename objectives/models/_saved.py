"""Saving a trained model and loading it back: a state_dict, and a JSON file beside it.

The JSON holds what rebuilds the network (its configuration, input and output sizes),
the figures of its training and, for a table, the preprocessing; the weights are loaded
with ``weights_only=True``, so a model file cannot run code.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from objectives._errors import ObjectiveError
from objectives.models._mlp import ModelConfig, build_mlp


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
