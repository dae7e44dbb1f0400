"""`search export --model`: the pick's own weights from its search, kept in the artifact store, as a model file.

Beside `search train` (the configuration retrained on every row but the test rows): this is the network the
search trained and validated, on the search's training rows, handed over without training again. The file is
what `search train --save-model` writes (a state_dict and its .json), scored once on the test rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from search._errors import SearchError
from search.study._config import RunConfig
from search.study._continue import continue_config
from search.study._record import STUDY_ATTR


def export_searched_model(study: optuna.Study, url: str, number: int, path: str, artifacts: str | None) -> Path:
    """Trial ``number``'s kept weights as a model file at ``path`` (its .json beside it); the .json's path."""
    from objectives import ModelSpec, Normalizer, build_model, evaluate, load_splits, save_model

    trial = next(t for t in study.get_trials(deepcopy=False) if t.number == number)
    state = _weights(trial, url, artifacts)
    config = continue_config(
        RunConfig(study=study.study_name, storage=url, explicit=frozenset()),
        study.study_name,
        study.user_attrs[STUDY_ATTR],
    )
    splits = load_splits(config.data)
    stored = trial.user_attrs["config"]["model"]  # as the trial built it: {"function": ..., "params": {...}}
    spec = ModelSpec(stored["function"], dict(stored.get("params") or {}))
    network = build_model(spec, splits.input_shape, splits.num_outputs)
    network.load_state_dict(state)
    metric = config.metric_spec.name
    loss = trial.user_attrs["config"].get("loss", "cross_entropy")  # evaluate takes a regression's loss itself
    normalize = Normalizer(splits.mean, splits.std, splits.input_shape)
    test_loss, test_value = evaluate(
        network, splits.test_x, splits.test_y, normalize, loss, metric=metric, splits=splits
    )
    record = {
        "test_value": test_value,
        f"test_{metric}": test_value,
        "test_loss": test_loss,
        "metric": metric,
        "test_samples": int(splits.test_x.shape[0]),
        "train_samples": int(splits.train_x.shape[0]),
        "params": {k: v for k, v in trial.user_attrs["config"].items() if k != "model"},
        "dataset": config.data.dataset,
        "seed": trial.user_attrs.get("seed"),
        "classes": list(splits.classes),
        "preprocessing": splits.encoder,
        "task": splits.task,
        "searched": {"study": study.study_name, "trial": number, "value": trial.value},
        **(
            {"target": config.data.target, "data_file": config.data.data_file} if config.data.dataset == "table" else {}
        ),
    }
    return save_model(network, path, spec, record, splits.input_shape, splits.num_outputs)


def _weights(trial, url: str, artifacts: str | None) -> dict[str, Any]:
    from search.tracking._store import artifact_store_for, read_state

    artifact = trial.user_attrs.get("weights")
    if not artifact:
        raise SearchError(
            f"trial {trial.number} kept no weights (a study run with `keep` 0, or before weights were kept); "
            f"export its configuration and retrain it with `search train`"
        )
    where, store = artifact_store_for(artifacts, url)
    try:
        return read_state(store, artifact)
    except Exception as exc:  # noqa: BLE001 - ArtifactNotFound, an unreadable file: one line
        raise SearchError(
            f"trial {trial.number}'s weights ({artifact}) are not in {where} ({type(exc).__name__}); they are deleted once "
            "it falls out of the `keep` best, or are in another `artifacts` folder"
        ) from None
