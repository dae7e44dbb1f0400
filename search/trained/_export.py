"""The best configuration as a file (YAML or JSON by suffix), and reading it back for `search train`.

    params: {optimizer: momentum, lr: 0.0123, momentum: 0.91, batch_size: 128, epochs: 12}
    model:  {function: objectives.models:mlp, params: {hidden_units: 512, hidden_layers: 2, activation: relu, dropout: 0.0}}
    data:   {dataset: fashion-mnist, validation_fraction: 0.1, seed: 0, task: classification, metric: accuracy}
    source: {study: fmnist, trial: 42, value: 0.893, metric: accuracy, picked_by: confirmation, storage: sqlite:///...}

``params`` is all `search train` needs; ``model`` defaults to the seed's MLP (a file of an
earlier version, ``model: {hidden: [...], activation: ...}``, still reads), the rest is
provenance.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from objectives import DATASETS, MLP, ModelConfig, ModelSpec, ObjectiveError, TrainConfig
from objectives.models import as_spec
from search._errors import SearchError
from search._files import write_text
from search.storages import redact
from search.study._continue import feature_columns
from search.study._pick import pick_of
from search.study._record import STUDY_ATTR

_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_TOP_KEYS = ("params", "model", "data", "source")
# Parameters that mean nothing under the chosen optimizer; left out so the file reads true.
_ONLY_UNDER = {"momentum": "momentum", "beta1": "adam", "beta2": "adam"}


@dataclass(frozen=True)
class RetrainConfig:
    """What `search train` trains: a training configuration, a model function and its parameters, a data set."""

    train: TrainConfig
    model: ModelSpec
    dataset: str = "fashion-mnist"
    seed: int = 0
    table: dict[str, Any] | None = None  # a table study's file, target and test split (DataConfig's names)
    hashes: dict[str, str] | None = None  # the table's files' sha256 at export: `search train` checks them
    metric: str = "accuracy"


def best_config(study: optuna.Study, storage_url: str, pick: str | None = None) -> dict[str, Any]:
    """The configuration to use (the confirmed leader, else the best search value; among the trials that
    meet ``pick``, when given) as an exportable file."""
    best = pick_of(study, pick)
    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == best.number)
    stored = trial.user_attrs.get("config")
    if not stored:
        raise SearchError(f"trial {trial.number} of study {study.study_name!r} has no recorded configuration")
    train_keys = [f.name for f in dataclasses.fields(TrainConfig)]
    params = {
        k: stored[k]
        for k in train_keys
        if k in stored and _ONLY_UNDER.get(k, stored["optimizer"]) == stored["optimizer"]
    }
    made = study.user_attrs.get(STUDY_ATTR, {})
    return {
        "params": params,
        "model": _model_section(stored),
        "data": {
            **{k: made.get(k) for k in ("dataset", "validation_fraction", "seed")},
            "task": made.get("task", "classification"),
            "metric": best.metric,
            **_table_data(made.get("table")),
        },
        "source": {
            "study": study.study_name,
            "trial": trial.number,
            "value": best.search_value,
            "metric": best.metric,
            "picked_by": best.picked_by,
            **({"constraint": best.constraint} if best.constraint else {}),
            **({"confirmed": rounded_copy(best.confirmed.to_dict())} if best.confirmed else {}),
            "storage": redact(storage_url),
        },
    }


def _model_section(stored: dict[str, Any]) -> dict[str, Any]:
    """The model function and its parameters; a trial of an earlier version recorded the MLP's shape."""
    if isinstance(stored.get("model"), dict):
        return {"function": _anywhere(stored["model"]["function"]), "params": dict(stored["model"].get("params") or {})}
    return {
        "function": MLP,
        "params": {
            "hidden": list(stored.get("hidden", ModelConfig.hidden)),
            "activation": stored.get("activation", "relu"),
        },
    }


def _anywhere(ref: str) -> str:
    """A model function in a file (file.py:build) by its file's absolute path, so `search train` finds it from
    any folder; a module's function (pkg.models:build) as it is."""
    module, _, name = str(ref).rpartition(":")
    if module.endswith(".py") and Path(module).is_file():
        return f"{Path(module).resolve()}:{name}"
    return ref


def rounded_copy(value: Any) -> Any:
    """Plain data for YAML (tuples as lists)."""
    return json.loads(json.dumps(value, default=str))


