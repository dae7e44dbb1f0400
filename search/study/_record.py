"""A study's record: how it was made, what a run must match to join it, and the names it is stored under.

A study's trials are comparable only on one data set, split and search space. The run
that makes a study records them (the study user attribute `STUDY_ATTR`); a run that
continues or joins it takes what the user left out from the record, and refuses a flag
that differs, naming both values. No torch here: listings start fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from objectives import SearchSpace, SpaceError
from search._errors import SearchError
from search.confirmation._summary import Confirmation
from search.study._continue import FLAGS, SINCE, show
from search.study._costs import show_costs

if TYPE_CHECKING:
    import optuna

    from search.study._config import RunConfig

# The study user attribute that records how a study was made; a run that continues the
# study must match it, or its trials would not be comparable.
STUDY_ATTR = "search"
# The objective's name of studies made before metrics could be chosen (optuna-dashboard shows the name).
METRIC = "validation accuracy"
# The trial user attribute naming the run that made a trial (id, sampler, pruner, host).
RUN_ATTR = "run"


# The trial user attribute of a study's first trial, the textbook default it starts with.
BASELINE_ATTR = "baseline"

# Confirmation (search/confirmation/): the summary on the searched study (its retrains' own study
# is named with `CONFIRM_SUFFIX`, search/confirmation/_config.py).
CONFIRM_ATTR = "search:confirmation"


def confirmed(study_user_attrs: dict[str, Any]) -> Confirmation | None:
    """The confirmation summary of a study (None when it has none, or none this version can read)."""
    summary = study_user_attrs.get(CONFIRM_ATTR)
    if not (isinstance(summary, dict) and summary.get("ranking")):
        return None
    try:
        return Confirmation.from_dict(summary)
    except (TypeError, KeyError):  # an attribute of that name someone else set
        return None


def study_metadata(config: RunConfig, space: SearchSpace, rows: int | None = None) -> dict[str, Any]:
    """How a study is made: what must stay the same for its trials to be comparable."""
    return {
        "dataset": config.data.dataset,
        "validation_fraction": config.data.validation_fraction,
        "seed": config.seed,
        "limit_train": config.data.limit_train,
        "stratified": config.data.stratify,
        "space": space.to_dict(),
        "model": config.model,
        "task": config.data.task_name,
        "metric": config.metric_spec.name,
        "heartbeat": bool(config.heartbeat),  # whether its workers beat: a study's workers all do, or none
        # Recorded when set only: the record of a study made before budgets came stays equal.
        **({"total_trials": config.total_trials} if config.total_trials else {}),
        **({"costs": list(config.costs)} if config.costs else {}),
        **({"warm_start": config.warm_start} if config.warm_start else {}),
        **({"rows": rows} if rows is not None else {}),
        **({"table": table_record(config.data)} if config.data.dataset == "table" else {}),
    }


def made_metric(made: dict[str, Any]):
    """The metric a study was made with (`objectives.Metric`); studies of earlier versions: accuracy."""
    from objectives import metric_named

    return metric_named(made.get("metric") or "accuracy", made.get("task") or "classification")


def table_record(data) -> dict[str, Any]:
    """What a table study was made from: the file and its content hash, the target, the test split."""
    from objectives.data import file_hash

    def digest(path: str | None) -> str | None:
        try:
            return file_hash(path) if path else None
        except OSError as exc:
            raise SearchError(f"cannot read {path}: {exc.strerror or exc}") from exc

    return {
        "file": data.data_file,
        "sha256": digest(data.data_file),
        "target": data.target,
        "test_fraction": data.test_fraction,
        "test_file": data.test_file,
        "test_sha256": digest(data.test_file),
        "drop": list(data.drop),
        "fill_missing": data.fill_missing,
        # Recorded when set only: the record of a study made before the option came stays equal.
        **({"drop_missing_target": True} if data.drop_missing_target else {}),
        **({"bins": data.bins} if data.bins else {}),  # none recorded: made before bins, or with bins 0
    }


def load_space(config: RunConfig, stored: dict[str, Any] | None = None, rows: int | None = None) -> SearchSpace:
    """The space the run asks for; a continued study's own when the run names none.

    Keys not given take the defaults of the study's data (images or a table of ``rows``
    rows), model function and task; a model function's own keys are checked against its
    signature (`model_keys`).
    """
    from objectives._space import defaults

    data = "table" if config.data.dataset == "table" else "images"
    options = {
        "model": config.model,
        "model_keys": model_keys(config.model),
        "base": defaults(data, config.model, config.data.task_name, rows),
    }
    if stored is not None and not ({"space", "max_epochs"} & config.given):
        return SearchSpace.from_mapping(stored, **options)
    try:
        if config.space is None or isinstance(config.space, dict):  # a mapping: the Python API's space
            return SearchSpace.from_mapping(config.space or {}, max_epochs=config.max_epochs, **options)
        return SearchSpace.from_file(config.space, max_epochs=config.max_epochs, **options)
    except SpaceError as exc:
        raise SpaceError(f"{exc}{_model_hint(config.model, str(exc))}") from None


def model_keys(ref: str) -> frozenset[str] | None:
    """The keyword parameters the model function takes (None: any, it takes **kwargs)."""
    from objectives.models import MLP, parameters_of, resolve

    if ref == MLP:
        return None  # the MLP's keys are known to the space
    named, anything, _ = parameters_of(resolve(ref))
    return None if anything else frozenset(named)


def _model_hint(ref: str, message: str) -> str:
    if "unknown parameter" not in message:
        return ""
    from objectives.models import MLP

    return "" if ref == MLP else f" (model keys are the keyword parameters of {ref})"


def space_differences(stored: dict[str, Any], asked: dict[str, Any]) -> str:
    keys = sorted(k for k in set(stored) | set(asked) if stored.get(k) != asked.get(k))
    return "; ".join(f"{k}: the study has {_brief(stored.get(k))}, this run {_brief(asked.get(k))}" for k in keys)


def _brief(spec: Any) -> str:
    if isinstance(spec, dict):
        if "choices" in spec:
            return str(spec["choices"])
        text = f"{spec.get('low')}..{spec.get('high')}"
        return text + (" log" if spec.get("log") else "")
    return repr(spec)


def recorded(storage, name: str) -> dict[str, Any] | None:
    """How the study called ``name`` was made, or None when there is no such study yet."""
    try:
        sid = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    made = wait_for_record(storage, sid)
    if made is None:
        raise SearchError(f"study {name!r} was not made by `search run`; choose another `study` name")
    return made


# How long a worker that lost the race to create a study waits for the winner to record it.
RECORD_WAIT_SECONDS = 10.0


def is_record(made: Any) -> bool:
    """Whether a study attribute is the record `search run` writes when it makes a study."""
    return isinstance(made, dict) and isinstance(made.get("space"), dict)


def wait_for_record(storage, sid: int) -> dict[str, Any] | None:
    """The study's record; while the study is empty and has none, its maker is still writing it."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while True:
        made = storage.get_study_user_attrs(sid).get(STUDY_ATTR)
        if is_record(made):
            return made
        # A study with trials, or one that stays bare, was made by something else.
        if storage.get_n_trials(sid) or time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def wait_for_budget(storage, sid: int, total: int | None) -> None:
    """A study with a budget: wait (a while) until its maker has queued the budget's trials."""
    deadline = time.monotonic() + RECORD_WAIT_SECONDS
    while total and storage.get_n_trials(sid) < total and time.monotonic() < deadline:
        time.sleep(0.1)


