"""The Python API: a study from a notebook or a script, by the same code path as `search run`.

    import search

    study = search.tune(frame, target="churned", model=build, space={"hidden": [64, 256]}, n_trials=20)
    print(study.pick.quote)              # the confirmed pick's figure on fresh resamples, with its interval
    model = study.train()                # retrained on every row but the test rows; model.test has its figures
    predictions = model.predict(new_rows)  # a DataFrame: the label and each class's probability, or the number

A DataFrame (or arrays) is written once to ``studies/data/`` under its content's hash, so
the study records a file like any other: `search best`, `export`, `train`, `predict` and
the dashboard work on it from the command line too. Nothing is printed unless
``verbose=True`` (then the trial lines and Optuna's own log).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from objectives import DataConfig
from search._errors import SearchError
from search.confirmation._config import ConfirmConfig
from search.study._config import RunConfig

if TYPE_CHECKING:
    from search.study._pick import Pick
    from search.study._summary import RunSummary

DATA_DIR = Path("studies") / "data"


# The fields `tune` takes under another name: an error names them as tune's parameters.
_API_NAME = {"data_file": "data", "test_file": "test_data", "yardstick": "baseline", "function": "model"}
_API_NAMES = re.compile(r"`(" + "|".join(_API_NAME) + r")`")


@contextlib.contextmanager
def _named_as_tune_names():
    """The core names an option by its field, in backticks (`data_file`); say it as `tune`'s parameter."""
    try:
        yield
    except SearchError as exc:
        exc.args = (_API_NAMES.sub(lambda m: f"`{_API_NAME[m.group(1)]}`", str(exc)),)
        raise


def tune(
    data: Any = None,
    target: str | None = None,
    *,
    study: str = "study",
    storage: str | None = None,
    model: Callable[..., Any] | str | None = None,
    space: Mapping[str, Any] | str | None = None,
    task: str | None = None,
    metric: str | None = None,
    costs: tuple[str, ...] = RunConfig.costs,
    pick: str | None = None,
    n_trials: int | None = RunConfig.n_trials,
    timeout: float | None = None,
    max_epochs: int | None = None,
    confirm: bool | int | str = True,
    dataset: str | None = None,
    data_dir: str = DataConfig.data_dir,
    seed: int = RunConfig.seed,
    device: str = RunConfig.device,
    test_data: Any = None,
    drop: tuple[str, ...] = (),
    fill_missing: str | None = None,
    drop_missing_target: bool = False,
    bins: int = DataConfig.bins,
    baseline: str = "hgb",
    verbose: bool = False,
    **options: Any,
) -> Study:
    """Run (or continue) a study and confirm its leaders: `search run` from Python.

    ``data``: a pandas DataFrame (with the ``target`` column), arrays ``(x, y)``, or a .csv,
    .parquet or .npz file; or ``dataset`` names a built-in set ("fashion-mnist", "synthetic"; the image sets
    are read from ``data_dir``, a torchvision root).
    ``model``: a model function ``f(input_shape, num_outputs, **params) -> nn.Module`` (or its
    "module:function" name; default: the built-in MLP), whose ``params`` the ``space`` samples
    (a mapping as in a space file, or a file). ``confirm``: True (the default), False, K, or "K,R".
    ``costs`` ("params", "latency"): a multi-objective study, minimising them beside the metric; ``pick``
    ("params<=100000"): the pick, confirmed, is the best of the trials that meet it.
    Other ``options`` are `RunConfig` fields (``sampler``, ``pruner``, ``jobs``, ``heartbeat``...).
    """
    from search.study._logging import quiet_optuna

    with _named_as_tune_names():
        if not verbose:
            quiet_optuna()
        table = {
            "drop": tuple(drop),
            "fill_missing": fill_missing,
            "drop_missing_target": drop_missing_target,
            "bins": bins,
        }
        data_config = DataConfig(
            **_data_options(data, target, dataset, test_data, table, task, seed), data_dir=data_dir
        )
        config = RunConfig(
            study=study,
            storage=storage,
            n_trials=n_trials,
            timeout=timeout,
            seed=seed,
            device=device,
            max_epochs=max_epochs,
            space=_space(space),
            model=_model_name(model),
            metric=metric,
            costs=tuple(costs),
            yardstick=baseline,
            data=data_config,
            confirm=dataclasses.replace(_confirm(confirm), pick=pick),
            quiet=not verbose,
            **options,
        )
        from search.workers._processes import planned, use_threads

        config = planned(config)
        use_threads(config)
        summary = _run(config, verbose)
        return Study(config, summary)


def _data_options(data, target, dataset, test_data, table: dict[str, Any], task, seed) -> dict[str, Any]:
    options: dict[str, Any] = {"seed": seed, "task": task, **table}
    if dataset is not None:
        if data is not None:
            raise SearchError("give data or dataset, not both")
        return {**options, "dataset": dataset}
    if data is None:
        raise SearchError("tune() needs data (a DataFrame, arrays (x, y) or a file) or dataset")
    return {
        **options,
        "data_file": as_file(data),
        "target": target,
        "test_file": as_file(test_data) if test_data is not None else None,
    }


