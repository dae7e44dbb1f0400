"""Continuing a study: what the user left out taken from its record, a flag that differs refused.

A study's trials are comparable only on one data set, split and space (see `search.study._record`),
so a run that continues or joins it must match the record, and is told which flag differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search._errors import SearchError
from search.study._costs import made_costs, show_costs

if TYPE_CHECKING:
    from search.study._config import RunConfig

# The option that sets each recorded key, as messages name it (the command line spells it as its flag).
FLAGS = {
    "dataset": "`dataset`",
    "validation_fraction": "`validation_fraction`",
    "seed": "`seed`",
    "limit_train": "`limit_train`",
}
# Recorded since models, tasks and metrics came: a study made before has these values.
SINCE = {
    "model": ("`model`", "objectives.models:mlp"),
    "task": ("`task`", "classification"),
    "metric": ("`metric`", "accuracy"),
}


def continue_config(config: RunConfig, name: str, made: dict[str, Any]) -> RunConfig:
    """``config`` with what the user left out taken from the study it continues.

    A study's trials are comparable only on one data set, split and space, so a flag the
    user gave that differs from the study's record is refused, naming both values.
    """
    data = dict(
        dataset=config.data.dataset,
        validation_fraction=config.data.validation_fraction,
        seed=config.seed,
        limit_train=config.data.limit_train,
    )
    for key, flag in FLAGS.items():
        if key not in made:
            continue
        if key in config.given and made[key] != data[key]:
            raise SearchError(
                f"study {name!r} was made with {flag} {show(made[key])}, but this run asks for {flag} {show(data[key])}; "
                f"leave {flag} out to continue it, or choose another `study` name"
            )
        data[key] = made[key]
    seed = data.pop("seed")
    # A study made before stratified splits keeps its plain random split.
    stratify = bool(made.get("stratified", False))
    data.update(_continue_table(config, name, made.get("table")))
    asked = {"model": config.model, "task": config.data.task_name, "metric": config.metric_spec.name}
    kept = {}
    for key, (flag, before) in SINCE.items():
        value = made.get(key, before)
        if key in config.given and asked[key] != value:
            raise SearchError(
                f"study {name!r} was made with {flag} {value}, but this run asks for {flag} {asked[key]}; "
                f"leave {flag} out to continue it, or choose another `study` name"
            )
        kept[key] = value
    costs = made_costs(made)
    if "costs" in config.given and tuple(config.costs) != costs:
        raise SearchError(
            f"study {name!r} was made with costs {show_costs(made)}, but this run asks for "
            f"{','.join(config.costs) or 'none'}; leave `costs` out to continue it, or choose another `study` name"
        )
    heartbeat = _heartbeat(config, name, made)
    total, n_trials = _budget(config, name, made)
    if config.warm_start is not None and config.warm_start != made.get("warm_start"):
        raise SearchError(
            f"`warm_start` {config.warm_start!r} starts a new study, and study {name!r} exists; leave `warm_start` "
            "out to continue it, or choose another `study` name"
        )
    task = kept["task"] if data["dataset"] == "table" else config.data.task  # image sets: always classification
    return dataclasses.replace(
        config,
        seed=seed,
        model=kept["model"],
        metric=kept["metric"],
        costs=costs,
        heartbeat=heartbeat,
        total_trials=total,
        n_trials=n_trials,
        data=dataclasses.replace(config.data, seed=seed, stratify=stratify, task=task, **data),
    )


def _heartbeat(config: RunConfig, name: str, made: dict[str, Any]) -> int | None:
    """The heartbeat of a run joining a study: its workers all beat, or none does (a worker that
    never beats would look dead to the others). Not given: as the study's workers do."""
    if "heartbeat" not in made or bool(config.heartbeat) == made["heartbeat"]:
        return config.heartbeat
    if "heartbeat" not in config.given:
        return type(config).heartbeat if made["heartbeat"] else 0  # the class's default: beating
    if made["heartbeat"]:
        raise SearchError(
            f"study {name!r} is run by workers that beat (`heartbeat` N); `heartbeat` 0 here would make "
            "this worker's trials look dead to them; leave `heartbeat` out or give it seconds"
        )
    raise SearchError(f"study {name!r} is run by workers that never beat (`heartbeat` 0); give `heartbeat` 0 here too")