def check_compatible(name: str, study: optuna.Study, metadata: dict[str, Any]) -> None:
    """Refuse to join a study made with another data set, split, space, model or metric (a worker that lost a race)."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if not is_record(stored) or study.directions[0].name.lower() != made_metric(stored).direction:
        raise SearchError(f"study {name!r} was not made by `search run`; choose another `study` name")
    for key, flag in {**FLAGS, **{k: f for k, (f, _) in SINCE.items()}}.items():
        before = SINCE[key][1] if key in SINCE else None
        if stored.get(key, before) != metadata[key]:
            raise SearchError(
                f"study {name!r} was made with {flag} {show(stored.get(key, before))}, but this run asks for "
                f"{flag} {show(metadata[key])}; choose another `study` name"
            )
    if stored.get("table") != metadata.get("table"):
        raise SearchError(
            f"study {name!r} was made from another table (file, target or test split); choose another `study` name"
        )
    if list(stored.get("costs") or []) != list(metadata.get("costs") or []):
        raise SearchError(
            f"study {name!r} was made with costs {show_costs(stored)}, but this run asks for {show_costs(metadata)}; "
            "choose another `study` name"
        )
    if stored.get("total_trials") != metadata.get("total_trials"):
        raise SearchError(
            f"study {name!r} was made with a budget of {stored.get('total_trials') or 'no'} trials, but this run asks "
            f"for {metadata.get('total_trials') or 'none'}; choose another `study` name"
        )
    if bool(stored.get("stratified", False)) != metadata["stratified"]:
        raise SearchError(f"study {name!r} was made with another kind of validation split; choose another `study` name")
    if stored.get("space") != metadata["space"]:
        raise SearchError(
            f"study {name!r} was made with another search space "
            f"({space_differences(stored.get('space') or {}, metadata['space'])}); choose another `study` name"
        )