def as_file(data: Any) -> str:
    """A file the study can record: a path as it is; a DataFrame or arrays written once under their content's hash."""
    if isinstance(data, (str, Path)):
        return str(data)
    import numpy as np

    if isinstance(data, tuple) and len(data) == 2:
        buffer = io.BytesIO()
        np.savez(buffer, x=np.asarray(data[0]), y=np.asarray(data[1]))
        content, suffix = buffer.getvalue(), ".npz"
    elif hasattr(data, "to_csv"):
        content, suffix = data.to_csv(index=False).encode(), ".csv"
    else:
        raise SearchError(f"data is a {type(data).__name__}; give a pandas DataFrame, arrays (x, y) or a file's path")
    path = DATA_DIR / f"{hashlib.sha256(content).hexdigest()[:16]}{suffix}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return str(path)


def _model_name(model: Callable[..., Any] | str | None) -> str:
    if model is None:
        return RunConfig.model
    if isinstance(model, str):
        return model
    name = getattr(model, "__qualname__", "")
    if "<" in name:  # a lambda or a function defined inside another: not reachable by its name
        raise SearchError(
            f"model {name or model!r} has no importable name; define it at the top of a module or notebook"
        )
    return f"{model.__module__}:{name}"


def _space(space: Mapping[str, Any] | str | None):
    return dict(space) if isinstance(space, Mapping) else space


def _confirm(confirm: bool | int | str) -> ConfirmConfig:
    if confirm is True:
        return ConfirmConfig()
    if confirm is False or confirm == 0:
        return ConfirmConfig(0, None, True)
    return ConfirmConfig.parse(str(confirm))


def _run(config: RunConfig, verbose: bool):
    """`search run`'s two phases (the one run path), quietly unless asked."""
    from search.study._progress import Reporter
    from search.study._tune import search_and_confirm

    class Quiet(Reporter):
        def nothing_to_confirm(self, reason: str) -> None:
            logging.getLogger("search").warning("nothing to confirm: %s", reason)

    if verbose:
        from search.study._progress import LiveReporter

        class Verbose(LiveReporter, Quiet):
            nothing_to_confirm = Quiet.nothing_to_confirm

        return search_and_confirm(config, Verbose(config))
    return search_and_confirm(config, Quiet())


@dataclass
class Study:
    """A study run from Python: its summary, the pick, and the way to a trained model."""

    config: RunConfig
    summary: RunSummary

    @property
    def name(self) -> str:
        return self.config.study

    def _optuna(self):
        from search.study._inspect import open_existing

        return open_existing(self.config.storage, self.config.study)

    @property
    def optuna(self):
        """The Optuna study (trials, plots: ``optuna.visualization.plot_*(study.optuna)``)."""
        return self._optuna()[2]

    @property
    def pick(self) -> Pick:
        """The configuration to use: ``number``, ``params``, ``picked_by``, and ``quote`` (mean, low, high, n) once confirmed."""
        from search.study._pick import pick_of

        return pick_of(self.optuna, self.config.confirm.pick)

    def report(self) -> str:
        """The run's summary, as `search run` prints it."""
        from search.study._format import format_summary

        return format_summary(self.summary, f"search.tune(study={self.name!r}, ...)")

    def trials(self):
        """Every trial as a pandas DataFrame (Optuna's ``trials_dataframe``)."""
        return self.optuna.trials_dataframe()

    def train(self, seed: int | None = None, device: str = "auto") -> TrainedModel:
        """The pick retrained on every row but the test rows (as `search train` does); its test figures in ``.test``."""
        from search.trained._export import best_config, parse_config
        from search.trained._retrain import retrain

        url, _, study = self._optuna()
        config = parse_config(best_config(study, url, self.config.confirm.pick), f"study {self.name}")
        return TrainedModel(retrain(config, f"study {self.name}", self.config.data.data_dir, seed=seed, device=device))


@dataclass
class TrainedModel:
    """A trained network with the preprocessing it was trained with."""

    trained: Any = field(repr=False)

    @property
    def network(self):
        return self.trained.network

    @property
    def test(self) -> dict[str, Any]:
        """The figures on the test rows: ``test_value`` of ``metric``, ``test_loss``, sizes, time."""
        return self.trained.figures

    def predict(self, rows: Any, accept_unseen: bool = False):
        """Predictions for a DataFrame (the model's columns; others are ignored): a DataFrame, one row per row."""
        from search.trained._predict import apply, encoder_of, features

        record = {**self.trained.record, "input_shape": list(self.trained.result.input_shape)}
        encoder = encoder_of(record, "this model")
        numeric, text = features(rows.copy(), encoder, "rows")
        return apply(self.network.eval(), record, encoder, numeric, text, "rows", accept_unseen)[0]

    def save(self, path: str | Path) -> Path:
        """Save it as `search train --save-model` does (NAME.pt and NAME.json); `search predict` takes it."""
        return self.trained.save(path)


def load(path: str | Path, model: Callable[..., Any] | str | None = None) -> TrainedModel:
    """A model saved by `search train` or `TrainedModel.save`, ready to predict.

    ``model``: the model function it was trained with, for a model made by one (a model file runs no
    code by itself; the function must match the recorded name and source).
    """
    from objectives import load_model as load
    from search.trained._retrain import Trained

    with _named_as_tune_names():  # the loader names the function `function`, as `search predict --function` does
        network, record = load(path, None if model is None else _model_name(model))
    result = _Result(tuple(record.get("input_shape") or ()), record.get("num_outputs"))
    return TrainedModel(Trained(network, result, record))


@dataclass(frozen=True)
class _Result:
    input_shape: tuple[int, ...]
    num_outputs: int | None
