"""Objectives: data, models, tasks, training loop, search space and the Optuna objective.

Subpackages: `data` (one module per data source, and the splits), `models` (the MLP,
saving and loading). Modules: `_space` (the only one that calls ``trial.suggest_*``),
`_objective` (the Optuna objective), `_train` (the loop), `_tasks` (losses), `_final`
(retraining a chosen configuration). Only `_space` and `_objective` import Optuna.

Names are imported on first use (PEP 562): a command that only reads a stored study
needs the configurations, not torch, and starts in a fraction of the time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "objectives.data": (
        "DATASETS",
        "DOWNLOAD_TIMEOUT",
        "DataConfig",
        "Splits",
        "load_splits",
        "load_train_test",
        "read_idx",
        "write_idx",
        "write_torchvision_root",
    ),
    "objectives._checkpoints": ("Checkpoints", "Resume"),
    "objectives._devices": ("DEVICES", "resolve_device"),
    "objectives._errors": ("DataError", "Interrupted", "ModelError", "ObjectiveError", "SpaceError"),
    "objectives._final": ("FinalResult", "train_final"),
    "objectives.models": (
        "ACTIVATIONS",
        "MLP",
        "ModelConfig",
        "ModelSpec",
        "build_mlp",
        "build_model",
        "count_parameters",
        "load_model",
        "metrics_path",
        "mlp",
        "save_model",
    ),
    "objectives._objective": ("Objective",),
    "objectives._params": ("Choice", "Fixed", "Float", "Int"),
    "objectives._space": ("SearchSpace", "configs_from_values"),
    "objectives._tasks": (
        "COSTS",
        "DEFAULT_METRIC",
        "METRICS",
        "TASKS",
        "Metric",
        "loss_function",
        "metric_named",
    ),
    "objectives._train": ("EpochResult", "Normalizer", "evaluate", "train_epochs"),
    "objectives._train_config": ("LOSSES", "OPTIMIZERS", "TrainConfig"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    try:
        module = _MODULE_OF[name]
    except KeyError:
        raise AttributeError(f"module 'objectives' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from objectives._checkpoints import Checkpoints, Resume
    from objectives._devices import DEVICES, resolve_device
    from objectives._errors import DataError, Interrupted, ModelError, ObjectiveError, SpaceError
    from objectives._final import FinalResult, train_final
    from objectives._objective import Objective
    from objectives._params import Choice, Fixed, Float, Int
    from objectives._space import SearchSpace, configs_from_values
    from objectives._tasks import (
        COSTS,
        DEFAULT_METRIC,
        METRICS,
        TASKS,
        Metric,
        loss_function,
        metric_named,
    )
    from objectives._train import EpochResult, Normalizer, evaluate, train_epochs
    from objectives._train_config import LOSSES, OPTIMIZERS, TrainConfig
    from objectives.data import (
        DATASETS,
        DOWNLOAD_TIMEOUT,
        DataConfig,
        Splits,
        load_splits,
        load_train_test,
        read_idx,
        write_idx,
        write_torchvision_root,
    )
    from objectives.models import (
        ACTIVATIONS,
        MLP,
        ModelConfig,
        ModelSpec,
        build_mlp,
        build_model,
        count_parameters,
        load_model,
        metrics_path,
        mlp,
        save_model,
    )
