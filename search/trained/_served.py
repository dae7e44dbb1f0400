"""`search train --mlflow`: the retrained network as an MLflow PyTorch model that `mlflow models serve` serves.

The logged model takes what a user has, not what the training loop fed the network: images as pixel values
(0-255, one row a flattened image), a table's rows as `search predict` encodes them (its numeric columns
standardised, its text columns one-hot, in the order the model's .json names). It answers each class's
probability (classification) or the number in the target's own units (regression). MLflow pickles a PyTorch
model (its own format, read by its own tools); the model file `search train` saves beside it stays a state_dict.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from objectives import Normalizer


class Served(nn.Module):
    """The network with its input scaling before it and its answer's scaling after it."""

    def __init__(
        self,
        network: nn.Module,
        pixels: tuple[float, float] | None,
        shape: tuple[int, ...],
        task: str,
        target: tuple[float, float],
    ):
        super().__init__()
        self.network = network
        # The training loop's own pixel scaling (its Normalizer scales uint8 rows only; served rows arrive as floats).
        scaling = Normalizer(*pixels) if pixels is not None else None
        self.shift = None if scaling is None else scaling.shift
        self.scale = None if scaling is None else scaling.scale
        self.shape = tuple(shape)
        self.task = task
        self.target_mean, self.target_std = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.shift is not None:
            x = (x - self.shift) * self.scale
        out = self.network(x.view(-1, *self.shape) if len(self.shape) > 1 else x)
        if self.task == "regression":
            return out.reshape(-1) * self.target_std + self.target_mean
        return torch.softmax(out, dim=1)


def log_trained(uri: str, experiment: str, trained: Any, config_file: str) -> str:
    """The retrained network as an MLflow PyTorch model in a run of ``experiment`` (its params, test figures,
    and an input signature); the run's id."""
    from search.tracking._mlflow import client, experiment_id

    mlflow = client(uri)
    run = mlflow.create_run(
        experiment_id(mlflow, experiment), run_name=f"search train {config_file}", tags={"search.config": config_file}
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    from mlflow.entities import Metric, Param

    record = trained.record
    metrics = [
        Metric(k, float(v), now, 0) for k, v in trained.figures.items() if k.startswith("test_") and v is not None
    ]
    params = [Param(k, str(v)) for k, v in record["params"].items()]
    mlflow.log_batch(run_id, metrics=metrics, params=params)
    _log_model(uri, run_id, trained)
    mlflow.set_terminated(run_id, "FINISHED")
    return run_id


def _log_model(uri: str, run_id: str, trained: Any) -> None:
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    result, record = trained.result, trained.record
    preprocessing = record.get("preprocessing") or {}
    target = (preprocessing.get("target_mean", 0.0), preprocessing.get("target_std", 1.0))
    network = trained.network.to("cpu").eval()
    served = Served(network, result.pixels, result.input_shape, record["task"], target).eval()
    width = int(np.prod(result.input_shape))
    example = np.zeros((2, width), dtype=np.float32)
    with torch.no_grad():
        answer = served(torch.from_numpy(example)).numpy()
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        mlflow.pytorch.log_model(
            served, name="model", signature=infer_signature(example, answer), input_example=example
        )
