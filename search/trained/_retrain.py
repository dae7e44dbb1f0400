"""Retraining a chosen configuration into a model (`search train`, `Study.train`): no command-line code here."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

from objectives import DataConfig
from search._errors import SearchError
from search.study._config import RunConfig

# Torch threads for a retrain: one, as each trial trained with one (a worker per core); on a busy
# machine more threads wait for the slowest of them (docs/speed.md has the measurement).
RETRAIN_THREADS = 1


@dataclasses.dataclass
class Trained:
    """A configuration retrained on every row but the test rows: the network, its test figures, its record."""

    network: object  # torch nn.Module
    result: object  # objectives.FinalResult
    record: dict

    @property
    def figures(self) -> dict:
        return {k: v for k, v in self.record.items() if k in _FIGURES or k.startswith("test_")}

    def save(self, path: str | Path) -> Path:
        """The weights at ``path`` (a state_dict), what rebuilds them and the figures beside it (NAME.json)."""
        from objectives import save_model

        return save_model(
            self.network,
            path,
            self.record["model_spec"],
            {k: v for k, v in self.record.items() if k != "model_spec"},
            self.result.input_shape,
            self.result.num_outputs,
        )


_FIGURES = (
    "test_value",
    "test_loss",
    "train_loss",
    "epochs",
    "seconds",
    "samples_per_second",
    "train_samples",
    "test_samples",
    "diverged",
    "metric",
    "input_shape",
    "num_outputs",
)


def retrain(
    config,
    config_file: str,
    data_dir: str = DataConfig.data_dir,
    dataset: str | None = None,
    data_file: str | None = None,
    seed: int | None = None,
    device: str = RunConfig.device,
    limit_train: int | None = None,
    on_epoch=None,
    threads: int | None = RETRAIN_THREADS,
) -> Trained:
    """`search train`: the configuration (a `RetrainConfig`) trained on every row but the test rows, tested on those.

    ``threads``: torch's threads for it (None: this process's own setting).
    """
    if threads is not None and threads < 1:
        raise SearchError(f"`threads` is {threads}, but must be >= 1")
    with _torch_threads(threads):
        return _retrain(config, config_file, data_dir, dataset, data_file, seed, device, limit_train, on_epoch)


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """``threads`` torch threads for the block, then the caller's own again (a notebook keeps its setting)."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _retrain(config, config_file, data_dir, dataset, data_file, seed, device, limit_train, on_epoch) -> Trained:
    from objectives import train_final

    seed = config.seed if seed is None else seed
    table = dict(config.table or {})
    if data_file:
        table["data_file"] = data_file
    data = DataConfig(dataset=dataset or config.dataset, data_dir=data_dir, seed=seed, limit_train=limit_train, **table)
    if data.dataset == "table":
        check_hashes(config_file, data, config.hashes or {})
    network, result = train_final(
        config.train, config.model, data, device, seed, on_epoch=on_epoch, metric=config.metric
    )
    figures = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("classes", "preprocessing")}
    figures[f"test_{result.metric}"] = result.test_value  # test_accuracy, test_rmse, ...
    record = {
        **figures,
        "params": dataclasses.asdict(config.train),
        "dataset": data.dataset,
        "seed": seed,
        "config_file": config_file,
        "classes": list(result.classes),
        "preprocessing": result.preprocessing,
        "task": data.task_name,
        "model_spec": config.model,
        **(
            {"target": data.target, "data_file": data.data_file, **(config.hashes or {})}
            if data.dataset == "table"
            else {}
        ),
    }
    return Trained(network, result, record)


def check_hashes(config_file: str, data: DataConfig, hashes: dict[str, str]) -> None:
    """A table's files must be the ones exported: another content would move rows between training and test."""
    from objectives.data import file_hash

    for path, key in ((data.data_file, "sha256"), (data.test_file, "test_sha256")):
        if not path or key not in hashes:
            continue
        try:
            now = file_hash(path)
        except OSError as exc:
            raise SearchError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if now != hashes[key]:
            raise SearchError(
                f"{path} has changed since the export (sha256 {hashes[key][:12]} in {config_file}, {now[:12]} "
                f"now): its test rows may have been trained on; restore the file, or run a new study on it"
            )
