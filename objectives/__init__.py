"""Objectives: data, model, training loop, search space and the Optuna objective."""

from objectives._data import DATASETS, DataConfig, Splits, load_splits, load_train_test
from objectives._errors import DataError, ObjectiveError, SpaceError
from objectives._final import FinalResult, load_model, metrics_path, save_model, train_final
from objectives._idx import read_idx, write_idx, write_torchvision_root
from objectives._model import ACTIVATIONS, ModelConfig, build_mlp, count_parameters
from objectives._objective import DEVICES, Objective, resolve_device
from objectives._space import Choice, Fixed, Float, Int, SearchSpace, configs_from_values
from objectives._train import LOSSES, OPTIMIZERS, EpochResult, Normalizer, TrainConfig, evaluate, train_epochs

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEVICES",
    "LOSSES",
    "OPTIMIZERS",
    "Choice",
    "DataConfig",
    "DataError",
    "EpochResult",
    "FinalResult",
    "Fixed",
    "Float",
    "Int",
    "ModelConfig",
    "Normalizer",
    "Objective",
    "ObjectiveError",
    "SearchSpace",
    "SpaceError",
    "Splits",
    "TrainConfig",
    "build_mlp",
    "configs_from_values",
    "count_parameters",
    "evaluate",
    "load_model",
    "load_splits",
    "load_train_test",
    "metrics_path",
    "read_idx",
    "resolve_device",
    "save_model",
    "train_final",
    "train_epochs",
    "write_idx",
    "write_torchvision_root",
]