def _budget(config: RunConfig, name: str, made: dict[str, Any]) -> tuple[int | None, int | None]:
    """The study's trial budget (set when it was made, never changed), and this run's trials: a run that
    names neither ``n_trials`` nor ``timeout`` on a study with a budget goes on until it is spent."""
    recorded = made.get("total_trials")
    if config.total_trials is not None and config.total_trials != recorded:
        had = f"a budget of {recorded} trials" if recorded else "no trial budget"
        raise SearchError(
            f"study {name!r} was made with {had}, but this run asks for `total_trials` {config.total_trials}; "
            "a budget is set when a study is made: leave `total_trials` out to continue it, or choose another "
            "`study` name"
        )
    drain = recorded and not {"n_trials", "timeout"} & config.given
    return recorded, None if drain else config.n_trials


_TABLE_FLAGS = {
    "target": "`target`",
    "test_fraction": "`test_fraction`",
    "test_file": "`test_file`",
    "drop": "`drop`",
    "fill_missing": "`fill_missing`",
    "drop_missing_target": "`drop_missing_target`",
    "bins": "`bins`",
}
# What a record without the key means: recorded only when set (a study made before the option came: unset).
_TABLE_UNRECORDED = {"drop_missing_target": False, "bins": 0}


def _continue_table(config: RunConfig, name: str, made: dict[str, Any] | None) -> dict[str, Any]:
    """A table study's file and options from its record; a changed file is refused, naming what changed."""
    if not made:
        return {}
    from objectives.data import file_hash

    given = config.given
    out: dict[str, Any] = {"data_file": config.data.data_file if "data_file" in given else made["file"]}
    columns = feature_columns(made.get("columns"))
    if columns is not None:  # its trials' features, whatever this version would leave out today
        out["columns"] = columns
    for key, flag in _TABLE_FLAGS.items():
        asked = list(getattr(config.data, key)) if key == "drop" else getattr(config.data, key)
        stored = made.get(key, _TABLE_UNRECORDED.get(key))
        if key in given and asked != stored:
            raise SearchError(
                f"study {name!r} was made with {flag} {show(stored)}, but this run asks for "
                f"{flag} {show(asked)}; leave {flag} out to continue it, or choose another `study` name"
            )
        out[key] = tuple(made.get(key) or ()) if key == "drop" else stored
    for path_key, hash_key, flag in (
        ("data_file", "sha256", "`data_file`"),
        ("test_file", "test_sha256", "`test_file`"),
    ):
        path = out[path_key]
        if not path:
            continue
        try:
            now = file_hash(path)
        except OSError:
            raise SearchError(
                f"study {name!r} was made from {flag} {path}, which is not there now; give its path with {flag}"
            ) from None
        if now != made.get(hash_key):
            recorded = made.get("file" if path_key == "data_file" else "test_file")
            raise SearchError(_other_file(name, flag, path, recorded, made.get(hash_key), now))
    return out


def feature_columns(recorded: Any) -> tuple[str, ...] | None:
    """A table study's recorded features (``{numeric: [...], text: [...]}``) as `DataConfig.columns`."""
    if not isinstance(recorded, dict):
        return None
    return tuple(recorded.get("numeric") or ()) + tuple(recorded.get("text") or ())


def _other_file(name: str, flag: str, path: str, recorded: str | None, then: str | None, now: str) -> str:
    """A file whose content is not the study's: the study's own file changed, or another file named."""
    hashes = f"sha256 {str(then)[:12]} then, {now[:12]} now" if recorded is None or _same(path, recorded) else ""
    if hashes:
        what = f"{flag} {path} has changed since study {name!r} was made ({hashes})"
    else:
        what = (
            f"{flag} {path} is another file than the one study {name!r} was made from ({recorded}, sha256 "
            f"{str(then)[:12]}; this one {now[:12]})"
        )
    fix = "restore the file" if hashes else f"name its own file ({recorded})"
    return f"{what}; its trials would not be comparable: {fix}, or choose another `study` name"


def _same(path: str, recorded: str) -> bool:
    return Path(path).resolve() == Path(recorded).resolve()


def show(value: Any) -> str:
    return "(all)" if value is None else str(value)