def table_options(data: dict[str, Any], task: str | None = None, where: str = "the configuration") -> dict[str, Any]:
    """`DataConfig`'s table fields from an export's data section or a study's table record (the same keys)."""
    if not data.get("file") or not data.get("target") and not str(data.get("file")).endswith(".npz"):
        raise SearchError(f"{where}: a table data set needs data.file and data.target")
    return {
        "data_file": str(data["file"]),
        "target": data.get("target"),
        "test_fraction": float(data.get("test_fraction") or 0.2),
        "test_file": data.get("test_file"),
        "drop": tuple(data.get("drop") or ()),
        "fill_missing": data.get("fill_missing"),
        "drop_missing_target": bool(data.get("drop_missing_target")),
        "bins": int(data.get("bins") or 0),  # made before bins: none
        "columns": feature_columns(data.get("columns")),
        "task": task or data.get("task") or "classification",
    }


def _table_data(table: dict[str, Any] | None) -> dict[str, Any]:
    """A table study's data description: where the rows come from and how they are encoded."""
    if not table:
        return {}
    keys = ("file", "sha256", "target", "test_fraction", "test_file", "test_sha256", "drop", "fill_missing", "columns")
    return {
        **{k: table.get(k) for k in keys},
        **({"drop_missing_target": True} if table.get("drop_missing_target") else {}),
        "bins": int(table.get("bins") or 0),
        "encoding": "numeric gaps take the training rows' median, then numeric columns are standardised with the "
        "training rows' mean and std (and given as `bins` quantile bins of the training rows); text columns "
        "one-hot, categories from the training rows (an unseen one is encoded as none)",
    }


def _model_spec(model: dict[str, Any]) -> ModelSpec:
    """The model section as a model function and its parameters (an earlier version's MLP shape too)."""
    if "function" in model:
        return ModelSpec(str(model["function"]), dict(model.get("params") or {}))
    return as_spec(ModelConfig(**{k: v for k, v in model.items() if k in ("hidden", "activation")}))


def _format(path: Path) -> str:
    try:
        return _SUFFIXES[path.suffix.lower()]
    except KeyError:
        raise SearchError(f"{path} must end in .yaml, .yml or .json") from None


def write_config(config: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    kind = _format(path)
    text = (
        json.dumps(config, indent=2) + "\n"
        if kind == "json"
        else yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
    )
    return write_text(path, text)


def read_config(path: str | Path) -> RetrainConfig:
    """A configuration file as written by `search export`, or by hand with only ``params``."""
    path = Path(path)
    _format(path)
    try:
        document = yaml.safe_load(path.read_text())  # JSON is YAML too
    except OSError as exc:
        raise SearchError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError:
        raise SearchError(f"{path} is not valid YAML or JSON") from None
    return parse_config(document, path)


def parse_config(document: Any, path: str | Path) -> RetrainConfig:
    """An exported configuration (a mapping) as a `RetrainConfig`; ``path`` names it in messages."""
    if not isinstance(document, dict) or not isinstance(document.get("params"), dict):
        raise SearchError(f"{path} must hold a 'params' mapping (see `search export`)")
    unknown = sorted(set(document) - set(_TOP_KEYS))
    if unknown:
        raise SearchError(f"{path}: unknown section {unknown[0]!r} (known: {', '.join(_TOP_KEYS)})")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(document["params"]) - known)
    if bad:
        raise SearchError(f"{path}: unknown parameter {bad[0]!r} in params (known: {', '.join(sorted(known))})")
    model = document.get("model") or {}
    data = document.get("data") or {}
    if not isinstance(model, dict) or not isinstance(data, dict):
        raise SearchError(f"{path}: model and data must be mappings")
    if "function" in model and not isinstance(model.get("params") or {}, dict):
        raise SearchError(f"{path}: model.params must be a mapping of the model function's parameters")
    dataset = data.get("dataset") or "fashion-mnist"
    if dataset not in DATASETS:
        raise SearchError(f"{path}: dataset is {dataset!r}, but must be one of {', '.join(DATASETS)}")
    try:
        return RetrainConfig(
            train=TrainConfig(**document["params"]),
            model=_model_spec(model),
            dataset=dataset,
            seed=int(data.get("seed") or 0),
            table=table_options(data, where=str(path)) if dataset == "table" else None,
            hashes={k: data[k] for k in ("sha256", "test_sha256") if data.get(k)} if dataset == "table" else None,
            metric=str(data.get("metric") or "accuracy"),
        )
    except (ObjectiveError, TypeError) as exc:
        raise SearchError(f"{path}: {exc}") from exc
